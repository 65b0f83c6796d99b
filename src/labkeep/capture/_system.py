"""Background sampling of system metrics (CPU, memory, disk, network, NVIDIA GPUs)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    import logging

MB = 1024 * 1024


def _log() -> logging.Logger:
    import logging

    return logging.getLogger("labkeep.capture")


# Delay before the first sample: CPU percentages need two readings some time apart.
FIRST_SAMPLE_DELAY = 0.5


class _Gpus:
    """Per-GPU readings through NVML; any failure only drops the readings it affects."""

    def __init__(self, nvml: ModuleType | None) -> None:
        self._given = nvml
        self._nvml: ModuleType | None = None
        self._handles: list[Any] = []
        self._started = False

    def open(self) -> None:
        self._started = True
        module = self._given
        if module is None:
            from labkeep.capture._environment import load_nvml

            try:
                module = load_nvml()
            except Exception:
                module = None
        if module is None:
            return
        try:
            module.nvmlInit()
        except Exception:
            return
        try:
            count = int(module.nvmlDeviceGetCount())
            self._handles = [module.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:
            _log().debug("NVML lists no GPUs: %s", exc)
            self._handles = []
            with contextlib.suppress(Exception):
                module.nvmlShutdown()
            return
        self._nvml = module

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
        self._nvml = None
        self._handles = []

    def sample(self, out: dict[str, float]) -> None:
        if not self._started:
            self.open()
        nvml = self._nvml
        if nvml is None:
            return
        for i, handle in enumerate(self._handles):
            prefix = f"sys/gpu{i}/"
            with contextlib.suppress(Exception):
                out[prefix + "util"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            try:
                mem = nvml.nvmlDeviceGetMemoryInfo(handle)
                out[prefix + "mem_used_mb"] = int(mem.used) / MB
                out[prefix + "mem_total_mb"] = int(mem.total) / MB
            except Exception:
                pass
            try:
                sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
                out[prefix + "temp_c"] = float(nvml.nvmlDeviceGetTemperature(handle, sensor))
            except Exception:
                pass
            with contextlib.suppress(Exception):
                out[prefix + "power_w"] = int(nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0


class SystemMonitor:
    """Samples system metrics every ``interval`` seconds on a daemon thread and hands each
    sample to ``emit`` as ``{"sys/...": value}``.

    Keys: ``sys/cpu_percent``, ``sys/mem_percent``, ``sys/mem_used_mb``, ``sys/proc_cpu_percent``
    and ``sys/proc_rss_mb`` (the process ``pid`` and its children), ``sys/disk_read_mb``,
    ``sys/disk_write_mb``, ``sys/net_sent_mb``, ``sys/net_recv_mb`` (since the monitor started)
    and, per NVIDIA GPU ``i``, ``sys/gpu{i}/util``, ``mem_used_mb``, ``mem_total_mb``, ``temp_c``,
    ``power_w``. ``nvml`` replaces the ``pynvml`` module (tests stand in for absent hardware).

    >>> monitor = SystemMonitor(lambda sample: print(sample), interval=10.0)
    >>> monitor.start()
    >>> monitor.stop()
    """

    def __init__(
        self,
        emit: Callable[[dict[str, float]], None],
        interval: float = 10.0,
        pid: int | None = None,
        *,
        nvml: ModuleType | None = None,
        first_sample_delay: float = FIRST_SAMPLE_DELAY,
    ) -> None:
        if not interval > 0:
            raise InvalidInputError(f"system metrics interval must be > 0 seconds, got {interval}")
        self.emit = emit
        self.interval = float(interval)
        self.pid = os.getpid() if pid is None else pid
        self.first_sample_delay = min(first_sample_delay, self.interval)
        self._gpus = _Gpus(nvml)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._psutil: Any = None
        self._process: Any = None
        self._children: dict[int, Any] = {}
        self._io_base: dict[str, float] = {}
        self.samples_emitted = 0

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start sampling (idempotent). The first sample comes ``first_sample_delay`` later."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="labkeep-sysmon", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling and wait for the thread (it wakes at once, not after an interval)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        elif thread is None:
            self._gpus.close()  # opened by direct sample() calls
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> SystemMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        # Short runs end before sampling is worth it: wait before importing psutil at all.
        if self._stop.wait(min(self.first_sample_delay, self.interval)):
            self._gpus.close()
            return
        try:
            self._prime()
            delay = self.first_sample_delay
            while not self._stop.wait(delay):
                started = time.monotonic()
                try:
                    sample = self.sample()
                except Exception:
                    _log().exception("system metrics sample failed")
                    sample = {}
                if sample and not self._stop.is_set():
                    try:
                        self.emit(sample)
                        self.samples_emitted += 1
                    except Exception:
                        _log().exception("system metrics could not be emitted")
                delay = max(0.0, self.interval - (time.monotonic() - started))
        finally:
            self._gpus.close()

    # -- sampling ---------------------------------------------------------------------------
    def _prime(self) -> None:
        """First readings: CPU percentages and I/O counters are relative to these."""
        import psutil

        self._psutil = psutil
        psutil.cpu_percent(None)
        try:
            self._process = psutil.Process(self.pid)
            self._process.cpu_percent(None)
        except psutil.Error:
            self._process = None
        self._refresh_children()
        for key, value in self._io_counters().items():
            self._io_base[key] = value

    def _refresh_children(self) -> None:
        psutil = self._psutil
        if self._process is None:
            return
        try:
            current = {c.pid: c for c in self._process.children(recursive=True)}
        except psutil.Error:
            current = {}
        for pid, child in current.items():
            if pid not in self._children:
                try:
                    child.cpu_percent(None)
                except psutil.Error:
                    continue
                self._children[pid] = child
        for pid in list(self._children):
            if pid not in current:
                del self._children[pid]

    def _io_counters(self) -> dict[str, float]:
        psutil = self._psutil
        out: dict[str, float] = {}
        try:
            disk = psutil.disk_io_counters()
            if disk is not None:
                out["sys/disk_read_mb"] = disk.read_bytes / MB
                out["sys/disk_write_mb"] = disk.write_bytes / MB
        except Exception:
            pass
        try:
            net = psutil.net_io_counters()
            if net is not None:
                out["sys/net_sent_mb"] = net.bytes_sent / MB
                out["sys/net_recv_mb"] = net.bytes_recv / MB
        except Exception:
            pass
        return out

    def sample(self) -> dict[str, float]:
        """Take one sample now (the thread calls this every interval)."""
        if self._psutil is None:
            self._prime()
        psutil = self._psutil
        out: dict[str, float] = {"sys/cpu_percent": float(psutil.cpu_percent(None))}
        mem = psutil.virtual_memory()
        out["sys/mem_percent"] = float(mem.percent)
        out["sys/mem_used_mb"] = (mem.total - mem.available) / MB
        if self._process is not None:
            try:
                rss = float(self._process.memory_info().rss)
                cpu = float(self._process.cpu_percent(None))
                self._refresh_children()
                for child in list(self._children.values()):
                    try:
                        rss += child.memory_info().rss
                        cpu += child.cpu_percent(None)
                    except psutil.Error:
                        pass
                out["sys/proc_rss_mb"] = rss / MB
                out["sys/proc_cpu_percent"] = cpu
            except psutil.Error:
                self._process = None  # the process ended; system metrics go on
        for key, value in self._io_counters().items():
            out[key] = value - self._io_base.get(key, 0.0)
        try:
            self._gpus.sample(out)
        except Exception:
            _log().debug("GPU sample failed", exc_info=True)
        return out
