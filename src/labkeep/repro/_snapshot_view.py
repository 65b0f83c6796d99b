"""What ``labkeep show RUN --snapshot`` says about a run's snapshot, as data: headings, a grid
of labelled lines (code, git, python, packages, host, command), the inputs as they are now, and
the seeds.

The wording is decided here; the command line turns the tones into terminal styles. Inputs are
fingerprinted again when the view is built, so ``now`` is the state of the disk at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep._value_text import format_size, format_value
from labkeep.errors import NotFoundError
from labkeep.repro._source import ManifestEntry, RunSnapshot
from labkeep.repro._styled import Line, Span

if TYPE_CHECKING:
    from labkeep.store._base import Store

#: Packages worth naming in a snapshot summary (when installed).
NOTABLE_PACKAGES = (
    "torch", "tensorflow", "jax", "jaxlib", "numpy", "scipy", "pandas", "scikit-learn",
    "xgboost", "lightgbm", "transformers", "keras", "lightning", "pytorch-lightning",
    "torchvision", "cupy", "polars", "labkeep",
)  # fmt: skip
#: Code files listed without ``show_all`` (the largest).
TOP_FILES = 10
#: Changed or untracked paths named in the git line.
TOP_GIT_PATHS = 8


@dataclass(frozen=True, slots=True)
class GridLine:
    """One line of the snapshot's grid; an empty ``label`` continues the section above."""

    label: str
    value: Line


@dataclass(frozen=True, slots=True)
class InputState:
    """A recorded input and its state now: ``unchanged``, ``changed``, ``missing`` or why it
    cannot be checked."""

    path: str
    sha256: str  # as recorded ('' when it could not be fingerprinted)
    size: int
    now: Span


@dataclass(frozen=True, slots=True)
class SnapshotView:
    """Everything ``show --snapshot`` prints, in order."""

    headings: tuple[Line, ...]
    grid: tuple[GridLine, ...]
    inputs: tuple[InputState, ...]
    seeds: tuple[Line, ...]


def load_snapshot_any(store: Store, ref: str) -> RunSnapshot:
    """Like :func:`~labkeep.repro.load_snapshot`, but runs in the trash can be looked at."""
    if not store.exists():
        raise NotFoundError(f"no run {ref!r}: the store at {store.uri} has no runs yet")
    info = store.resolve_run(ref)
    data = store.get_snapshot(info.number)
    if data is None:
        raise NotFoundError(
            f"run {info.number} has no snapshot (it ran with capture off, or is still starting)"
        )
    return RunSnapshot(store, info, data)


def snapshot_view(snap: RunSnapshot, *, cache_dir: Path | None, show_all: bool) -> SnapshotView:
    """The view of ``snap``; ``show_all`` lists every code file and package.

    ``cache_dir`` is the store's hash cache, used to fingerprint the inputs again quickly.
    """
    grid = [
        *_code_lines(snap, show_all),
        *_git_lines(snap.section("git")),
        *_environment_lines(snap, show_all),
        *_host_lines(snap.section("host")),
    ]
    command = snap.section("command")
    if command.get("target"):
        grid.append(GridLine("command", (Span(command_text(command)),)))
    return SnapshotView(
        headings=tuple(_headings(snap)),
        grid=tuple(grid),
        inputs=tuple(_input_states(snap.inputs, cache_dir)),
        seeds=tuple(seed_line(seed) for seed in snap.seeds),
    )


def _headings(snap: RunSnapshot) -> list[Line]:
    info = snap.info
    lines: list[Line] = [(Span(f"snapshot of run {info.number}", "strong"), Span(f"  {info.name}"))]
    if info.reproduces_uuid:
        try:
            original = snap.store.resolve_run(info.reproduces_uuid)
            text = f"rerun of run {original.number} ({info.reproduces_uuid[:8]})"
        except NotFoundError:
            text = f"rerun of {info.reproduces_uuid} (no longer in the store)"
        lines.append((Span(text),))
    if "error" in snap.data:
        lines.append((Span("capture failed:", "bad"), Span(f" {snap.data['error']}")))
    return lines


def _code_lines(snap: RunSnapshot, show_all: bool) -> list[GridLine]:
    code = snap.section("code")
    if code.get("error"):
        return [GridLine("code", (Span(str(code["error"]), "bad"),))]
    if not code.get("manifest"):
        return [GridLine("code", (Span("not kept (code capture was off)", "dim"),))]
    manifest = snap.manifest()
    total = sum(entry.size for entry in manifest)
    lines = [
        GridLine(
            "code",
            (
                Span(
                    f"{len(manifest)} files, {format_size(total)} (from {code.get('source')}: "
                    f"{code.get('root')})"
                ),
            ),
        )
    ]
    listed = manifest if show_all else sorted(manifest, key=lambda e: -e.size)[:TOP_FILES]
    lines += [GridLine("", _file_line(entry)) for entry in sorted(listed, key=lambda e: e.path)]
    if not show_all and len(manifest) > TOP_FILES:
        more = f"… {len(manifest) - TOP_FILES} more (--all lists them)"
        lines.append(GridLine("", (Span(more, "dim"),)))
    if code.get("skipped_count"):
        left_out = f"{code['skipped_count']} file(s) left out (not source, binary, size or limits)"
        lines.append(GridLine("", (Span(left_out, "warn"),)))
    if code.get("unstored"):
        unstored = f"{len(code['unstored'])} file(s) could not be stored"
        lines.append(GridLine("", (Span(unstored, "bad"),)))
    return lines


