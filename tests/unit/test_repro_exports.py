import labkeep.repro


def test_every_listed_name_is_exported() -> None:
    for name in labkeep.repro.__all__:
        assert getattr(labkeep.repro, name) is not None, name
    assert sorted(labkeep.repro.__all__) == sorted(set(labkeep.repro.__all__))


def test_repro_cli_does_not_load_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import labkeep.cli._repro, labkeep.repro; "
        "print(','.join(m for m in ('nbdime', 'nbformat', 'pandas', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
