"""``labkeep.autolog()``: record what a framework's training calls do, with no other line.

Each framework has a module of this package whose ``install(module)`` patches the framework's
own training entry points (scikit-learn's ``fit`` methods, ``xgboost.train``,
``lightgbm.train``); :mod:`._autolog_hook` calls it when the script imports the framework, or
at once when it already has. A patched call asks :func:`training` for its run: the active
run, or a run started for this call alone (finished when the call returns) when there is
none. A training call made inside another one (a pipeline's steps, a search's refits, the
booster a scikit-learn wrapper trains) logs nothing of its own: the outer call reports.

The settings are process-wide and read on every call, so ``autolog(disable=True)`` turns
logging off without undoing the patches (they then cost one attribute read).

Saving a model is what costs: skops takes 170 ms for a 100-tree gradient boosting model, as
long as a fifth of the fit, where pickling it takes 3 ms. So the training call pickles the
model (a snapshot, unaffected by what the script does to it next) and returns; one background
thread (:data:`BACKGROUND`) saves it with ``run.log_model``, then ends the run if autolog
started it. That run stops being the active run at once (``_api.release``); a run's
``finish()`` waits for the models still being saved into it (``Run.add_finish_hook``), and so
does the interpreter's exit.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import pickle
import queue
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError, LabkeepError

if TYPE_CHECKING:
    from labkeep._run import Run

#: The frameworks ``labkeep.autolog()`` knows, by the name the user imports.
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm")


@dataclass
class AutologSettings:
    """What :func:`autolog` was last told."""

    enabled: bool = False
    log_models: bool = True
    #: How many of a search's candidates become child runs (None: all of them).
    max_tuning_runs: int | None = None
    excluded: frozenset[str] = field(default_factory=frozenset)


def _turned_on_by_runner() -> bool:
    """Whether ``labkeep run --autolog`` installed the hook with autolog on."""
    from labkeep.integrations._import_hook import registered_patcher

    return bool(getattr(registered_patcher("autolog"), "enabled", False))


SETTINGS = AutologSettings(enabled=_turned_on_by_runner())
logger = logging.getLogger("labkeep.integrations")


class Background:
    """One daemon thread that runs jobs in order (saving models, then ending runs).

    At the interpreter's exit it must finish before the other exit functions run: those of
    ``atexit`` run last registered first, so :meth:`submit` registers :meth:`join` again
    each time. ``weakref.finalize`` registers its own exit function (which deletes the
    temporary directories a model is saved through) when its first finalizer is made: one
    is made here, so that that function is registered before ours.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        weakref.finalize(self, _nothing)

    def submit(self, job: Callable[[], None]) -> threading.Event:
        """Queue ``job``; the event is set once it has run (or failed, with a warning)."""
        done = threading.Event()
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="labkeep-autolog", daemon=True
                )
                self._thread.start()
            atexit.unregister(self.join)
            atexit.register(self.join)
        self._jobs.put((job, done))
        return done

    def join(self) -> None:
        """Wait until every queued job has run."""
        if self._thread is not None and self._thread.is_alive():
            self._jobs.join()

    def _work(self) -> None:
        while True:
            job, done = self._jobs.get()
            try:
                job()
            except Exception as exc:  # a model that could not be saved: the script goes on
                logger.warning("autolog could not finish its work: %s", exc)
            finally:
                done.set()
                self._jobs.task_done()


def _nothing() -> None:
    return None


BACKGROUND = Background()
_local = threading.local()
_model_counts: dict[str, int] = {}
_counts_lock = threading.Lock()


def autolog(
    *,
    log_models: bool = True,
    max_tuning_runs: int | None = None,
    exclude: Sequence[str] = (),
    disable: bool = False,
) -> None:
    """Log the params, training metrics and model of every scikit-learn, XGBoost and LightGBM
    training call in this process, into the active run or, when there is none, a run per call.

    ``exclude`` names frameworks to leave alone (``["xgboost"]``); ``max_tuning_runs`` caps
    the child runs of a hyperparameter search (the best ones first); ``disable=True`` turns
    autolog off again.

    >>> import labkeep
    >>> labkeep.autolog()  # doctest: +SKIP
    >>> LogisticRegression().fit(X, y)  # doctest: +SKIP  (a run with params, metrics, model)
    """
    unknown = sorted(set(exclude) - set(FRAMEWORKS))
    if unknown:
        raise InvalidInputError(
            f"autolog(exclude=...) got {', '.join(map(repr, unknown))}: "
            f"name frameworks among {', '.join(FRAMEWORKS)}"
        )
    if max_tuning_runs is not None and (type(max_tuning_runs) is not int or max_tuning_runs < 0):
        raise InvalidInputError(
            f"max_tuning_runs={max_tuning_runs!r} must be a count (0 or more) or None for all"
        )
    SETTINGS.enabled = not disable
    SETTINGS.log_models = log_models
    SETTINGS.max_tuning_runs = max_tuning_runs
    SETTINGS.excluded = frozenset(exclude)
    if not disable:
        from labkeep.integrations import _autolog_hook

        _autolog_hook.install()


