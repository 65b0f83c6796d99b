"""Run a user's script as ``__main__`` with flag values injected, without touching its file.

The runner starts the child as ``python -u -m labkeep.runner._bootstrap`` (running this file
by path works too). Everything else arrives through the environment, so the command line stays
short and nothing has to be quoted:

``LABKEEP_SCRIPT``
    path of the script, as the user typed it (it becomes ``sys.argv[0]``);
``LABKEEP_MODULE``
    instead of a script: a module to run the way ``python -m NAME`` does;
``LABKEEP_SCRIPT_ARGS``
    JSON list of the script's own arguments (``sys.argv[1:]``), default ``[]``;
``LABKEEP_FLAGS_JSON``
    JSON object ``{name: value}``: module-level globals whose first assignment gets the value;
``LABKEEP_LIVE_PARSER``
    JSON ``{"channel": DIR, "modes": ["argparse", "click"]}``: the script's parser could not be
    read from its source, so its first parse hands the parser's flags to ``labkeep run``
    through DIR and parses the arguments it gets back (``_intercept.report_live_parser``).

The script is parsed with :mod:`ast`, the value of the first module-level assignment of each
overridden name is replaced in memory, and the tree is compiled under the script's real path, so
tracebacks point at the user's file and line numbers. ``sys.argv``, ``sys.path[0]``,
``__file__`` and ``sys.modules["__main__"]`` are set exactly as ``python train.py`` sets them.

This module imports the standard library only and must stay that way: it runs before every
tracked script. Hooks that need to run inside the child (attaching to the run) go in
:func:`main`, between :func:`prepare` and :func:`execute`.
"""

from __future__ import annotations

import builtins
import os
import sys
import types

# Only the interpreter's startup modules at import time: this runs before every script, and
# ``typing``, ``dataclasses`` or ``ast`` would cost more than the rest of the bootstrap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast
    from collections.abc import Mapping
    from typing import Any

ENV_SCRIPT = "LABKEEP_SCRIPT"
ENV_MODULE = "LABKEEP_MODULE"
ENV_ARGS = "LABKEEP_SCRIPT_ARGS"
ENV_FLAGS = "LABKEEP_FLAGS_JSON"
#: An integer: ``labkeep.capture.seed_everything(n)`` runs before the script.
ENV_SEED = "LABKEEP_SEED"
#: The pid of ``labkeep run``: on Linux the child gets SIGTERM when that process dies.
ENV_PARENT_PID = "LABKEEP_PARENT_PID"
ENV_LIVE_PARSER = "LABKEEP_LIVE_PARSER"
#: ``on`` or ``only``: record the script's MLflow, W&B, TensorBoard and Sacred calls
#: (``integrations/_bridge_hook.py``; ``only``: the tool itself writes nothing).
ENV_BRIDGES = "LABKEEP_BRIDGES"
#: JSON object: values ``labkeep run`` gives the keys of ``wandb.init(config={...})``; the
#: W&B bridge reads it (and it stays set for that).
ENV_BRIDGE_CONFIG = "LABKEEP_BRIDGE_CONFIG"
#: ``1``: ``labkeep.autolog()`` is on before the script runs (``integrations/_autolog_hook.py``).
ENV_AUTOLOG = "LABKEEP_AUTOLOG"

#: Every variable the bootstrap reads; it removes them before the script runs.
ENV_VARS = (
    ENV_SCRIPT, ENV_MODULE, ENV_ARGS, ENV_FLAGS, ENV_SEED, ENV_PARENT_PID, ENV_LIVE_PARSER,
    ENV_BRIDGES, ENV_AUTOLOG,
)  # fmt: skip

#: Exit status when the launch itself is malformed (the script never started).
EXIT_BAD_LAUNCH = 2


class BootstrapError(Exception):
    """The launch cannot start: missing script, unknown global, malformed environment."""


