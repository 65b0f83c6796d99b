"""Search spaces: what a sweep varies, from Guild's flag syntax or from Python.

``x=[-2.0:2.0]`` is a uniform range (whole numbers when both ends are ints and the flag is not
a float), ``lr=loguniform[1e-5:1e-1]`` a log-uniform one, ``opt=[adam,sgd]`` a choice, and any
other value stays fixed for every trial. The same objects come from Python as
``labkeep.uniform(-2, 2)``, ``labkeep.loguniform(1e-5, 1e-1)``, ``labkeep.intrange(2, 8)`` and
``labkeep.choice("adam", "sgd")``. Nothing here imports Optuna until :meth:`to_optuna` is
called, so ``import labkeep`` stays light.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from labkeep.runner._flag import Flag, FlagSet, FlagValue

#: Larger grids need ``--max-trials``: a typo such as ``[1:10000]`` in a list would otherwise
#: start a sweep that never ends.
MAX_GRID_POINTS = 10_000

_FUNCTION = re.compile(r"^\s*([A-Za-z_]\w*)\s*\[(.*)\]\s*$", re.DOTALL)
_LIST = re.compile(r"^\s*\[(.*)\]\s*$", re.DOTALL)
_RANGE_FUNCTIONS = {"uniform": "uniform", "loguniform": "loguniform", "intuniform": "int",
                    "randint": "int"}  # fmt: skip

Choice_ = bool | int | float | str | None


@dataclass(frozen=True)
class Uniform:
    """Floats drawn evenly between ``low`` and ``high`` (multiples of ``step`` above ``low``
    when it is given: W&B's ``q_uniform``)."""

    low: float
    high: float
    step: float | None = None

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, step=self.step)

    def spelled(self) -> str:
        step = "" if self.step is None else f" step {self.step!r}"
        return f"[{self.low!r}:{self.high!r}]{step}"


@dataclass(frozen=True)
class LogUniform:
    """Floats whose logarithm is uniform between ``log(low)`` and ``log(high)`` (a learning
    rate between 1e-5 and 1e-1, say)."""

    low: float
    high: float

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=True)

    def spelled(self) -> str:
        return f"loguniform[{self.low!r}:{self.high!r}]"


@dataclass(frozen=True)
class IntRange:
    """Whole numbers from ``low`` to ``high``, both included."""

    low: int
    high: int

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high)

    def spelled(self) -> str:
        return f"[{self.low}:{self.high}]"


@dataclass(frozen=True)
class Choice:
    """One of ``values``; a sweep whose every dimension is a choice can be a grid."""

    values: tuple[Choice_, ...]

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.values)

    def spelled(self) -> str:
        return "[" + ",".join(_spell(v) for v in self.values) + "]"


#: The quantiles a :class:`Normal` draws from: its tails beyond 4.75 sigma (one draw in
#: 500,000) are cut off, so that every value has a finite quantile to tell Optuna.
_QUANTILE_EDGE = 1e-6


@dataclass(frozen=True)
class Normal:
    """Floats drawn from a normal distribution (W&B's ``normal``; ``log=True`` is its
    ``log_normal``, ``exp`` of a normal draw; ``step`` its ``q_normal``, rounded to multiples).

    Optuna has no normal distribution, and a uniform over mu ± k sigma would weigh the tails
    as much as the middle. So Optuna searches the draw's quantile, a uniform float in (0, 1)
    (exactly what inverse-transform sampling draws), and the trial gets the normal value at
    that quantile: a random sampler draws exactly this normal distribution, and the other
    samplers model the quantile, a smooth monotone image of the value. Only the tails beyond
    4.75 sigma are cut off (see ``_QUANTILE_EDGE``)."""

    mu: float
    sigma: float
    step: float | None = None
    log: bool = False

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(_QUANTILE_EDGE, 1.0 - _QUANTILE_EDGE)

    def value(self, quantile: float) -> float:
        """The value the trial gets for Optuna's ``quantile``."""
        from statistics import NormalDist

        drawn = NormalDist(self.mu, self.sigma).inv_cdf(quantile)
        if self.step is not None:
            drawn = round(drawn / self.step) * self.step
        return math.exp(drawn) if self.log else drawn

    def quantile(self, value: float) -> float:
        """Optuna's quantile of a value a trial was given (the inverse of :meth:`value`)."""
        from statistics import NormalDist

        drawn = math.log(value) if self.log else value
        edge = _QUANTILE_EDGE
        return min(max(NormalDist(self.mu, self.sigma).cdf(drawn), edge), 1.0 - edge)

    def spelled(self) -> str:
        name = "lognormal" if self.log else "normal"
        step = "" if self.step is None else f" step {self.step!r}"
        return f"{name}[{self.mu!r}:{self.sigma!r}]{step}"


