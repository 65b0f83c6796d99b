import labkeep.capture


def test_public_names_are_exported() -> None:
    expected = {
        "CodeFile",
        "HashCache",
        "IgnoreRules",
        "Snapshot",
        "SystemMonitor",
        "capture_snapshot",
        "collect_code",
        "collect_environment",
        "collect_git",
        "collect_host",
        "fingerprint_input",
        "list_distributions",
        "probe_gpus",
        "redact_argv",
        "seed_everything",
        "select_env",
        "strip_credentials",
    }
    assert set(labkeep.capture.__all__) == expected
    for name in expected:
        assert getattr(labkeep.capture, name) is not None
