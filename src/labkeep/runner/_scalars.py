"""Output scalars: metrics read from what a script prints, as Guild AI does.

Default rules, for scripts that print instead of logging:

- a whole line ``key: value`` is a scalar (Guild's default), also ``key: value (step 10)``;
- ``key=value`` and ``key: value`` pairs inside a line are scalars, as in
  ``epoch 3 acc=0.9 loss=0.4`` or Keras' ``- loss: 0.29 - accuracy: 0.91``;
- a line that starts with ``step N``, ``epoch N``, ``iter N`` or ``iteration N`` (``Epoch 2/10``
  too) records that counter under its lowercase name;
- the step starts at 0 and advances by one when a key is seen again (so a loop printing
  ``loss`` and ``acc`` yields one step per iteration) until a step is given explicitly: a key
  named ``step`` (configurable, ``step_keys``) or a ``(step N)`` suffix sets it, and from then
  on the script's own steps are used as they are;
- keys in ``ignore_keys`` (a runner passes the flag names, since scripts echo their flags)
  are not recorded;
- a value followed by more bare values is a printed list, not a scalar: ``Flags: 5 2.0 True``
  (a script echoing its flags) gives nothing;
- ``key=value`` inside parentheses is a call's arguments, not a result:
  ``Elasticnet model (alpha=0.3, l1_ratio=0.2):`` (a script echoing its configuration) gives
  nothing unless the key is in ``asked_keys``, while ``loss=0.4 (step 3)`` and
  ``(loss: 0.4)`` are read.

Only the text a line finally showed counts: in ``"loss=0.9\\rloss=0.5\\n"`` (a progress bar
redrawn with ``\\r``) the scalar is ``loss=0.5``.

Two frameworks print their metrics in shapes of their own, read with these rules:

- Hugging Face's Trainer prints each log as a Python dict, ``{'loss': 0.4123, 'grad_norm':
  1.2, 'learning_rate': 5e-05, 'epoch': 0.5}`` (also ``{'eval_loss': …}`` and the final
  ``{'train_runtime': …, 'train_loss': …}``): each number is a scalar, and the step follows
  the repeated-key rule with ``epoch`` left out of it (it is in every dict), so a training
  log starts a step (one per ``logging_steps``) and the eval and final dicts join it;
- PyTorch Lightning's progress bar, ``Epoch 3: 100%|███| 32/32 [00:00<00:00, 80.1it/s,
  v_num=0, loss=0.321, val_acc=0.9]``, redrawn with ``\\r`` all through training: the last
  drawing of each epoch gives that epoch's values (``v_num``, the logger's version, is no
  metric) and ``epoch``, at the epoch as the step, even when every epoch shares one line
  (they are reported once the next epoch's bar or the end of the output shows that the
  epoch's values are final).

User patterns replace the defaults: regexes with named groups ``key`` and ``value`` (and
optionally ``step``), or ``{key: regex}`` with one group (or a ``value`` group) per fixed key, a
key ``step`` setting the step. Guild's ``\\key``, ``\\value`` and ``\\step`` macros work.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from labkeep.errors import InvalidInputError

_NUMBER = (
    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    r"|[-+]?(?:[iI]nf(?:inity)?|INF|[nN]a[nN]|NAN)"
)
_MACROS = {r"\key": r"[^ \t]+", r"\value": f"(?:{_NUMBER})", r"\step": r"[0-9]+"}

# What ``\s`` matches, spelt out: the regex engine tests a class of plain characters far faster
# than the ``\s`` category, and the hot pattern below tests every character of the output.
_SPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

# The default rules as one pattern, run with ``findall`` over many lines at once: what keeps up
# with a script printing 100,000 lines a second. The text is scanned with a newline before each
# line, and every match begins with one character that may precede a scalar (a space, some
# punctuation, or the newline that starts a line): the regex engine skips the other characters
# in C. After a newline come, in this order, ``loss: 0.12`` as a whole line (no leading space,
# Guild's rule, optionally ``(step 5)``); a leading counter (``epoch 3``, ``Step 120:``,
# ``Epoch 2/10``); a pair; or, when the line has a ``:`` or ``=`` further on, nothing: every
# line with a scalar thus starts with a match whose ``sep`` is the newline. After another
# boundary character: an ``acc=0.9`` / ``loss: 0.4`` pair, ending at a space or punctuation
# and not followed by another bare value (``Flags: 5 2.0 True`` is a printed list).
# Keys never backtrack (``*+``): no separator character can be part of a key. ASCII letters
# and digits come first in the key's class, so they are found without a category lookup.
_SCAN_SOURCE = (
    rf"(?P<sep>[{_SPACE},;|(\[{{])(?:"
    rf"(?<=\n)(?:(?P<line_key>[^{_SPACE}:=]++):[ \t]+(?P<line_value>{_NUMBER})"
    r"(?:[ \t]+\((?:step[ \t]+)?(?P<line_step>\d+)\))?[ \t]*$"
    r"|[ \t]*(?P<counter>(?i:step|epoch|iter|iteration))[ \t]+(?P<count>\d+)(?:/\d+)?"
    rf"(?=$|[{_SPACE},:;|\-]))"
    r"|(?P<key>[A-Za-z_][A-Za-z0-9_\w.\-/]*+)"
    r"(?::[ \t]*|[ \t]*(?:(?P<call>=)(?=[^\n(]*\))|=)[ \t]*)"
    rf"(?P<value>{_NUMBER})(?![^{_SPACE},;|)\]}}])"
    rf"(?![ \t]+(?:{_NUMBER}|True|False|None)(?:[ \t]|$))"
    r"|(?<=\n)(?=[^\n:=]*+[:=]))"
)


# Output without ``:`` or ``=`` can only hold counters, one at the start of a line.
_COUNTERS_SOURCE = (
    rf"\n[ \t]*((?i:step|epoch|iter|iteration))[ \t]+(\d+)(?:/\d+)?(?=$|[{_SPACE},:;|\-])"
)


# A tqdm bar of Lightning's: ``Epoch N`` (or ``Epoch N/M``), the bar or a count, then the
# bracket of times, rate and postfix; ended by the ``\r`` of the next drawing or a newline.
# Lightning's other bars (a second position) move the cursor up with ``ESC[A`` first.
_BAR_SOURCE = (
    r"(?:(?<=[\r\n])|^)(?:\x1b\[A)*[ \t]*Epoch[ \t]+(\d+)(?:/\d+)?:[^\r\n\[]*"
    r"\[([^\]\r\n]*(?:it/s|s/it)[^\]\r\n]*)\][ \t]*([\r\n])"
)
_BAR_PAIR_SOURCE = rf"(?:^|,)[ \t]*([A-Za-z_][\w.\-/]*)=({_NUMBER})[ \t]*(?=,|$)"
# One of Hugging Face's printed dicts: a whole line ``{'key': number, …}``; numpy's repr
# (``np.float64(0.5)``) and torch's (``tensor(0.5)``) of a number are read too.
_DICT_LINE_SOURCE = r"^[ \t]*\{'[^\n]*\}[ \t]*$"
_DICT_PAIR_SOURCE = rf"'([^'\n]+)':[ \t]*(?:np\.\w+\(|tensor\()?({_NUMBER})\)?[ \t]*(?=[,}}])"
#: Keys that do not advance a step when repeated: what every dict of a framework holds.
_DICT_NEUTRAL_KEYS = frozenset({"epoch"})
#: A Lightning bar's postfix values that are no metrics.
_BAR_SKIPPED_KEYS = frozenset({"v_num"})


@functools.cache
def _framework_patterns() -> tuple[re.Pattern[str], ...]:
    return (
        re.compile(_BAR_SOURCE),
        re.compile(_BAR_PAIR_SOURCE),
        re.compile(_DICT_LINE_SOURCE),
        re.compile(_DICT_PAIR_SOURCE),
    )


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The default rules, compiled on first use: compiling them takes longer than starting a
    trivial script, and happens on the recorder's thread while the script runs."""
    return re.compile(_SCAN_SOURCE, re.MULTILINE), re.compile(_COUNTERS_SOURCE, re.MULTILINE)


