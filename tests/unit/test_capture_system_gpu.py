import threading
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from labkeep.capture import SystemMonitor
from labkeep.errors import InvalidInputError


class _NVMLError(Exception):
    pass


def _fake_nvml(gpus: int = 2, *, broken: set[str] | None = None, init_error: bool = False) -> Any:
    """A pynvml-shaped module standing in for NVIDIA hardware that cannot exist here."""
    broken = broken or set()
    module: Any = ModuleType("pynvml")
    module.NVML_TEMPERATURE_GPU = 0
    module.calls = []

    def fail_if(name: str) -> None:
        if name in broken:
            raise _NVMLError(name)

    def init() -> None:
        module.calls.append("init")
        if init_error:
            raise _NVMLError("Driver Not Loaded")

    def utilization(h: int) -> Any:
        fail_if("util")
        return SimpleNamespace(gpu=40 + h, memory=10)

    def memory(h: int) -> Any:
        fail_if("mem")
        return SimpleNamespace(used=(h + 1) * 1024 * 2**20, total=80 * 1024 * 2**20)

    def temperature(h: int, sensor: int) -> int:
        fail_if("temp")
        assert sensor == module.NVML_TEMPERATURE_GPU
        return 60 + h

    def power(h: int) -> int:
        fail_if("power")
        return 250_500 + h * 1000

    module.nvmlInit = init
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetCount = lambda: gpus
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetUtilizationRates = utilization
    module.nvmlDeviceGetMemoryInfo = memory
    module.nvmlDeviceGetTemperature = temperature
    module.nvmlDeviceGetPowerUsage = power
    return module


def test_gpu_metrics_per_device() -> None:
    monitor = SystemMonitor(lambda s: None, nvml=_fake_nvml(2))
    sample = monitor.sample()
    monitor.stop()
    assert sample["sys/gpu0/util"] == 40.0
    assert sample["sys/gpu1/util"] == 41.0
    assert sample["sys/gpu0/mem_used_mb"] == 1024.0
    assert sample["sys/gpu1/mem_used_mb"] == 2048.0
    assert sample["sys/gpu0/mem_total_mb"] == 80 * 1024.0
    assert sample["sys/gpu1/temp_c"] == 61.0
    assert sample["sys/gpu0/power_w"] == 250.5
    assert "sys/cpu_percent" in sample


def test_failing_gpu_readings_drop_only_themselves() -> None:
    monitor = SystemMonitor(lambda s: None, nvml=_fake_nvml(1, broken={"temp", "power"}))
    sample = monitor.sample()
    monitor.stop()
    assert sample["sys/gpu0/util"] == 40.0
    assert "sys/gpu0/temp_c" not in sample
    assert "sys/gpu0/power_w" not in sample
    assert "sys/proc_rss_mb" in sample


def test_nvml_that_cannot_start_leaves_system_metrics() -> None:
    monitor = SystemMonitor(lambda s: None, nvml=_fake_nvml(init_error=True))
    sample = monitor.sample()
    assert not any(key.startswith("sys/gpu") for key in sample)
    assert sample["sys/mem_percent"] > 0


def test_monitor_thread_survives_failing_nvml_and_emit() -> None:
    nvml = _fake_nvml(1, broken={"util", "mem", "temp", "power"})
    got: list[dict[str, float]] = []
    enough = threading.Event()

    def emit(sample: dict[str, float]) -> None:
        got.append(sample)
        if len(got) == 1:
            raise RuntimeError("the store is down")
        enough.set()

    monitor = SystemMonitor(emit, interval=0.05, nvml=nvml, first_sample_delay=0.0)
    monitor.start()
    assert enough.wait(10)
    monitor.stop()
    assert len(got) >= 2
    assert nvml.calls[0] == "init"
    assert nvml.calls[-1] == "shutdown"


@pytest.mark.parametrize("interval", [0, -1.0])
def test_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(InvalidInputError, match="interval"):
        SystemMonitor(lambda s: None, interval=interval)
