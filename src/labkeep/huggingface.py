"""Hugging Face integration: ``labkeep.huggingface.Callback()`` for ``transformers.Trainer``.

Importing it imports Transformers (``pip install 'labkeep[integrations]'``): the training
arguments and model config as params, metrics at the global step, the final model.

>>> import labkeep.huggingface
>>> transformers.Trainer(model, args, callbacks=[labkeep.huggingface.Callback()])  # doctest: +SKIP
"""

from labkeep.integrations._huggingface import Callback

__all__ = ["Callback"]
