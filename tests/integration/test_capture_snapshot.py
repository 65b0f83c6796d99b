import json
import os
import subprocess
from pathlib import Path

import pytest

from labkeep.capture import capture_snapshot

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"],):
        subprocess.run(["git", *args], cwd=root, env=ENV, check=True)
    (root / "train.py").write_text("print('hi')\n")
    subprocess.run(["git", "add", "-A"], cwd=root, env=ENV, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "x"], cwd=root, env=ENV, check=True)
    (root / "train.py").write_text("print('dirty')\n")
    return root


def test_full_snapshot_is_json_serialisable(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("LABKEEP_SECRET", "nope")
    monkeypatch.setenv("MY_FLAG", "on")
    data = tmp_path / "data.csv"
    data.write_text("1,2\n")
    for f in (data, repo / "train.py"):  # hashes of files modified just now are not cached
        os.utime(f, (1_600_000_000, 1_600_000_000))
    snap = capture_snapshot(
        repo,
        ["train.py", "lr=0.1"],
        "train.py",
        inputs=[data, tmp_path / "missing"],
        extra_env_allow=["MY_*"],
        cache_dir=tmp_path / "cache",
        gpu=False,
    )
    doc = json.loads(json.dumps(snap.to_dict()))
    assert doc["git"]["dirty"] is True
    assert doc["code"]["files"][0]["path"] == "train.py"
    assert doc["environment"]["packages"]["psutil"]
    assert doc["host"]["argv"] == ["train.py", "lr=0.1"]
    assert doc["host"]["entry_point"] == "train.py"
    assert doc["host"]["env"]["OMP_NUM_THREADS"] == "3"
    assert doc["host"]["env"]["MY_FLAG"] == "on"
    assert "LABKEEP_SECRET" not in doc["host"]["env"]
    assert doc["inputs"][0]["kind"] == "file"
    assert doc["inputs"][1]["path"] == str(tmp_path / "missing")
    assert "does not exist" in doc["inputs"][1]["error"]
    assert set(doc["timings_ms"]) >= {"environment", "host", "git", "code", "total"}
    cached = json.loads((tmp_path / "cache" / "file-hashes.json").read_text())["entries"]
    assert set(cached) == {str(data), str(repo / "train.py")}


def test_code_false_skips_code_section(repo: Path) -> None:
    snap = capture_snapshot(repo, [], None, code=False, gpu=False)
    assert snap.code == {}
    assert snap.code_files == []
    assert snap.git["dirty"] is True


def test_a_failing_collector_does_not_stop_the_others(repo: Path, tmp_path: Path) -> None:
    # A cache directory that cannot be created: hashing still works, the cache is skipped.
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    snap = capture_snapshot(repo, [], None, cache_dir=blocker / "cache", gpu=False)
    assert snap.code["file_count"] == 1
    # An unreadable root for the code scan is reported in its section only.
    unreadable = tmp_path / "gone"
    snap = capture_snapshot(unreadable, [], None, gpu=False)
    assert snap.git == {"repo": False}
    assert snap.code["file_count"] == 0
    assert snap.environment["packages"]


def test_gpu_probe_uses_given_nvml(repo: Path) -> None:
    from types import ModuleType, SimpleNamespace
    from typing import Any

    nvml: Any = ModuleType("pynvml")
    nvml.nvmlInit = lambda: None
    nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetCount = lambda: 1
    nvml.nvmlSystemGetDriverVersion = lambda: "550.1"
    nvml.nvmlSystemGetCudaDriverVersion = lambda: 12020
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetName = lambda h: "NVIDIA A100"
    nvml.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(total=40 * 2**30)
    nvml.nvmlDeviceGetUUID = lambda h: "GPU-x"
    snap = capture_snapshot(repo, [], None, code=False, nvml=nvml)
    assert snap.environment["gpu"]["cuda_driver_version"] == "12.2"
    assert snap.environment["gpu"]["gpus"][0]["name"] == "NVIDIA A100"