class Launch:
    """What to run: a script path or a module name, its arguments, and global overrides."""

    __slots__ = ("args", "module", "overrides", "script")

    def __init__(
        self,
        script: str | None = None,
        module: str | None = None,
        args: list[str] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.script = script
        self.module = module
        self.args = [] if args is None else args
        self.overrides = {} if overrides is None else overrides


class Prepared:
    """A compiled target and the process state to install before executing it."""

    __slots__ = ("argv", "code", "module", "path0")

    def __init__(
        self, code: types.CodeType, module: types.ModuleType, argv: list[str], path0: str | None
    ) -> None:
        self.code = code
        self.module = module
        self.argv = argv
        self.path0 = path0


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch:
    """Read a :class:`Launch` from ``LABKEEP_*`` variables (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    script = env.get(ENV_SCRIPT) or None
    module = env.get(ENV_MODULE) or None
    if (script is None) == (module is None):
        raise BootstrapError(f"set exactly one of {ENV_SCRIPT} and {ENV_MODULE}")
    args = _json_env(env, ENV_ARGS, [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BootstrapError(f"{ENV_ARGS} must be a JSON list of strings")
    overrides = _json_env(env, ENV_FLAGS, {})
    if not isinstance(overrides, dict):
        raise BootstrapError(f"{ENV_FLAGS} must be a JSON object")
    return Launch(script=script, module=module, args=args, overrides=overrides)


def _json_env(env: Mapping[str, str], name: str, default: Any) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    # The usual values need no ``json``: importing it (and ``re``) would double the time a
    # trivial script takes to start.
    if raw == "[]":
        return []
    if raw == "{}":
        return {}
    import json

    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BootstrapError(f"{name} is not valid JSON: {exc}") from None


def first_assignments(tree: ast.Module) -> dict[str, ast.Assign | ast.AnnAssign]:
    """Map each name assigned at module level to its first assigning statement.

    Only plain (``x = ...``, ``x = y = ...``, ``a, b = ...``) and annotated (``x: int = ...``)
    assignments in the module body count; the first one wins, whatever its value is. Flag
    detection and injection both use this, so they always agree on which line is the flag.
    """
    import ast

    found: dict[str, ast.Assign | ast.AnnAssign] = {}
    for stmt in tree.body:
        targets: list[ast.expr]
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
        else:
            continue
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    found.setdefault(node.id, stmt)
    return found


def literal_node(value: Any, like: ast.AST) -> ast.expr:
    """An AST expression for a JSON-like ``value``, placed at ``like``'s source position."""
    import ast

    node: ast.expr
    if value is None or isinstance(value, bool | int | float | str):
        node = ast.Constant(value)
    elif isinstance(value, list | tuple):
        elts = [literal_node(v, like) for v in value]
        node = (
            ast.List(elts, ast.Load()) if isinstance(value, list) else ast.Tuple(elts, ast.Load())
        )
    elif isinstance(value, dict):
        node = ast.Dict(
            [literal_node(k, like) for k in value], [literal_node(v, like) for v in value.values()]
        )
    else:
        raise BootstrapError(f"cannot inject a value of type {type(value).__name__}")
    return ast.copy_location(node, like)


def inject_globals(tree: ast.Module, overrides: Mapping[str, Any], filename: str) -> None:
    """Replace, in ``tree``, the value of the first module-level assignment of each name."""
    import ast

    firsts = first_assignments(tree)
    for name, value in overrides.items():
        stmt = firsts.get(name)
        if stmt is None:
            raise BootstrapError(f"{filename} has no module-level assignment of '{name}'")
        if isinstance(stmt, ast.AnnAssign):
            assert stmt.value is not None
            stmt.value = literal_node(value, stmt.value)
            continue
        if not any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            raise BootstrapError(
                f"'{name}' in {filename} line {stmt.lineno} is not a plain assignment"
            )
        if len(stmt.targets) == 1:
            stmt.value = literal_node(value, stmt.value)
            continue
        # ``a = b = 1`` with only ``a`` overridden: split the chain so ``b`` keeps its value.
        index = tree.body.index(stmt)
        others = [t for t in stmt.targets if not (isinstance(t, ast.Name) and t.id == name)]
        target = next(t for t in stmt.targets if isinstance(t, ast.Name) and t.id == name)
        rest = ast.copy_location(ast.Assign(others, stmt.value), stmt)
        mine = ast.copy_location(ast.Assign([target], literal_node(value, stmt.value)), stmt)
        tree.body[index : index + 1] = [rest, mine]


def prepare(launch: Launch) -> Prepared:
    """Compile the target with its overrides and build its ``__main__`` module.

    Raises :class:`BootstrapError` for a bad launch and :class:`SyntaxError` for a script that
    does not compile; nothing of the process state changes except, for a module target, the
    import path it is looked up on.
    """
    if launch.module is not None:
        return _prepare_module(launch, launch.module)
    assert launch.script is not None
    path = os.path.abspath(launch.script)
    source = _read_source(path, launch.script)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__cached__ = None  # type: ignore[attr-defined]
    from importlib.machinery import SourceFileLoader

    module.__loader__ = SourceFileLoader("__main__", path)
    code = _compile(source, path, launch.overrides)
    path0 = os.path.dirname(os.path.realpath(path))
    return Prepared(code, module, [launch.script, *launch.args], path0)


def _prepare_module(launch: Launch, name: str) -> Prepared:
    import importlib.util

    # ``python -m`` puts the working directory first on the path before looking the module up.
    path0 = os.getcwd()
    if not sys.flags.safe_path:
        sys.path[0:1] = [path0]
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(name + ".__main__")
    except (ImportError, ValueError) as exc:
        raise BootstrapError(f"cannot find module '{name}': {exc}") from None
    if spec is None or spec.origin is None or spec.loader is None:
        raise BootstrapError(f"no module named '{name}'")
    source = _read_source(spec.origin, name)
    module = types.ModuleType("__main__")
    module.__file__ = spec.origin
    module.__cached__ = spec.cached  # type: ignore[attr-defined]
    module.__loader__ = spec.loader
    module.__spec__ = spec
    module.__package__ = spec.parent
    code = _compile(source, spec.origin, launch.overrides)
    return Prepared(code, module, [spec.origin, *launch.args], path0)


def _read_source(path: str, shown: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise BootstrapError(f"cannot open {shown}: {exc.strerror}") from None


def _compile(source: bytes, filename: str, overrides: Mapping[str, Any]) -> types.CodeType:
    if not overrides:
        return compile(source, filename, "exec", dont_inherit=True)
    import ast

    tree = ast.parse(source, filename)
    inject_globals(tree, overrides, os.path.basename(filename))
    return compile(tree, filename, "exec", dont_inherit=True)


def execute(prepared: Prepared) -> None:
    """Install argv, ``sys.path[0]`` and ``__main__``, then run the target.

    An uncaught exception is printed with the bootstrap's own frames removed, so the traceback
    starts in the user's file, and then re-raised so the process ends exactly as ``python
    train.py`` would (status 1, or death by SIGINT for Ctrl-C).
    """
    sys.argv[:] = prepared.argv
    if prepared.path0 is not None and not sys.flags.safe_path:
        if sys.path:
            sys.path[0] = prepared.path0
        else:
            sys.path.insert(0, prepared.path0)
    module = prepared.module
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    try:
        exec(prepared.code, module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        hook = sys.excepthook
        hook(type(exc), exc.with_traceback(tb), tb)
        # Already reported: let the interpreter end the usual way without printing it twice.
        sys.excepthook = _quiet_excepthook
        raise


def _quiet_excepthook(*_args: object) -> None:
    return None


def main() -> None:
    """Entry point of ``python -m labkeep.runner._bootstrap``."""
    try:
        launch = launch_from_env()
        prepared = prepare(launch)
    except BootstrapError as exc:
        print(f"labkeep: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_LAUNCH) from None
    except SyntaxError as exc:
        # What ``python train.py`` prints for a script that does not compile, and its status.
        import traceback

        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        raise SystemExit(1) from None
    seed = os.environ.get(ENV_SEED)
    parent = os.environ.get(ENV_PARENT_PID)
    live = os.environ.get(ENV_LIVE_PARSER)
    bridges = os.environ.get(ENV_BRIDGES)
    autolog = os.environ.get(ENV_AUTOLOG)
    for name in ENV_VARS:
        os.environ.pop(name, None)
    if parent:
        die_with_parent(int(parent))
    if live:
        watch_parser(live)
    if bridges:
        install_bridges(bridges)
    if autolog:
        install_autolog()
    if seed:
        from labkeep.capture import seed_everything

        seed_everything(int(seed))
    execute(prepared)


def watch_parser(setting: str) -> None:
    """Hook the script's first argparse/click parse (``ENV_LIVE_PARSER``); ``_intercept.py``
    is loaded by path, like this file, so the child still never imports labkeep itself."""
    import importlib.util
    import json

    config = json.loads(setting)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_intercept.py")
    spec = importlib.util.spec_from_file_location("_labkeep_intercept", path)
    if spec is None or spec.loader is None:
        raise BootstrapError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.report_live_parser(config["channel"], config["modes"])


def install_bridges(mode: str) -> None:
    """Watch for the script's import of MLflow, W&B, TensorBoard writers or Sacred
    (``ENV_BRIDGES``); the hook is loaded by path, standard library only, like
    ``_intercept.py``: labkeep itself is imported only once the script imports such a tool."""
    _load_integration_hook("_bridge_hook").install(mode)


def install_autolog() -> None:
    """Turn autolog on for the frameworks the script imports (``ENV_AUTOLOG``): the hook is
    loaded by path like the bridges' one, and labkeep is imported only with a framework."""
    _load_integration_hook("_autolog_hook").install(enable=True)


_import_hook: types.ModuleType | None = None


def _load_integration_hook(name: str) -> types.ModuleType:
    # The one import hook that the bridges and autolog register with, loaded by path too and
    # handed to them as ``_import_hook`` (imported by name when labkeep imports them).
    global _import_hook
    if _import_hook is None:
        _import_hook = _load_integration_module("_import_hook")
    return _load_integration_module(name, _import_hook=_import_hook)


def _load_integration_module(name: str, **given: types.ModuleType) -> types.ModuleType:
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "integrations", name + ".py")
    # Executed from its source rather than through ``importlib.util`` (~10 ms to import).
    module = types.ModuleType("_labkeep" + name)
    module.__dict__.update(given)
    module.__file__ = path
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise BootstrapError(f"cannot load {path}: {exc.strerror}") from None
    exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
    return module


def die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM to this process when ``parent`` dies (a SIGKILLed ``labkeep
    run`` must not leave its script running); elsewhere, do nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    sigterm = 15  # on Linux; the ``signal`` module (and its ``enum``) would double the start
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), sigterm)


if __name__ == "__main__":
    main()