Distribution = Uniform | LogUniform | IntRange | Choice | Normal


def trial_values(space: Mapping[str, Distribution], drawn: Mapping[str, Any]) -> dict[str, Any]:
    """The values a trial gets from what Optuna drew (a normal's quantile becomes its value)."""
    out = dict(drawn)
    for name, dist in space.items():
        if isinstance(dist, Normal) and name in out:
            out[name] = dist.value(float(out[name]))
    return out


def optuna_params(space: Mapping[str, Distribution], values: Mapping[str, Any]) -> dict[str, Any]:
    """What Optuna drew for a trial given ``values`` (the inverse of :func:`trial_values`)."""
    out = dict(values)
    for name, dist in space.items():
        if isinstance(dist, Normal) and name in out:
            out[name] = dist.quantile(float(out[name]))
    return out


def uniform(low: float, high: float) -> Uniform:
    """A float between ``low`` and ``high``: ``labkeep.uniform(-2.0, 2.0)``."""
    return Uniform(*_check_range("uniform", float(low), float(high)))


def loguniform(low: float, high: float) -> LogUniform:
    """A float spread evenly in log space: ``labkeep.loguniform(1e-5, 1e-1)``."""
    low, high = _check_range("loguniform", float(low), float(high))
    if low <= 0:
        raise InvalidInputError(
            f"loguniform[{_spell(low)}:{_spell(high)}]: both ends must be above 0 "
            "(a log scale has no 0); use a small low end such as 1e-6"
        )
    return LogUniform(low, high)


def intrange(low: int, high: int) -> IntRange:
    """A whole number from ``low`` to ``high`` inclusive: ``labkeep.intrange(2, 8)``."""
    if (
        isinstance(low, bool)
        or isinstance(high, bool)
        or not (isinstance(low, int) and isinstance(high, int))
    ):
        raise InvalidInputError(f"intrange({low!r}, {high!r}): both ends must be ints")
    return IntRange(*_check_range("intrange", low, high))


def choice(*values: Choice_) -> Choice:
    """One of ``values``: ``labkeep.choice("adam", "sgd")``."""
    if len(values) == 1 and isinstance(values[0], list | tuple):
        values = tuple(values[0])
    if not values:
        raise InvalidInputError("choice() needs at least one value")
    for value in values:
        if value is not None and not isinstance(value, bool | int | float | str):
            raise InvalidInputError(
                f"choice value {value!r} is a {type(value).__name__}: use numbers, text, "
                "true/false or none"
            )
    if len(set(map(repr, values))) != len(values):
        raise InvalidInputError(f"choice {list(values)!r} lists a value twice; give each once")
    return Choice(tuple(values))


def _check_range(what: str, low: Any, high: Any) -> tuple[Any, Any]:
    for end in (low, high):
        if isinstance(end, float) and not math.isfinite(end):
            raise InvalidInputError(f"{what}[{low}:{high}]: both ends must be finite numbers")
    if not low < high:
        raise InvalidInputError(
            f"{what}[{_spell(low)}:{_spell(high)}]: the low end must be below the high end; "
            f"write [{_spell(high)}:{_spell(low)}]"
            if low > high
            else f"{what}[{_spell(low)}:{_spell(high)}] is a single value; give it as {_spell(low)}"
        )
    return low, high


