import os
import subprocess
import sys
import threading
import time

from labkeep.capture import SystemMonitor

KEYS = {
    "sys/cpu_percent",
    "sys/mem_percent",
    "sys/mem_used_mb",
    "sys/proc_cpu_percent",
    "sys/proc_rss_mb",
    "sys/disk_read_mb",
    "sys/disk_write_mb",
    "sys/net_sent_mb",
    "sys/net_recv_mb",
}


def test_samples_arrive_with_system_keys_and_stop_is_prompt() -> None:
    samples: list[dict[str, float]] = []
    two = threading.Event()

    def emit(sample: dict[str, float]) -> None:
        samples.append(sample)
        if len(samples) >= 2:
            two.set()

    monitor = SystemMonitor(emit, interval=0.1, first_sample_delay=0.05)
    monitor.start()
    assert two.wait(10)
    monitor.stop()
    assert not monitor.running
    assert set(samples[0]) >= KEYS
    assert all(isinstance(v, float) for v in samples[0].values())
    assert 0 <= samples[0]["sys/mem_percent"] <= 100
    assert samples[0]["sys/proc_rss_mb"] > 1


def test_stop_does_not_wait_for_a_long_interval() -> None:
    samples: list[dict[str, float]] = []
    first = threading.Event()

    def emit(sample: dict[str, float]) -> None:
        samples.append(sample)
        first.set()

    monitor = SystemMonitor(emit, interval=3600, first_sample_delay=0.0)
    monitor.start()
    assert first.wait(10)  # the first sample comes soon after start, not after an interval
    monitor.stop(timeout=30)
    assert not monitor.running
    assert len(samples) == 1


def test_rss_includes_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(64 * 2**20); time.sleep(30)"]
    )
    try:
        monitor = SystemMonitor(lambda s: None, pid=os.getpid())
        own_only = SystemMonitor(lambda s: None, pid=child.pid)
        deadline = time.monotonic() + 10
        while True:
            child_rss = own_only.sample()["sys/proc_rss_mb"]
            if child_rss > 60 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        total = monitor.sample()["sys/proc_rss_mb"]
        assert child_rss > 60
        assert total > child_rss
    finally:
        child.kill()
        child.wait()


def test_monitor_of_a_finished_process_keeps_system_metrics() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    sample = SystemMonitor(lambda s: None, pid=proc.pid).sample()
    assert "sys/cpu_percent" in sample
    assert "sys/proc_rss_mb" not in sample