def active(framework: str) -> bool:
    """Whether a patched call of ``framework`` should log (autolog on, and not nested)."""
    return (
        SETTINGS.enabled
        and framework not in SETTINGS.excluded
        and not getattr(_local, "depth", 0)
        and framework not in getattr(_local, "quiet", ())
    )


@contextmanager
def quiet(framework: str) -> Iterator[None]:
    """Leave ``framework``'s calls made inside unlogged, and only those: XGBoost's
    scikit-learn wrapper fits a ``LabelEncoder`` that is no model of the user's."""
    before: frozenset[str] = getattr(_local, "quiet", frozenset())
    _local.quiet = before | {framework}
    try:
        yield
    finally:
        _local.quiet = before


@contextmanager
def nested() -> Iterator[None]:
    """Mark the calls made inside as nested: they log nothing of their own."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


class RunFor:
    """The run a training call logs into: the active one, or one started for it.

    A run started here is finished by :meth:`close` (failed if the call raised), unless it is
    the run ``labkeep run`` handed to the script: that one stays active for the script's
    next calls, and the runner finishes it.
    """

    def __init__(self, name: str) -> None:
        from labkeep import _api

        run = _api.active_run()
        self.owned = run is None
        if run is None:
            run = _api.init(name=name, tags=["autolog"])
            self.owned = not run.attached
        self.run: Run = run

    def close(self, exc: BaseException | None = None) -> None:
        """End a run started here: at once when the call failed, else in the background,
        after the models queued for it."""
        if not self.owned:
            return
        if exc is not None:
            self.run.__exit__(type(exc), exc, exc.__traceback__)
            return
        from labkeep import _api

        _api.release(self.run)
        BACKGROUND.submit(self.run.finish)


@contextmanager
def training(framework: str, name: str) -> Iterator[Run | None]:
    """Around one training call: yields the run to log into, or None when the call is not
    to be logged (autolog off, or inside another training call); calls made inside are
    nested."""
    if not active(framework):
        yield None
        return
    holder = RunFor(name)
    try:
        with nested():
            yield holder.run
    except BaseException as exc:
        holder.close(exc)
        raise
    holder.close()


def model_name(run: Run, base: str = "model") -> str:
    """``base`` for a run's first model, then ``base-2``, ``base-3``… (a run may train several)."""
    with _counts_lock:
        key = f"{run.uuid}/{base}"
        count = _model_counts.get(key, 0) + 1
        _model_counts[key] = count
    return base if count == 1 else f"{base}-{count}"