def _spell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(value) if isinstance(value, float) else str(value)


# -- the command line -------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSplit:
    """``name=value`` arguments split into those fixed for every trial and those searched.

    ``space`` maps each searched flag's name to its distribution, in the order given;
    ``spelled`` keeps the text typed for each (shown as the sweep's params).
    """

    fixed: tuple[str, ...]
    space: dict[str, Distribution]
    spelled: dict[str, str]
    points: list[dict[str, Any]] = field(default_factory=list)


def split_assignments(
    flags: FlagSet, assignments: Sequence[str], cwd: Path | None = None
) -> SearchSplit:
    """Tell the searched flags of ``assignments`` from the fixed ones, checked against
    ``flags`` (an unknown flag or a bad value is an :class:`InvalidInputError`). ``@FILE``
    (CSV, JSON or YAML, relative to ``cwd``) gives one trial per row: a grid whose points are
    listed rather than multiplied.

    >>> split_assignments(flags, ["x=[-2.0:2.0]", "noise=0.1"]).space  # doctest: +SKIP
    {'x': Uniform(low=-2.0, high=2.0)}
    """
    from labkeep.runner._overrides import parse_assignment, unknown_flag_error

    fixed: list[str] = []
    space: dict[str, Distribution] = {}
    spelled: dict[str, str] = {}
    points: list[dict[str, Any]] = []
    for text in assignments:
        if text.startswith("@"):
            if points:
                raise InvalidInputError("give one batch file (@FILE) per sweep")
            points = read_batch(flags, Path(cwd or Path.cwd()) / text[1:], text[1:])
            continue
        name, raw = parse_assignment(text)
        flag = flags.find(name)
        if flag is None and flags.deferred is None:
            raise unknown_flag_error(flags, name)
        key = name if flag is None else flag.name
        dist = parse_space(raw, flag, key)
        if dist is None:
            fixed.append(text)
            continue
        if key in space:
            raise InvalidInputError(f"flag '{key}' is set twice; give it once")
        space[key] = dist
        spelled[key] = raw.strip()
    if points:
        if space:
            raise InvalidInputError(
                f"a batch file lists its trials; set {', '.join(space)} in its rows or as "
                "single values, not as search spaces"
            )
        for name in points[0]:
            distinct = list({repr(p[name]): p[name] for p in points}.values())
            space[name] = Choice(tuple(distinct))
            spelled[name] = next(t for t in assignments if t.startswith("@"))
    return SearchSplit(tuple(fixed), space, spelled, points)


def read_batch(flags: FlagSet, path: Path, shown: str) -> list[dict[str, Any]]:
    """The rows of a CSV, JSON or YAML batch file, each checked and typed against ``flags``."""
    from labkeep.runner._overrides import coerce_value, parse_literal, unknown_flag_error

    if not path.is_file():
        raise InvalidInputError(f"no batch file {shown}; check the path")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    rows: Any
    if suffix == ".csv":
        import csv

        reader = csv.DictReader(text.splitlines())
        rows = [{k.strip(): parse_literal(v) for k, v in row.items() if k} for row in reader]
    elif suffix == ".json":
        import json

        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"batch file {shown} is not JSON: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InvalidInputError(
                f"reading {shown} needs PyYAML: pip install pyyaml, or give a CSV or JSON file"
            ) from None
        try:
            rows = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "malformed"
            raise InvalidInputError(f"batch file {shown} is not YAML: {first}") from None
    else:
        raise InvalidInputError(f"batch file {shown}: give a .csv, .json or .yaml file")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidInputError(
            f"batch file {shown} must list its trials: one row (a mapping of flag to value) each"
        )
    typed: list[dict[str, Any]] = []
    for number, row in enumerate(rows, 1):
        values: dict[str, Any] = {}
        for name, value in row.items():
            flag = flags.find(str(name))
            if flag is None:
                if flags.deferred is None:
                    raise unknown_flag_error(flags, str(name))
                values[str(name)] = value
                continue
            try:
                values[flag.name] = coerce_value(flag, value)
            except ValueError:
                raise InvalidInputError(
                    f"row {number} of {shown}: bad value {value!r} for flag '{flag.name}' "
                    f"(a {flag.type})"
                ) from None
            if isinstance(values[flag.name], list):
                raise InvalidInputError(
                    f"row {number} of {shown}: '{flag.name}' takes a list, which a batch "
                    "file cannot set yet; set it after the file as a single value"
                )
        if typed and values.keys() != typed[0].keys():
            raise InvalidInputError(
                f"row {number} of {shown} sets {', '.join(values) or 'nothing'} but row 1 sets "
                f"{', '.join(typed[0])}: give every row the same flags"
            )
        typed.append(values)
    return typed


