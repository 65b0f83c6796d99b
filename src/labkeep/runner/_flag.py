"""Flags: the inputs of a script that ``labkeep run`` can set from the command line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args

#: A flag value: what a JSON config holds, minus objects. Never silently stringified.
FlagValue = Union[int, float, str, bool, None, list["FlagValue"]]  # noqa: UP007

FlagType = Literal["int", "float", "str", "bool", "none", "list"]
"""The type a flag's values are coerced to; ``none`` accepts anything."""

FlagKind = Literal["global", "argparse", "click", "config", "wandb", "sacred"]
"""Where a flag comes from, which decides how its value reaches the script."""

FlagAction = Literal["store", "store_true", "store_false", "boolean_optional", "append", "count"]
"""How a command-line flag takes its value (argparse's action names, shared by click)."""

Interface = Literal["globals", "argparse", "click", "notebook"]
"""How a script as a whole takes its flags."""

FLAG_TYPES: tuple[FlagType, ...] = get_args(FlagType)
FLAG_KINDS: tuple[FlagKind, ...] = get_args(FlagKind)
FLAG_ACTIONS: tuple[FlagAction, ...] = get_args(FlagAction)
INTERFACES: tuple[Interface, ...] = get_args(Interface)


def type_of(value: FlagValue) -> FlagType:
    """The flag type of a default value: ``type_of(0.1) == "float"``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    return "str"


@dataclass(frozen=True)
class Flag:
    """One flag of a script.

    ``name`` is what users type in ``name=value`` and what the run's params record (argparse's
    ``dest``, click's parameter name, the global's name, a config's dotted key); ``aliases``
    are other accepted spellings (``learning-rate`` for ``--learning-rate``). ``option`` is the
    command-line option that sets it (argparse/click), ``negative_option`` the ``--no-x`` form
    of a two-way boolean, ``item_type`` the element type of a ``list`` flag when known.
    ``options`` are all the command-line spellings that set it (``-e``, ``--epochs``), used to
    read the flags out of arguments given after ``--``.
    """

    name: str
    kind: FlagKind
    type: FlagType
    default: FlagValue = None
    choices: tuple[FlagValue, ...] | None = None
    help: str = ""
    option: str | None = None
    negative_option: str | None = None
    action: FlagAction = "store"
    item_type: FlagType | None = None
    aliases: tuple[str, ...] = ()
    required: bool = False
    line: int | None = None
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "type": self.type}
        data["default"] = self.default
        for key in ("help", "option", "negative_option", "item_type", "line"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.choices is not None:
            data["choices"] = list(self.choices)
        if self.action != "store":
            data["action"] = self.action
        if self.aliases:
            data["aliases"] = list(self.aliases)
        if self.options:
            data["options"] = list(self.options)
        if self.required:
            data["required"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flag:
        kind, type_, action = data["kind"], data["type"], data.get("action", "store")
        item_type = data.get("item_type")
        if (
            kind not in FLAG_KINDS
            or type_ not in FLAG_TYPES
            or action not in FLAG_ACTIONS
            or (item_type is not None and item_type not in FLAG_TYPES)
        ):
            raise ValueError(f"malformed flag record: {dict(data)!r}")
        choices = data.get("choices")
        return cls(
            name=str(data["name"]),
            kind=cast(FlagKind, kind),
            type=cast(FlagType, type_),
            default=data.get("default"),
            choices=None if choices is None else tuple(choices),
            help=str(data.get("help", "")),
            option=data.get("option"),
            negative_option=data.get("negative_option"),
            action=cast(FlagAction, action),
            item_type=cast("FlagType | None", item_type),
            aliases=tuple(data.get("aliases", ())),
            required=bool(data.get("required", False)),
            line=data.get("line"),
            options=tuple(data.get("options", ())),
        )


@dataclass(frozen=True)
class FlagSet:
    """The flags detected for one script or notebook, in the order they were declared.

    ``config_file`` is the YAML/JSON config whose keys became ``config`` flags, passed to the
    script as ``config_option`` (``--config``); ``config_is_default`` says whether the script
    already reads that file on its own (its ``--config`` default) or labkeep must pass it.
    ``warnings`` explain a partial detection. ``deferred`` says why the flags of an
    argparse/click script could not be read from its source (``line 12: '...' is computed``):
    they are then read from its parser during its next run, and ``flags`` is empty.
    """

    source: Path
    interface: Interface
    flags: tuple[Flag, ...] = ()
    config_file: Path | None = None
    config_option: str | None = None
    config_is_default: bool = False
    warnings: tuple[str, ...] = ()
    deferred: str | None = None
    _index: dict[str, Flag] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Flag] = {}
        for flag in self.flags:
            index.setdefault(flag.name, flag)
        for flag in self.flags:
            for alias in flag.aliases:
                index.setdefault(alias, flag)
        object.__setattr__(self, "_index", index)

    def __iter__(self) -> Iterator[Flag]:
        return iter(self.flags)

    def __len__(self) -> int:
        return len(self.flags)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def find(self, name: str) -> Flag | None:
        """The flag called ``name`` (or with ``name`` as an alias), or ``None``."""
        return self._index.get(name)

    def names(self) -> list[str]:
        """Flag names, sorted."""
        return sorted(flag.name for flag in self.flags)

    def defaults(self) -> dict[str, FlagValue]:
        """``{name: default}`` for every flag: the values a run gets when nothing is set."""
        return {flag.name: flag.default for flag in self.flags}

    def with_source(self, source: Path) -> FlagSet:
        return replace(self, source=source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "interface": self.interface,
            "flags": [flag.to_dict() for flag in self.flags],
            "config_file": None if self.config_file is None else str(self.config_file),
            "config_option": self.config_option,
            "config_is_default": self.config_is_default,
            "warnings": list(self.warnings),
            "deferred": self.deferred,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlagSet:
        interface = data["interface"]
        if interface not in INTERFACES:
            raise ValueError(f"malformed flag set record: interface {interface!r}")
        config_file = data.get("config_file")
        return cls(
            source=Path(data["source"]),
            interface=cast(Interface, interface),
            flags=tuple(Flag.from_dict(f) for f in data.get("flags", ())),
            config_file=None if config_file is None else Path(config_file),
            config_option=data.get("config_option"),
            config_is_default=bool(data.get("config_is_default", False)),
            warnings=tuple(data.get("warnings", ())),
            deferred=data.get("deferred"),
        )
