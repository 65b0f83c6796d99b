"""LightGBM integration: ``labkeep.lightgbm.Callback()`` for ``lightgbm.train`` and ``LGBMClassifier``.

Importing it imports LightGBM (``pip install 'labkeep[integrations]'``). ``labkeep.autolog()``
adds the callback to every training by itself.

>>> import labkeep.lightgbm
>>> lightgbm.train(params, train_set, valid_sets=[valid],
...                callbacks=[labkeep.lightgbm.Callback()])  # doctest: +SKIP
"""

from labkeep.integrations._lightgbm import Callback

__all__ = ["Callback"]
