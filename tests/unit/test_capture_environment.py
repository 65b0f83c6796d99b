import importlib.metadata
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from labkeep.capture import list_distributions
from labkeep.capture._environment import canonical_name, collect_environment, probe_gpus


def test_distributions_match_importlib_metadata() -> None:
    expected: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        expected.setdefault(canonical_name(dist.metadata["Name"]), dist.version)
    versions, _ = list_distributions()
    assert versions == expected


def test_entry_kinds_first_on_path_wins_and_direct_url(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "Foo_Bar-1.2.dist-info").mkdir()
    (second / "foo_bar-9.9.dist-info").mkdir()
    legacy = first / "legacy-0.3-py3.11.egg-info"
    legacy.mkdir()
    develop = first / "devpkg.egg-info"
    develop.mkdir()
    (develop / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: DevPkg\nVersion: 0.1.dev0\n\n")
    as_file = first / "filepkg.egg-info"
    as_file.write_text("Name: filepkg\nVersion: 4.0\n")
    editable = first / "mine-0.5.dist-info"
    editable.mkdir()
    (editable / "direct_url.json").write_text(
        json.dumps({"url": "file:///home/me/mine", "dir_info": {"editable": True}})
    )
    vcs = first / "fromgit-1.0.dist-info"
    vcs.mkdir()
    (vcs / "direct_url.json").write_text(
        json.dumps(
            {
                "url": "https://user:tok@github.com/o/fromgit",
                "vcs_info": {"vcs": "git", "commit_id": "abc123"},
            }
        )
    )

    versions, sources = list_distributions([str(first), str(second), str(tmp_path / "missing")])

    assert versions == {
        "devpkg": "0.1.dev0",
        "filepkg": "4.0",
        "foo-bar": "1.2",
        "fromgit": "1.0",
        "legacy": "0.3",
        "mine": "0.5",
    }
    assert sources == {
        "mine": {"url": "file:///home/me/mine", "editable": True},
        "fromgit": {"url": "https://github.com/o/fromgit", "vcs": "git", "commit": "abc123"},
    }


def test_collect_environment_without_gpu() -> None:
    env = collect_environment(gpu=False)
    assert env["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["executable"] == sys.executable
    assert env["implementation"] == sys.implementation.name
    assert env["platform"] == sys.platform
    assert "psutil" in env["packages"]
    assert "gpu" not in env
    json.dumps(env)


def _fake_nvml(*, init_error: bool = False, names: tuple[str, ...] = ("NVIDIA H100",)) -> Any:
    module: Any = ModuleType("pynvml")
    calls: list[str] = []
    module.calls = calls

    def nvmlInit() -> None:
        calls.append("init")
        if init_error:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = nvmlInit
    module.nvmlShutdown = lambda: calls.append("shutdown")
    module.nvmlDeviceGetCount = lambda: len(names)
    module.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    module.nvmlSystemGetCudaDriverVersion = lambda: 12040
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetName = lambda h: names[h].encode()
    module.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(total=80 * 2**30, used=2**30)
    module.nvmlDeviceGetUUID = lambda h: f"GPU-{h}"
    return module


def test_probe_gpus_reports_driver_and_devices() -> None:
    nvml = _fake_nvml(names=("NVIDIA H100", "NVIDIA A10"))
    info = probe_gpus(nvml)
    assert info == {
        "driver_version": "550.54.15",
        "cuda_driver_version": "12.4",
        "gpus": [
            {"index": 0, "name": "NVIDIA H100", "memory_total_mb": 81920, "uuid": "GPU-0"},
            {"index": 1, "name": "NVIDIA A10", "memory_total_mb": 81920, "uuid": "GPU-1"},
        ],
    }
    assert nvml.calls == ["init", "shutdown"]


def test_probe_gpus_absent_driver_is_not_an_error() -> None:
    assert probe_gpus(_fake_nvml(init_error=True)) is None
    assert probe_gpus(_fake_nvml(names=())) is None
    assert "gpu" not in collect_environment(nvml=_fake_nvml(init_error=True))


def test_collect_environment_with_gpu() -> None:
    env = collect_environment(nvml=_fake_nvml())
    assert env["gpu"]["gpus"][0]["name"] == "NVIDIA H100"
