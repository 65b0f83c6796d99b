"""PyTorch Lightning integration: ``labkeep.lightning.Logger()`` for ``Trainer(logger=...)``.

Importing it imports Lightning (``pip install 'labkeep[integrations]'``): hyperparameters as
params, metrics at the global step, checkpoints as models, the run's status at the end.

>>> import labkeep.lightning
>>> trainer = lightning.Trainer(logger=labkeep.lightning.Logger())  # doctest: +SKIP
"""

from labkeep.integrations._lightning import Logger

__all__ = ["Logger"]
