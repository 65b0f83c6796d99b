"""The one error tree. Every error a user can cause is a :class:`LabkeepError` with a
one-line message that says what to do; the CLI maps these to messages and exit codes."""

from __future__ import annotations


class LabkeepError(Exception):
    """Base of every error labkeep raises on purpose."""

    exit_code = 2


class InvalidInputError(LabkeepError, ValueError):
    """A value handed to labkeep cannot be stored (bad key, non-numeric metric, ...)."""


class NotFoundError(LabkeepError, LookupError):
    """A run, experiment, artifact or key that does not exist."""

    exit_code = 1


class AmbiguousRefError(LabkeepError, LookupError):
    """A run reference matches more than one run."""

    exit_code = 1


class StoreError(LabkeepError):
    """The store cannot be opened, migrated or written."""


class SchemaVersionError(StoreError):
    """The store was written by a different labkeep version and needs ``labkeep db upgrade``."""


class RunStateError(LabkeepError):
    """An operation that does not fit the run's state (logging to a finished run, ...)."""


class DamagedStoreError(StoreError):
    """The store's database or one of its blobs is damaged: ``labkeep db check`` says what,
    ``labkeep db recover`` rebuilds the database from what can still be read."""


class TrialPruned(LabkeepError):
    """Raised by ``run.log()`` inside a :func:`labkeep.sweep` objective when the sweep's
    pruner stops the trial (Optuna's ``TrialPruned``, raised for you). Let it propagate: the
    trial's run ends ``interrupted`` and the sweep records it as pruned."""


class ReadOnlyStoreError(StoreError):
    """A change asked of a store that can only be read (a read-only mount or file)."""


class ModelError(LabkeepError):
    """A model cannot be stored or loaded: a framework that cannot save it, a damaged model
    file, or a framework missing where it is loaded."""

    exit_code = 1


class UntrustedModelError(ModelError):
    """Loading the model would run code from the store (a pickle, or types skops does not
    trust by default): load it only from a store you trust, with ``trusted=True``."""


class IntegrationError(LabkeepError, ImportError):
    """A framework integration cannot work: its framework (XGBoost, Keras, Lightning,
    Transformers…) is missing or older than the integration supports (the message names the
    package and the version needed)."""

    exit_code = 1
