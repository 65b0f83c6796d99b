import labkeep.repro


def test_every_listed_name_is_exported() -> None:
    for name in labkeep.repro.__all__:
        assert getattr(labkeep.repro, name) is not None, name
    assert sorted(labkeep.repro.__all__) == sorted(set(labkeep.repro.__all__))


def test_repro_cli_does_not_load_heavy_modules() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")

    code = (
        "import sys; import labkeep.cli._diff, labkeep.cli._rerun, labkeep.cli._checkout_env, "
        "labkeep.cli._snapshot, labkeep.repro; "
        "print(','.join(m for m in ('nbdime', 'nbformat', 'pandas', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
