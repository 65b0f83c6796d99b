"""XGBoost integration: ``labkeep.xgboost.Callback()`` for ``xgboost.train`` and ``XGBClassifier``.

Importing it imports XGBoost (``pip install 'labkeep[integrations]'``). ``labkeep.autolog()``
adds the callback to every training by itself.

>>> import labkeep.xgboost
>>> xgboost.train(params, dtrain, evals=[(dvalid, "valid")],
...               callbacks=[labkeep.xgboost.Callback()])  # doctest: +SKIP
"""

from labkeep.integrations._xgboost import Callback

__all__ = ["Callback"]
