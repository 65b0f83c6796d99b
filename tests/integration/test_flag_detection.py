"""Flag detection: argparse/click parsers read from the source, and the content-hash cache."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from labkeep.runner import resolve_overrides
from labkeep.runner._detect import cache_path, detect_flags

ARGPARSE_SCRIPT = """
    import argparse
    from pathlib import Path

    COUNTER = Path(__file__).with_name("started.txt")
    with COUNTER.open("a") as f:
        f.write("x")

    parser = argparse.ArgumentParser(description="train")
    parser.add_argument("data", help="a positional: not a flag")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default %(default)s)")
    parser.add_argument("-e", "--epochs", type=int, default=5)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    parser.add_argument("--fast", action="store_true", help="skip checks")
    parser.add_argument("--no-shuffle", dest="shuffle", action="store_false")
    parser.add_argument("--aug", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--layers", nargs="+", type=int, default=[64, 32])
    parser.add_argument("--tag", action="append")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--learning-rate-decay", type=float)
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--const", action="store_const", const=1)
    args = parser.parse_args()
    Path(__file__).with_name("REAL_WORK_RAN").write_text("oops")
"""

CLICK_SCRIPT = """
    import click

    @click.command()
    @click.argument("data")
    @click.option("--lr", type=float, default=0.01, help="learning rate")
    @click.option("--epochs", default=5)
    @click.option("--opt", type=click.Choice(["sgd", "adam"]), default="sgd")
    @click.option("--fast", is_flag=True)
    @click.option("--shuffle/--no-shuffle", default=True)
    @click.option("--tag", multiple=True)
    @click.option("--batch-size", type=click.IntRange(1, 512), default=32)
    def main(data, lr, epochs, opt, fast, shuffle, tag, batch_size):
        open("REAL_WORK_RAN", "w").write("oops")

    if __name__ == "__main__":
        main()
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def summary(flags: object) -> dict[str, tuple[object, ...]]:
    return {
        f.name: (f.kind, f.type, f.default, f.action, f.option)
        for f in flags  # type: ignore[attr-defined]
    }


def test_argparse_flags_are_read_from_the_source(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", ARGPARSE_SCRIPT)
    flags = detect_flags(script)
    assert flags.interface == "argparse" and flags.warnings == ()
    assert summary(flags) == {
        "lr": ("argparse", "float", 0.01, "store", "--lr"),
        "epochs": ("argparse", "int", 5, "store", "--epochs"),
        "optimizer": ("argparse", "str", "adam", "store", "--optimizer"),
        "fast": ("argparse", "bool", False, "store_true", "--fast"),
        "shuffle": ("argparse", "bool", True, "store_false", "--no-shuffle"),
        "aug": ("argparse", "bool", True, "boolean_optional", "--aug"),
        "layers": ("argparse", "list", [64, 32], "store", "--layers"),
        "tag": ("argparse", "list", None, "append", "--tag"),
        "verbose": ("argparse", "int", 0, "count", "--verbose"),
        "learning_rate_decay": ("argparse", "float", None, "store", "--learning-rate-decay"),
        "out": ("argparse", "str", "out", "store", "--out"),
    }
    by_name = {f.name: f for f in flags}
    assert by_name["lr"].help == "learning rate (default 0.01)"
    assert by_name["optimizer"].choices == ("sgd", "adam")
    assert by_name["aug"].negative_option == "--no-aug"
    assert by_name["layers"].item_type == "int"
    assert flags.find("learning-rate-decay") is by_name["learning_rate_decay"]
    assert flags.find("no-shuffle") is None  # would read backwards
    # A parser built from literals is read from the source: nothing of the script ran.
    assert not (tmp_path / "started.txt").exists()
    assert not (tmp_path / "REAL_WORK_RAN").exists()


def test_click_flags_are_read_from_the_source(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", CLICK_SCRIPT)
    flags = detect_flags(script)
    assert flags.interface == "click" and flags.warnings == ()
    got = summary(flags)
    assert got["lr"] == ("click", "float", 0.01, "store", "--lr")
    assert got["epochs"] == ("click", "int", 5, "store", "--epochs")
    assert got["opt"] == ("click", "str", "sgd", "store", "--opt")
    assert got["fast"] == ("click", "bool", False, "store_true", "--fast")
    assert got["shuffle"] == ("click", "bool", True, "boolean_optional", "--shuffle")
    assert got["tag"][:2] == ("click", "list") and got["tag"][3] == "append"
    assert got["batch_size"] == ("click", "int", 32, "store", "--batch-size")
    assert "data" not in got
    assert flags.find("opt").choices == ("sgd", "adam")  # type: ignore[union-attr]
    assert flags.find("batch-size") is flags.find("batch_size")
    assert not (tmp_path / "REAL_WORK_RAN").exists()


COMPUTED_SCRIPT = """
    import argparse, os
    from pathlib import Path

    with Path(__file__).with_name("started.txt").open("a") as f:
        f.write("x")
    DEFAULTS = {"lr": 0.1}
    parser = argparse.ArgumentParser()
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name}", type=float, default=value)
    args = parser.parse_args()
    print("lr", args.lr)
"""


def test_computed_parser_is_left_to_the_run_without_running_the_script(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", COMPUTED_SCRIPT)
    cache = tmp_path / "cache"
    flags = detect_flags(script, cache)
    assert flags.interface == "argparse" and len(flags) == 0
    assert flags.deferred is not None and "line 10" in flags.deferred
    assert flags.warnings == ()
    assert not (tmp_path / "started.txt").exists()
    assert not cache_path(script, cache).exists()


def test_script_without_a_parser_call_gets_its_globals(tmp_path: Path) -> None:
    script = write(tmp_path / "t.py", "import argparse, time\nrate = 2\ntime.sleep(60)\n")
    flags = detect_flags(script)
    assert flags.interface == "globals" and [f.name for f in flags] == ["rate"]
    assert flags.deferred is None and flags.warnings == ()
    lib = write(
        tmp_path / "lib.py",
        """
        import argparse
        lr = 0.1
        def main():
            argparse.ArgumentParser().parse_args()
        """,
    )
    assert [f.name for f in detect_flags(lib)] == ["lr"]


def test_second_detection_reads_the_cache_without_running_the_script(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", ARGPARSE_SCRIPT)
    cache = tmp_path / "cache"
    first = detect_flags(script, cache)
    record = cache_path(script, cache)
    assert json.loads(record.read_text())["interface"] == "argparse"
    second = detect_flags(script, cache)
    assert second == first
    assert not (tmp_path / "started.txt").exists()
    # The same bytes at another path share the entry and report their own path.
    other = tmp_path / "copy" / "train.py"
    other.parent.mkdir()
    other.write_bytes(script.read_bytes())
    assert detect_flags(other, cache).source == other
    assert not (tmp_path / "copy" / "started.txt").exists()


def test_changed_script_or_damaged_cache_detects_again(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", ARGPARSE_SCRIPT)
    cache = tmp_path / "cache"
    detect_flags(script, cache)
    script.write_text(script.read_text().replace("default=0.01", "default=0.02"))
    assert detect_flags(script, cache).find("lr").default == 0.02  # type: ignore[union-attr]
    cache_path(script, cache).write_text("{broken")
    assert detect_flags(script, cache).find("lr").default == 0.02  # type: ignore[union-attr]
    assert json.loads(cache_path(script, cache).read_text())["interface"] == "argparse"


def test_globals_detection_is_cached_too(tmp_path: Path) -> None:
    script = write(tmp_path / "g.py", "lr = 0.1\n")
    cache = tmp_path / "cache"
    assert detect_flags(script, cache).defaults() == {"lr": 0.1}
    assert cache_path(script, cache).exists()
    assert detect_flags(script, cache).defaults() == {"lr": 0.1}


def test_config_default_of_the_script_gives_config_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({"model": {"depth": 2}, "lr": 0.5}))
    script = write(
        tmp_path / "train.py",
        """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("-c", "--config", default="conf.json")
        p.add_argument("--lr", type=float, default=0.1)
        p.parse_args()
        """,
    )
    cache = tmp_path / "cache"
    flags = detect_flags(script, cache)
    assert flags.config_file == Path.cwd() / "conf.json" and flags.config_is_default
    assert flags.config_option == "--config"
    # ``lr`` is an argparse flag already: the command line wins over the config key.
    assert summary(flags)["lr"][0] == "argparse"
    assert summary(flags)["model.depth"] == ("config", "int", 2, "store", None)
    # Editing the config invalidates the cached detection.
    config.write_text(json.dumps({"model": {"depth": 3}}))
    assert detect_flags(script, cache).find("model.depth").default == 3  # type: ignore[union-attr]


def test_detected_flags_validate_overrides(tmp_path: Path) -> None:
    flags = detect_flags(write(tmp_path / "train.py", ARGPARSE_SCRIPT))
    assert resolve_overrides(flags, ["lr=1", "layers=[1,2]", "fast=yes", "epochs=3"]) == {
        "lr": 1.0,
        "layers": [1, 2],
        "fast": True,
        "epochs": 3,
    }
    with pytest.raises(Exception, match="did you mean 'epochs'"):
        resolve_overrides(flags, ["epoch=3"])


def test_what_the_source_says_and_what_it_leaves_to_the_run(tmp_path: Path) -> None:
    aliased = write(
        tmp_path / "aliased.py",
        """
        import argparse as ap
        DEPTH = 3
        p = ap.ArgumentParser(description=__doc__, formatter_class=ap.RawTextHelpFormatter)
        p.add_argument("--depth", type=int, default=DEPTH, help=f"depth {DEPTH}")
        p.add_argument("rest", nargs=ap.REMAINDER)
        p.parse_args()
        """,
    )
    flags = detect_flags(aliased)
    assert flags.deferred is None and summary(flags) == {
        "depth": ("argparse", "int", 3, "store", "--depth")
    }
    helper = write(
        tmp_path / "helper.py",
        "import argparse\nfrom options import make_parser\nargs = make_parser().parse_args()\n",
    )
    assert detect_flags(helper).deferred == "line 3: it parses with a parser built elsewhere"
    echo_only = write(tmp_path / "echo.py", "import click\nlr = 0.1\nclick.echo(lr)\n")
    assert detect_flags(echo_only).defaults() == {"lr": 0.1}