def _file_line(entry: ManifestEntry) -> Line:
    line = (Span(entry.path), Span("  "), Span(format_size(entry.size), "dim"))
    return (*line, Span(" "), Span("x", "dim")) if entry.executable else line


def _git_lines(git: dict[str, Any]) -> list[GridLine]:
    if not git.get("repo"):
        if git.get("error"):
            return [GridLine("git", (Span(str(git["error"]), "bad"),))]
        return [GridLine("git", (Span("not a git repository", "dim"),))]
    commit = str(git.get("commit") or "(no commit)")[:12]
    lines = [GridLine("git", (Span(f"{commit} on {git.get('branch')}"),))]
    if git.get("remote_url"):
        lines.append(GridLine("", (Span(f"{git.get('remote')}: {git['remote_url']}"),)))
    if git.get("dirty"):
        lines.append(GridLine("", (Span("dirty", "warn"), Span(": " + _dirty_paths(git)))))
    else:
        lines.append(GridLine("", (Span("clean"),)))
    if git.get("error"):
        lines.append(GridLine("", (Span(str(git["error"]), "bad"),)))
    return lines


def _dirty_paths(git: dict[str, Any]) -> str:
    """``2 changed (a.py, b.py), 1 untracked (c.py)``: the first paths of each kind."""
    parts = []
    for what in ("changed", "untracked"):
        paths = git.get(what) or []
        count = git.get(f"{what}_count", len(paths))
        if count:
            more = "…" if count > TOP_GIT_PATHS else ""
            parts.append(f"{count} {what} ({', '.join(paths[:TOP_GIT_PATHS])}{more})")
    return ", ".join(parts)


def _environment_lines(snap: RunSnapshot, show_all: bool) -> list[GridLine]:
    environment = snap.section("environment")
    packages = snap.packages()
    python = f"{environment.get('python_version')} ({environment.get('executable')})"
    notable = [f"{n} {packages[n]}" for n in NOTABLE_PACKAGES if n in packages]
    counted = f"{len(packages)}" + (f": {', '.join(notable)}" if notable else "")
    lines = [GridLine("python", (Span(python),)), GridLine("packages", (Span(counted),))]
    if show_all:
        lines += [GridLine("", (Span(f"{n}=={v}"),)) for n, v in packages.items()]
    gpu = environment.get("gpu")
    if isinstance(gpu, dict) and gpu.get("gpus"):
        names = ", ".join(str(g.get("name")) for g in gpu["gpus"])
        lines.append(GridLine("gpu", (Span(f"{names} (driver {gpu.get('driver_version')})"),)))
    return lines


def _host_lines(host: dict[str, Any]) -> list[GridLine]:
    if not host:
        return []
    memory = host.get("memory_total_bytes")
    machine = f"{host.get('cpu_model')}, {host.get('cpu_count')} CPUs" + (
        f", {format_size(int(memory))} memory" if memory else ""
    )
    return [
        GridLine("host", (Span(f"{host.get('user')}@{host.get('hostname')}"),)),
        GridLine("", (Span(machine),)),
        GridLine("argv", (Span(" ".join(str(a) for a in host.get("argv") or [])),)),
        GridLine("cwd", (Span(str(host.get("cwd"))),)),
        *(
            GridLine("", (Span(f"{key}={value}", "dim"),))
            for key, value in (host.get("env") or {}).items()
        ),
    ]


def _input_states(recorded: Sequence[dict[str, Any]], cache_dir: Path | None) -> list[InputState]:
    if not recorded:
        return []
    from labkeep.repro._drift import fingerprint_now

    now = fingerprint_now(recorded, cache_dir)
    states = []
    for item in recorded:
        path = str(item.get("path"))
        current = now.get(path)
        if item.get("sha256") is None:
            state = Span(str(item.get("error", "not fingerprinted")), "bad")
        elif isinstance(current, dict) and current.get("sha256") == item.get("sha256"):
            state = Span("unchanged", "good")
        elif isinstance(current, dict):
            state = Span("changed", "bad")
        else:
            state = Span(str(current or "missing"), "bad")
        sha256 = str(item.get("sha256") or "")
        states.append(InputState(path, sha256, int(item.get("size") or 0), state))
    return states


def seed_line(seed: dict[str, Any]) -> Line:
    """One recorded seed, with only what is known: ``seed 7: random, numpy (PYTHONHASHSEED
    7)``, or ``seed 7 (PYTHONHASHSEED 7, via labkeep run --seed)``."""
    seeded = ", ".join(str(s) for s in seed.get("seeded") or [])
    # labkeep.seed() records ``pythonhashseed``; ``labkeep run --seed`` ``PYTHONHASHSEED``.
    hash_seed = seed.get("pythonhashseed", seed.get("PYTHONHASHSEED"))
    details = [f"PYTHONHASHSEED {hash_seed}"] if hash_seed is not None else []
    if seed.get("via"):
        details.append(f"via {seed['via']}")
    line = [
        Span("seed", "strong"),
        Span(f" {seed.get('seed')}" + (f": {seeded}" if seeded else "")),
    ]
    if details:
        line += [Span(" "), Span(f"({', '.join(details)})", "dim")]
    return tuple(line)


def command_text(command: dict[str, Any]) -> str:
    """The ``labkeep run`` command a run's ``command`` section records, as typed:
    ``labkeep run train.py lr=0.01 -- --extra``."""
    words = ["labkeep", "run", str(command.get("target"))]
    overrides = command.get("overrides")
    if isinstance(overrides, dict):
        words += [f"{k}={format_value(v)}" for k, v in overrides.items()]
    extra = [str(a) for a in command.get("extra_args") or []]
    if extra:
        words += ["--", *extra]
    return " ".join(words)
