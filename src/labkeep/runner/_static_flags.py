"""argparse and click flags read from a script's source, without running any of it.

A parser is readable when it is built from literals: ``argparse.ArgumentParser(...)`` assigned
to a name (and its ``add_argument_group`` / ``add_mutually_exclusive_group``), then
``NAME.add_argument(...)`` calls whose arguments are literals: strings, numbers, lists,
module-level constants, ``Path("x")``, ``argparse.BooleanOptionalAction``, and any name as
``type`` (``int``, ``float``, ``str`` and ``bool`` keep their meaning, others read as text). For
click, one ``@click.command()`` function with ``@click.option`` / ``@click.argument`` decorators
of the same kind. The parser is then built in this process from those literals and described by
the code that describes a live one (``_intercept.py``), so both ways give the same flags.

Anything else (options added in a loop or by a helper, computed defaults, sub-commands, typer)
is left to the script's real run, which reports its parser when it parses (``_bootstrap.py``):
:func:`static_flags` then says why, in one line naming the source line.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from labkeep.runner._flag import FlagValue, Interface

#: The flags of a parser read from the source: ``(interface, flag records)``.
StaticFlags = tuple[Interface, list[dict[str, Any]]]

# Keyword arguments that only change a parser's text: non-literal values are fine.
_TEXT_ONLY = frozenset(
    {"help", "description", "epilog", "usage", "prog", "formatter_class", "metavar",
     "exit_on_error", "fromfile_prefix_chars", "show_default", "envvar", "callback",
     "shell_complete", "autocompletion", "hidden", "show_envvar", "show_choices"}
)  # fmt: skip
_ARGPARSE_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


class _Computed(Exception):
    """A part of the parser that only running the script would give."""

    def __init__(self, node: ast.AST, what: str) -> None:
        super().__init__(f"line {getattr(node, 'lineno', '?')}: {what}")


def _opaque(text: str) -> str:
    """Stands for a ``type=`` the source names but labkeep cannot call: values stay text."""
    return text


def static_flags(
    tree: ast.Module, modes: list[str], constants: Mapping[str, FlagValue]
) -> StaticFlags | str | None:
    """The flags of the script's parser read from ``tree``, a one-line reason why they must be
    read during the run instead, or ``None`` when the script builds no parser at all.

    ``modes`` are the parser libraries it imports (``parser_modes``); ``constants`` its
    module-level literal globals, which options may use as defaults.
    """
    reading = _Reading(tree, constants)
    try:
        if "argparse" in modes:
            found = reading.argparse()
            if found is not None:
                return found
        if "click" in modes:
            found = reading.click()
            if found is not None:
                return found
            if reading.imports_typer:
                return "it builds a typer app, read when it runs"
    except _Computed as exc:
        return str(exc)
    return None


class _Reading:
    def __init__(self, tree: ast.Module, constants: Mapping[str, FlagValue]) -> None:
        self.tree = tree
        self.constants = constants
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.imports_typer = any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "typer" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "typer")
            for n in ast.walk(tree)
        )
        # ``import argparse as ap``: ``ap.ArgumentParser`` is read as ``argparse.ArgumentParser``.
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in ("argparse", "click"):
                        self.aliases[alias.asname] = alias.name
        self.calls = sorted(
            (n for n in ast.walk(tree) if isinstance(n, ast.Call)),
            key=lambda n: (n.lineno, n.col_offset),
        )

    def name(self, node: ast.AST) -> str | None:
        """``a.b.c`` for a name or attribute chain (module aliases undone), else ``None``."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, dot, rest = dotted.partition(".")
        return self.aliases.get(head, head) + dot + rest

    # -- literals ----------------------------------------------------------------------------
    def value(self, node: ast.expr) -> Any:
        try:
            return ast.literal_eval(node)
        except (ValueError, SyntaxError, TypeError):
            pass
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        name = self.name(node) or ""
        if name.startswith("argparse.") and name[9:].isupper():  # SUPPRESS, REMAINDER, …
            import argparse

            if hasattr(argparse, name[9:]):
                return getattr(argparse, name[9:])
        if (
            isinstance(node, ast.Call)
            and self.name(node.func) in ("Path", "pathlib.Path", "PurePath", "pathlib.PurePath")
            and len(node.args) == 1
            and not node.keywords
        ):
            return str(self.value(node.args[0]))
        if isinstance(node, ast.List | ast.Tuple):
            return [self.value(item) for item in node.elts]
        if (
            isinstance(node, ast.Call)
            and self.name(node.func) == "range"
            and not node.keywords
            and 1 <= len(node.args) <= 3
        ):
            return list(range(*(int(self.value(a)) for a in node.args)))
        raise _Computed(node, f"'{ast.unparse(node)}' is computed")

    def _in_loop(self, node: ast.AST) -> bool:
        current = self.parents.get(node)
        while current is not None:
            if isinstance(
                current,
                ast.For | ast.AsyncFor | ast.While | ast.comprehension | ast.ListComp | ast.Lambda,
            ):
                return True
            current = self.parents.get(current)
        return False

    # -- argparse ----------------------------------------------------------------------------
    def argparse(self) -> StaticFlags | None:
        import argparse

        from labkeep.runner._intercept import argparse_flags

        makers = [
            n
            for n in self.calls
            if self.name(n.func) in ("argparse.ArgumentParser", "ArgumentParser")
        ]
        if not makers:
            parse = next(
                (
                    n
                    for n in self.calls
                    if isinstance(n.func, ast.Attribute)
                    and n.func.attr in ("parse_args", "parse_known_args", "parse_intermixed_args")
                ),
                None,
            )
            if parse is not None:
                raise _Computed(parse, "it parses with a parser built elsewhere")
            return None
        if len(makers) > 1:
            lines = ", ".join(str(m.lineno) for m in makers)
            raise _Computed(makers[1], f"it builds more than one parser (lines {lines})")
        maker = makers[0]
        names = self._assigned_names(maker)
        calls = [n for n in self.calls if isinstance(n.func, ast.Attribute)]
        groups: list[ast.Call] = []
        for call in calls:
            assert isinstance(call.func, ast.Attribute)
            attr = call.func.attr
            if attr in ("add_argument_group", "add_mutually_exclusive_group"):
                receiver = self.name(call.func.value)
                if receiver in names:
                    names |= self._assigned_names(call)
                    groups.append(call)
            elif attr == "add_subparsers":
                raise _Computed(call, "it has sub-commands")
        adds = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr in (
            "add_argument", "set_defaults")]  # fmt: skip
        parser = argparse.ArgumentParser(**self._keywords(maker, ignore={"parents"}))
        if any(k.arg == "parents" for k in maker.keywords):
            raise _Computed(maker, "its parser takes parents")
        for call in adds:
            assert isinstance(call.func, ast.Attribute)
            receiver = self.name(call.func.value)
            if receiver not in names:
                if call.func.attr == "set_defaults":
                    continue  # some other object's method
                shown = ast.unparse(call.func.value)
                raise _Computed(call, f"options are added to '{shown}', built elsewhere")
            if self._in_loop(call):
                raise _Computed(call, "options are added in a loop")
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                raise _Computed(call, "options take unpacked arguments")
            if call.func.attr == "set_defaults":
                parser.set_defaults(**self._keywords(call))
                continue
            args = [self.value(a) for a in call.args]
            keywords = self._argparse_keywords(call)
            try:
                parser.add_argument(*args, **keywords)
            except (argparse.ArgumentError, ValueError, TypeError) as exc:
                raise _Computed(call, f"the option cannot be read ({exc})") from None
        records = argparse_flags(parser)
        return ("argparse", records) if records else None

    def _assigned_names(self, call: ast.Call) -> set[str | None]:
        parent = self.parents.get(call)
        if isinstance(parent, ast.Assign):
            return {self.name(t) for t in parent.targets if self.name(t) is not None}
        if isinstance(parent, ast.AnnAssign | ast.NamedExpr):
            name = self.name(parent.target)
            return {name} if name is not None else set()
        return set()

    def _keywords(
        self, call: ast.Call, ignore: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        keywords: dict[str, Any] = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise _Computed(call, "it takes unpacked keyword arguments")
            if keyword.arg in ignore:
                continue
            try:
                keywords[keyword.arg] = self.value(keyword.value)
            except _Computed:
                if keyword.arg not in _TEXT_ONLY:
                    raise
        keywords.pop("formatter_class", None)
        return keywords

    def _argparse_keywords(self, call: ast.Call) -> dict[str, Any]:
        import argparse

        special = {"type", "action"}
        keywords = self._keywords(call, ignore=special)
        for keyword in call.keywords:
            if keyword.arg == "type":
                name = self.name(keyword.value) or ""
                keywords["type"] = _ARGPARSE_TYPES.get(name, _opaque)
            elif keyword.arg == "action":
                name = self.name(keyword.value) or ""
                if name.rsplit(".", 1)[-1] == "BooleanOptionalAction":
                    keywords["action"] = argparse.BooleanOptionalAction
                else:
                    action = self.value(keyword.value)
                    if not isinstance(action, str):
                        raise _Computed(keyword.value, "a custom action")
                    keywords["action"] = action
        if "help" in keywords and not isinstance(keywords["help"], str):
            keywords.pop("help")
        return keywords

    # -- click -------------------------------------------------------------------------------
    def click(self) -> StaticFlags | None:
        import click

        from labkeep.runner._intercept import click_flags

        commands: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                name = self.name(decorator.func if isinstance(decorator, ast.Call) else decorator)
                if name in ("click.group", "group"):
                    raise _Computed(decorator, "it has sub-commands")
                if name in ("click.command", "command"):
                    commands.append(node)
        if not commands:
            return None
        if len(commands) > 1:
            raise _Computed(commands[1], "it has more than one command")
        function = commands[0]
        params: list[click.Parameter] = []
        for decorator in function.decorator_list:
            if not isinstance(decorator, ast.Call):
                continue
            name = self.name(decorator.func) or ""
            kind = name.rsplit(".", 1)[-1]
            if kind not in ("option", "argument") or name not in (kind, f"click.{kind}"):
                continue
            decls = [self.value(a) for a in decorator.args]
            keywords = self._keywords(decorator, ignore={"type", "cls"})
            for keyword in decorator.keywords:
                if keyword.arg == "cls":
                    raise _Computed(keyword.value, "a custom option class")
                if keyword.arg == "type":
                    keywords["type"] = self._click_type(keyword.value)
            for text_only in _TEXT_ONLY - {"help", "hidden", "show_default", "metavar"}:
                keywords.pop(text_only, None)
            try:
                param_class = click.Option if kind == "option" else click.Argument
                params.append(param_class(decls, **keywords))
            except (TypeError, ValueError) as exc:
                raise _Computed(decorator, f"the option cannot be read ({exc})") from None
        command = click.Command(function.name, params=params)
        records = click_flags(command)
        return ("click", records) if records else None

    def _click_type(self, node: ast.expr) -> Any:
        import click

        name = self.name(node.func if isinstance(node, ast.Call) else node) or ""
        short = name.removeprefix("click.").removeprefix("types.")
        simple = {"int": click.INT, "float": click.FLOAT, "str": click.STRING, "bool": click.BOOL}
        if short in simple and not isinstance(node, ast.Call):
            return simple[short]
        if isinstance(node, ast.Call) and short in ("Choice", "IntRange", "FloatRange"):
            args = [self.value(a) for a in node.args]
            keywords = self._keywords(node)
            return getattr(click, short)(*args, **keywords)
        if isinstance(node, ast.Call) and short == "Path":
            return click.Path()
        return click.STRING


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a name or attribute chain, else ``None``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None