def parse_space(raw: str, flag: Flag | None, name: str) -> Distribution | None:
    """The distribution ``raw`` spells for ``flag`` (``None`` when it is a single value).

    A list is a choice unless the flag itself takes a list, where ``choice[[1,2],[3]]`` is
    needed.
    """
    function = _FUNCTION.match(raw)
    where = f"{name}={raw.strip()}"
    if function is not None:
        fname = function.group(1).lower()
        from labkeep.runner._overrides import SEARCH_FUNCTIONS

        if fname not in SEARCH_FUNCTIONS:
            return None
        body = function.group(2)
        if fname == "choice":
            return _choice(body, flag, name, where)
        kind = _RANGE_FUNCTIONS.get(fname)
        if kind is None:
            raise InvalidInputError(
                f"{where}: {fname}[] is not a distribution labkeep searches; use [LOW:HIGH], "
                "loguniform[LOW:HIGH], intuniform[LOW:HIGH] or [A,B,...]"
            )
        return _range(body, kind, flag, where)
    match = _LIST.match(raw)
    if match is None:
        return None
    body = match.group(1)
    if ":" in body and "," not in body:
        return _range(body, "auto", flag, where)
    if flag is not None and flag.type == "list":
        return None  # a list flag takes the list itself
    return _choice(body, flag, name, where)


def _range(body: str, kind: str, flag: Flag | None, where: str) -> Distribution:
    from labkeep.runner._overrides import parse_literal

    parts = body.split(":")
    if len(parts) != 2:
        raise InvalidInputError(f"{where}: a range is [LOW:HIGH] (two numbers), not [{body}]")
    ends = [parse_literal(p) for p in parts]
    for end, text in zip(ends, parts, strict=True):
        if isinstance(end, bool) or not isinstance(end, int | float):
            raise InvalidInputError(f"{where}: {text.strip()!r} is not a number; write [LOW:HIGH]")
    low, high = ends
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if flag is not None and flag.type not in ("int", "float", "none"):
        raise InvalidInputError(
            f"{where}: flag '{flag.name}' takes {flag.type}, not a number range; "
            "give a list of values such as [a,b]"
        )
    if not low < high:
        lo, hi = (p.strip() for p in parts)
        raise InvalidInputError(
            f"{where}: the low end must be below the high end; write "
            + where.replace(f"[{body}]", f"[{hi}:{lo}]")
            if low > high
            else f"{where} is a single value; give it as {where.split('=', 1)[0]}={lo}"
        )
    integral = isinstance(low, int) and isinstance(high, int)
    try:
        if kind == "loguniform":
            return loguniform(low, high)
        if kind == "int" or (
            kind == "auto" and integral and (flag is None or flag.type != "float")
        ):
            if not integral:
                raise InvalidInputError(f"{where}: an int range needs whole-number ends")
            return intrange(int(low), int(high))
        if flag is not None and flag.type == "int":
            raise InvalidInputError(
                f"{where}: flag '{flag.name}' takes an int; give whole-number ends"
            )
        return uniform(low, high)
    except InvalidInputError as exc:
        message = str(exc)
        if message.startswith(where):
            raise
        raise InvalidInputError(f"{where}: {message.split(': ', 1)[-1]}") from None


