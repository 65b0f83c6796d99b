"""Keras 3 integration: ``labkeep.keras.Callback()`` for ``model.fit``.

Importing it imports Keras (``pip install 'labkeep[integrations]'``): epoch and batch
metrics, the optimizer's config, the model summary, the best epoch's model, and optionally
sample predictions as images.

>>> import labkeep.keras
>>> model.fit(x, y, epochs=5, callbacks=[labkeep.keras.Callback()])  # doctest: +SKIP
"""

from labkeep.integrations._keras import Callback

__all__ = ["Callback"]