#: One line's scalars: ``(step, [(key, value), ...])``.
StepGroup = tuple[int, list[tuple[str, float]]]


class ScalarPoint(NamedTuple):
    """One scalar read from output: ``loss`` was ``0.12`` at step ``3``."""

    key: str
    value: float
    step: int


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    key: str | None  # fixed key, or None: the ``key`` group names it


class OutputScalarParser:
    """Turn chunks of a child's stdout into :class:`ScalarPoint` s, as they arrive.

    >>> parser = OutputScalarParser()
    >>> parser.feed("loss: 0.5\\nacc=0.7 loss=0.4\\n")
    [ScalarPoint(key='loss', value=0.5, step=0), ScalarPoint(key='acc', value=0.7, step=1), \
ScalarPoint(key='loss', value=0.4, step=1)]
    """

    def __init__(
        self,
        patterns: Sequence[str] | Mapping[str, str] | None = None,
        *,
        enabled: bool = True,
        step_keys: Iterable[str] = ("step",),
        ignore_keys: Iterable[str] = (),
        asked_keys: Iterable[str] = (),
    ) -> None:
        self.enabled = enabled
        self._asked = frozenset(asked_keys)
        self._patterns = None if patterns is None else _compile(patterns)
        self._step_keys = frozenset(step_keys)
        self._ignore = frozenset(ignore_keys)
        self._buffer = ""
        self._step = 0
        self._explicit = False
        self._seen: set[str] = set()
        #: The Lightning epoch whose bar is being drawn, and its last values.
        self._bar: tuple[int, list[tuple[str, float]]] | None = None

    def ignore(self, keys: Iterable[str]) -> None:
        """Stop recording ``keys`` from now on (flags found once the script parsed them)."""
        self._ignore = self._ignore | frozenset(keys)

    @property
    def step(self) -> int:
        """The step the next scalar without an explicit step will get."""
        return self._step

    def feed(self, chunk: str) -> list[ScalarPoint]:
        """Scalars in the complete lines of ``chunk`` (a partial last line waits for more)."""
        return _points(self.feed_groups(chunk))

    def feed_groups(self, chunk: str) -> list[StepGroup]:
        """:meth:`feed` as one ``(step, [(key, value), ...])`` group per line with scalars:
        what ``Run.log`` takes, without an object per point (the runner's fast path)."""
        if not self.enabled:
            return []
        text = self._buffer + chunk if self._buffer else chunk
        groups: list[StepGroup] = []
        if "Epoch" in text and self._patterns is None:
            text = self._take_bars(text, groups)
        cut = text.rfind("\n") + 1
        self._buffer = _last_shown(text[cut:], keep_cr=True) if cut < len(text) else ""
        if cut:
            complete = text[:cut] if cut < len(text) else text
            if "\r" in complete:
                complete = "\n".join(
                    _last_shown(line, keep_cr=False) for line in complete.split("\n")
                )
            self._scan(complete, groups)
        return groups

    def close(self) -> list[ScalarPoint]:
        """Scalars in the last line when the output ended without a newline."""
        return _points(self.close_groups())

    def close_groups(self) -> list[StepGroup]:
        """:meth:`close` as :meth:`feed_groups` reports."""
        rest, self._buffer = self._buffer, ""
        groups: list[StepGroup] = []
        if self.enabled and rest:
            if "Epoch" in rest and self._patterns is None:
                rest = self._take_bars(rest + "\n", groups)[:-1]
            self._scan(_last_shown(rest, keep_cr=False) + "\n", groups)
        self._end_bar(groups)
        return groups

    def _take_bars(self, text: str, out: list[StepGroup]) -> str:
        """Read the complete drawings of Lightning's bar in ``text`` and return the rest.

        Each drawing replaces the values of its epoch; an epoch's values are reported when
        another epoch's drawing comes, or the output ends: not at a newline, since the
        validation bar below it moves the cursor with one, and the epoch's bar is drawn again
        afterwards with the validation metrics."""
        bar, pair = _framework_patterns()[:2]
        pieces: list[str] = []
        last = 0
        for match in bar.finditer(text):
            pieces.append(text[last : match.start()])
            last = match.end()
            epoch = int(match.group(1))
            values = [
                (key, float(value))
                for key, value in pair.findall(match.group(2))
                if key not in _BAR_SKIPPED_KEYS and key not in self._ignore
            ]
            if self._bar is not None and self._bar[0] != epoch:
                self._end_bar(out)
            self._bar = (epoch, values)
            if match.group(3) == "\n":
                pieces.append("\n")
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def _end_bar(self, out: list[StepGroup]) -> None:
        if self._bar is not None:
            epoch, values = self._bar
            self._bar = None
            out.append((epoch, [("epoch", float(epoch)), *values]))

    def _scan(self, text: str, out: list[StepGroup]) -> None:
        """Record the scalars of ``text``: whole lines, each ending with a newline."""
        if self._patterns is not None:
            for line in text.split("\n")[:-1]:
                self._match_patterns(line, out)
            return
        if "{'" in text:
            self._scan_dicts(text, out)
            return
        self._scan_plain(text, out)

    def _scan_dicts(self, text: str, out: list[StepGroup]) -> None:
        """Whole lines that are printed dicts are read on their own, the others as usual."""
        whole, pair = _framework_patterns()[2:]
        plain: list[str] = []
        for line in text.split("\n")[:-1]:
            if not whole.match(line):
                plain.append(line)
                continue
            if plain:
                self._scan_plain("\n".join(plain) + "\n", out)
                plain = []
            self._record(pair.findall(line), None, out, neutral=_DICT_NEUTRAL_KEYS)
        if plain:
            self._scan_plain("\n".join(plain) + "\n", out)

    def _scan_plain(self, text: str, out: list[StepGroup]) -> None:
        record = self._record
        text = "\n" + text[:-1]  # a newline before each line, as the scan expects
        if ":" not in text and "=" not in text:
            # Most output: only leading counters (``Epoch 2/10``) can match, one per line.
            for counter, count in _patterns()[1].findall(text):
                record([(counter.lower(), count)], None, out)
            return
        self._scan_default(text, out)

    def _scan_default(self, text: str, out: list[StepGroup]) -> None:
        """:meth:`_record` inlined into one loop over the matches: the hot path."""
        step_keys, ignore, seen = self._step_keys, self._ignore, self._seen
        step, explicit = self._step, self._explicit
        scalars: list[tuple[str, float]] = []
        line_step: int | None = None  # the current line's explicit step
        scan = _patterns()[0]
        asked = self._asked
        matches = scan.findall(text)
        for sep, whole_key, whole_value, whole_step, counter, count, key, call, value in matches:
            if sep == "\n":  # a new line starts: close the previous one
                if line_step is not None:
                    step = line_step
                    explicit = True
                    line_step = None
                elif scalars and not explicit:
                    for name, _number in scalars:
                        if name in seen:
                            step += 1
                            seen.clear()
                            break
                    seen.update([name for name, _number in scalars])
                if scalars:
                    out.append((step, scalars))
                    scalars = []
            if key:
                if call and key not in asked:
                    continue  # a call's argument, ``model(alpha=0.3)``: asked for or not read
                number = float(value)
            elif counter:
                key = counter.lower()
                number = float(count)
            elif whole_key:
                key = whole_key
                number = float(whole_value)
                if whole_step:
                    line_step = int(whole_step)
            else:
                continue
            if key in step_keys:
                if number.is_integer():
                    line_step = int(number)
            elif key not in ignore:
                scalars.append((key, number))
        if line_step is not None:
            step = line_step
            explicit = True
        elif scalars and not explicit:
            for name, _number in scalars:
                if name in seen:
                    step += 1
                    seen.clear()
                    break
            seen.update([name for name, _number in scalars])
        if scalars:
            out.append((step, scalars))
        self._step, self._explicit = step, explicit

    def _match_patterns(self, line: str, out: list[StepGroup]) -> None:
        assert self._patterns is not None
        found: list[tuple[str, str]] = []
        step: str | None = None
        for pattern in self._patterns:
            for match in pattern.regex.finditer(line):
                groups = match.groupdict()
                if pattern.key is not None:
                    value = groups["value"] if "value" in groups else match.group(1)
                    found.append((pattern.key, value))
                elif "key" in groups:
                    found.append((groups["key"], groups["value"]))
                else:
                    found.append((match.group(1), match.group(2)))
                if groups.get("step") is not None:
                    step = groups["step"]
        if found:
            self._record(found, step, out)

    def _record(
        self,
        found: list[tuple[str, str]],
        step_text: str | None,
        out: list[StepGroup],
        neutral: frozenset[str] = frozenset(),
    ) -> None:
        step_keys, ignore = self._step_keys, self._ignore
        scalars: list[tuple[str, float]] = []
        explicit_step = None if step_text is None else int(step_text)
        for key, text in found:
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if key in step_keys:
                if value.is_integer():
                    explicit_step = int(value)
            elif key not in ignore:
                scalars.append((key, value))
        if explicit_step is not None:
            # From the first explicit step on, the script's steps are used as they are and
            # repeated keys no longer advance it: ``_seen`` is not needed any more.
            self._step = explicit_step
            self._explicit = True
        elif not self._explicit:
            seen = self._seen
            for key, _value in scalars:
                if key in seen and key not in neutral:
                    self._step += 1
                    seen.clear()
                    break
            seen.update([key for key, _value in scalars])
        if scalars:
            out.append((self._step, scalars))