def _choice(body: str, flag: Flag | None, name: str, where: str) -> Choice:
    from labkeep.runner._overrides import parse_flag_value, parse_literal

    items = [item.strip() for item in _split_items(body)]
    if not items or any(not item for item in items):
        raise InvalidInputError(f"{where}: a list of choices needs values between its commas")
    values: list[FlagValue] = []
    for item in items:
        value = parse_literal(item) if flag is None else parse_flag_value(flag, item)
        if isinstance(value, list):
            raise InvalidInputError(f"{where}: choices are single values, not lists")
        values.append(value)
    try:
        return choice(*values)  # type: ignore[arg-type]
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


def _split_items(body: str) -> list[str]:
    """Split at top-level commas (``[a,[1,2]]`` has two items)."""
    items, depth, current = [], 0, ""
    for char in body:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return items


# -- grids ------------------------------------------------------------------------------------


def is_grid(space: Mapping[str, Distribution]) -> bool:
    """Whether every dimension is a list of values (a grid can then cover it)."""
    return bool(space) and all(isinstance(d, Choice) for d in space.values())


def grid_size(space: Mapping[str, Distribution]) -> int:
    return math.prod(len(d.values) for d in space.values() if isinstance(d, Choice))


def grid_points(space: Mapping[str, Distribution]) -> Iterator[dict[str, Any]]:
    """Every combination, the last flag varying fastest (as nested loops would)."""
    names = list(space)
    lists: list[Iterable[Any]] = []
    for name in names:
        dist = space[name]
        if not isinstance(dist, Choice):
            raise InvalidInputError(
                f"grid search needs a list of values for '{name}', not {dist.spelled()}; "
                "give --optimizer random (or tpe, gp, cmaes, qmc)"
            )
        lists.append(dist.values)
    for combo in itertools.product(*lists):
        yield dict(zip(names, combo, strict=True))


def space_to_json(space: Mapping[str, Distribution]) -> dict[str, dict[str, Any]]:
    """A plain form kept in the store, read back by :func:`space_from_json`."""
    out: dict[str, dict[str, Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, Choice):
            out[name] = {"kind": "choice", "values": list(dist.values)}
        elif isinstance(dist, Normal):
            out[name] = {"kind": "normal", "mu": dist.mu, "sigma": dist.sigma,
                         "step": dist.step, "log": dist.log}  # fmt: skip
        else:
            kind = {Uniform: "uniform", LogUniform: "loguniform", IntRange: "int"}[type(dist)]
            out[name] = {"kind": kind, "low": dist.low, "high": dist.high}
            if isinstance(dist, Uniform) and dist.step is not None:
                out[name]["step"] = dist.step
    return out


def space_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, Distribution]:
    out: dict[str, Distribution] = {}
    for name, item in data.items():
        kind = item["kind"]
        if kind == "choice":
            out[name] = Choice(tuple(item["values"]))
        elif kind == "uniform":
            step = item.get("step")
            out[name] = Uniform(
                float(item["low"]), float(item["high"]), None if step is None else float(step)
            )
        elif kind == "loguniform":
            out[name] = LogUniform(float(item["low"]), float(item["high"]))
        elif kind == "normal":
            step = item.get("step")
            out[name] = Normal(
                float(item["mu"]),
                float(item["sigma"]),
                None if step is None else float(step),
                bool(item.get("log", False)),
            )
        else:
            out[name] = IntRange(int(item["low"]), int(item["high"]))
    return out