def log_model_quietly(run: Run, model: Any, name: str, input_example: Any = None) -> None:
    """``run.log_model`` for autolog, in the background from a pickled snapshot of the model
    (saved at once when it does not pickle): a model that cannot be saved is a warning, not a
    failed training call. ``run.finish()`` waits for it."""
    if not SETTINGS.log_models:
        return
    try:
        snapshot = pickle.dumps((model, input_example), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a lambda inside, an open file…: saved now, from the object itself
        _save(run, model, name, input_example)
        return

    def save() -> None:
        # Only this process's own bytes are unpickled, a moment after it pickled them.
        copy, example = pickle.loads(snapshot)
        _save(run, copy, name, example)

    done = BACKGROUND.submit(save)

    def wait() -> None:
        done.wait()

    run.add_finish_hook(wait)


def _save(run: Run, model: Any, name: str, input_example: Any) -> None:
    try:
        run.log_model(model, name, input_example=input_example)
    except (LabkeepError, OSError, TypeError, ValueError) as exc:
        logger.warning("model %r of run %s was not saved: %s", name, run.uuid[:8], exc)


def patch_functions(owners: Sequence[Any], name: str, wrap: Any) -> None:
    """Replace function ``name`` in each module of ``owners`` by ``wrap(original)``, once
    (modules that imported the function by name hold their own reference to it)."""
    wrapped: dict[int, Any] = {}
    for owner in owners:
        original = getattr(owner, name, None)
        if original is None or hasattr(original, "__labkeep_autolog__"):
            continue
        patched = wrapped.get(id(original))
        if patched is None:
            patched = wrap(original)
            patched.__labkeep_autolog__ = True
            wrapped[id(original)] = patched
        setattr(owner, name, patched)


class BoosterCallback(ABC):
    """What the XGBoost and LightGBM callbacks share: their options (log the model, log the
    feature importances of ``importance_type``) and the run of the training under way."""

    def __init__(
        self,
        *,
        log_model: bool = True,
        log_feature_importance: bool = True,
        importance_type: str = "gain",
    ) -> None:
        super().__init__()
        self.log_model = log_model
        self.log_feature_importance = log_feature_importance
        self.importance_type = importance_type
        self._holder: RunFor | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # The scikit-learn wrappers copy their callbacks: a copy starts afresh.
        return type(self)(
            log_model=self.log_model,
            log_feature_importance=self.log_feature_importance,
            importance_type=self.importance_type,
        )

    def log_booster(self, run: Run, booster: Any) -> None:
        """The booster as a model, its best iteration and its feature importances, as the
        options say."""
        name = model_name(run)
        suffix = name[len("model") :]
        best = self.best_iteration(booster)
        if best is not None:
            run.summary.update({"best_iteration": best})
        if self.log_feature_importance:
            names, values = self.importances(booster)
            if names:
                log_feature_importance(
                    run,
                    names,
                    values,
                    name="feature_importance" + suffix,
                    importance_type=self.importance_type,
                )
        if self.log_model and SETTINGS.log_models:
            log_model_quietly(run, booster, name)

    @abstractmethod
    def best_iteration(self, booster: Any) -> int | None:
        """The booster's best iteration, when early stopping found one."""

    @abstractmethod
    def importances(self, booster: Any) -> tuple[list[str], list[float]]:
        """The booster's features and their importances of :attr:`importance_type`."""


def wrap_train(
    framework: str,
    callback_type: type[Any],
    default_rounds: int,
    *,
    rounds_in_params: bool = False,
    call: Callable[[Run, Any, Callable[[], Any]], Any] | None = None,
) -> Callable[[Any], Any]:
    """The wrapper :func:`patch_functions` puts over a boosting library's ``train``
    (``xgboost.train``, ``lightgbm.train``): a top-level call logs its ``params`` and
    ``num_boost_round`` (``default_rounds`` when not given) and runs with the framework's
    callback added, unless the call already has one.

    ``rounds_in_params``: the library reads ``num_boost_round`` from ``params`` too, and
    that value wins over the argument. ``call(run, callback, train)``, when given, makes
    the training call ``train()`` itself and returns its result.
    """

    def wrap(original: Any) -> Any:
        signature = inspect.signature(original)

        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            if not active(framework):
                return original(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            with training(framework, framework) as run:
                if run is None:
                    return original(*args, **kwargs)
                given = dict(bound.arguments.get("params") or {})
                rounds = bound.arguments.get("num_boost_round", default_rounds)
                if rounds_in_params:
                    config = {"num_boost_round": rounds, **given}
                else:
                    config = {**given, "num_boost_round": rounds}
                run.config.update(plain_params(config))
                callbacks = list(bound.arguments.get("callbacks") or [])
                mine = next((c for c in callbacks if isinstance(c, callback_type)), None)
                if mine is None:
                    mine = callback_type()
                    callbacks.append(mine)
                bound.arguments["callbacks"] = callbacks
                if call is None:
                    return original(*bound.args, **bound.kwargs)
                return call(run, mine, lambda: original(*bound.args, **bound.kwargs))

        return train

    return wrap


#: Longest text kept for a param value that is not a number, text or list of them.
MAX_PARAM_TEXT = 250


def plain_params(params: Any) -> dict[str, Any]:
    """A framework's params as values a run takes: numbers, text, bools, None, lists of
    them and nested dicts; numpy scalars as numbers, anything else as its (shortened) repr."""
    return {str(key): _plain_value(value) for key, value in dict(params).items()}


def _plain_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return plain_params(value)
    if isinstance(value, list | tuple):
        items = [_plain_value(v) for v in value]
        if all(v is None or isinstance(v, bool | int | float | str) for v in items):
            return items
    elif hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _plain_value(value.item())
    text = repr(value)
    return text if len(text) <= MAX_PARAM_TEXT else text[: MAX_PARAM_TEXT - 1] + "…"


#: How many features get a summary value each (the most important ones); the JSON has all.
SUMMARY_FEATURES = 100


def log_feature_importance(
    run: Run,
    names: Sequence[str],
    values: Sequence[float],
    *,
    name: str = "feature_importance",
    importance_type: str | None = None,
) -> None:
    """Store feature importances with the run: every feature, most important first, as the
    :class:`labkeep.Table` media ``NAME`` at step 0 (columns ``feature``, ``importance`` and,
    when given, ``importance_type``), read back with ``RunView.media(NAME)``; and the
    :data:`SUMMARY_FEATURES` most important as summary values ``NAME.FEATURE``."""
    from labkeep._media import Table

    rows = sorted(zip(names, (float(v) for v in values), strict=True), key=lambda r: -r[1])
    columns = ["feature", "importance"]
    data: list[list[Any]] = [[feature, value] for feature, value in rows]
    if importance_type is not None:
        columns.append("importance_type")
        data = [[*row, importance_type] for row in data]
    run.log({name: Table(data, columns=columns)}, step=0)
    run.summary.update({f"{name}.{feature}": value for feature, value in rows[:SUMMARY_FEATURES]})


def require(package: str, minimum: str, module: Any = None) -> Any:
    """The framework ``package``, imported, or a one-line error naming the version needed."""
    from labkeep.errors import IntegrationError

    if module is None:
        import importlib

        try:
            module = importlib.import_module(package)
        except ImportError:
            raise IntegrationError(
                f"{package} is not installed: pip install '{package}>={minimum}' "
                "(or labkeep[integrations])"
            ) from None
    version = str(getattr(module, "__version__", "0"))
    if _version_tuple(version) < _version_tuple(minimum):
        raise IntegrationError(
            f"{package} {version} is too old for labkeep: pip install '{package}>={minimum}'"
        )
    return module


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"2.1.3rc1"`` -> ``(2, 1, 3)``: the leading digits of the first three parts."""
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)