def _points(groups: list[StepGroup]) -> list[ScalarPoint]:
    return [ScalarPoint(key, value, step) for step, scalars in groups for key, value in scalars]


def _last_shown(line: str, *, keep_cr: bool) -> str:
    """The text a terminal line ends up showing: what followed the last ``\\r`` with text.

    A trailing ``\\r`` does not erase yet (``"loss=1\\r\\n"`` shows ``loss=1``); with ``keep_cr``
    it is kept so that the next chunk's text still replaces the line.
    """
    if "\r" not in line:
        return line
    parts = line.split("\r")
    shown = next((p for p in reversed(parts) if p), "")
    return shown + "\r" if keep_cr and line.endswith("\r") else shown


def _compile(patterns: Sequence[str] | Mapping[str, str]) -> list[_Pattern]:
    items: list[tuple[str | None, str]]
    if isinstance(patterns, Mapping):
        items = [(str(k), str(v)) for k, v in patterns.items()]
    else:
        items = [(None, p) for p in patterns]
    compiled: list[_Pattern] = []
    for key, source in items:
        expanded = source
        for macro, replacement in _MACROS.items():
            expanded = expanded.replace(macro, replacement)
        try:
            regex = re.compile(expanded)
        except re.error as exc:
            raise InvalidInputError(f"bad output-scalar pattern '{source}': {exc}") from None
        names = regex.groupindex
        if key is not None:
            if "value" not in names and regex.groups != 1:
                raise InvalidInputError(
                    f"output-scalar pattern '{source}' for '{key}' needs one group or a "
                    "'value' group"
                )
        elif not ({"key", "value"} <= names.keys() or regex.groups == 2):
            raise InvalidInputError(
                f"output-scalar pattern '{source}' needs named groups 'key' and 'value' "
                "(or two groups); give {key: pattern} for a fixed key"
            )
        compiled.append(_Pattern(regex, key))
    return compiled
