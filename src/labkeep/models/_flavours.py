"""How each kind of model is saved and loaded: one :class:`Flavour` per framework.

A model's flavour is found from the modules already imported (a PyTorch module exists only
where torch was imported), so detecting never imports a framework. Each framework's own safe
format is used where it has one: scikit-learn through skops (no pickle: a file can only build
the types it is allowed to), XGBoost's UBJSON, LightGBM's text, Keras' ``.keras`` (loaded in
safe mode), PyTorch state dicts loaded with ``weights_only``. Anything else is pickled with
cloudpickle, and a pickle runs code when it is loaded: such a model is marked unsafe and
loads only with ``trusted=True``.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkeep.errors import ModelError, UntrustedModelError

#: ``trusted=``: True trusts everything the file names; a list, only those types (skops).
Trust = bool | Sequence[str]


@dataclass(frozen=True, slots=True)
class Flavour:
    name: str
    #: The model file's name in the model's directory.
    file: str
    #: The distributions whose versions are recorded, main framework first.
    distributions: tuple[str, ...]
    #: Whether loading it can run no code from the file.
    safe: bool
    detect: Callable[[Any], bool]
    save: Callable[[Any, Path], None]
    #: ``load(path, model_class, trusted)``
    load: Callable[[Path, str, Trust], Any]
    #: Whether the loader reads the format from the file's name (a blob has none).
    needs_name: bool = False


def _imported(module: str) -> Any:
    """The module if the process imported it already, else None (never imports it)."""
    return sys.modules.get(module)


def class_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


# -- scikit-learn, through skops --------------------------------------------------------------


def _is_sklearn(model: Any) -> bool:
    base = _imported("sklearn.base")
    return base is not None and isinstance(model, base.BaseEstimator)


def _save_skops(model: Any, path: Path) -> None:
    try:
        import skops.io
    except ImportError:
        raise ModelError(
            "storing a scikit-learn model needs skops (its safe format): "
            "pip install 'labkeep[models]'"
        ) from None
    skops.io.dump(model, path)
    _canonical_skops(path)


def _canonical_skops(path: Path) -> None:
    """Make the file depend on the model only: skops names nodes and array files by
    ``id()`` of objects (different at each save) and stamps the time of writing, so the same
    model would be stored again at each log instead of once. Ids are renumbered in order of
    appearance (shared references keep one number) and every entry gets one timestamp."""
    import json
    import re
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = {info.filename: (info, src.read(info)) for info in src.infolist()}
    numbers: dict[int, int] = {}

    def number(old: int) -> int:
        return numbers.setdefault(old, len(numbers))

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = number(value)
                elif key == "file" and isinstance(value, str) and re.fullmatch(r"\d+\.npy", value):
                    out[key] = f"{number(int(value[:-4]))}.npy"
                else:
                    out[key] = renumber(value)
            return out
        if isinstance(node, list):
            return [renumber(v) for v in node]
        return node

    schema_info, schema = entries.pop("schema.json")
    canonical = json.dumps(renumber(json.loads(schema)), indent=2).encode()
    renamed = {}
    for name, (info, data) in entries.items():
        if re.fullmatch(r"\d+\.npy", name) and int(name[:-4]) in numbers:
            name = f"{numbers[int(name[:-4])]}.npy"
        renamed[name] = (info, data)
    renamed["schema.json"] = (schema_info, canonical)
    with zipfile.ZipFile(path, "w") as dst:
        for name in sorted(renamed):
            info, data = renamed[name]
            stable = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            stable.compress_type = info.compress_type
            stable.external_attr = info.external_attr
            dst.writestr(stable, data)


def _load_skops(path: Path, model_class: str, trusted: Trust) -> Any:
    try:
        import skops.io
    except ImportError:
        raise ModelError(
            "loading a scikit-learn model needs skops: pip install 'labkeep[models]'"
        ) from None
    if trusted is True:
        found = skops.io.get_untrusted_types(file=path)
        return skops.io.load(path, trusted=found or None)
    from skops.io.exceptions import UntrustedTypesFoundException

    allowed = list(trusted or ())
    try:  # one pass over the file when nothing is refused (the common case)
        return skops.io.load(path, trusted=allowed or None)
    except UntrustedTypesFoundException:
        pass
    refused = [t for t in skops.io.get_untrusted_types(file=path) if t not in allowed]
    # skops leaves these out of its defaults on purpose: a tree's node indices, for one,
    # are used without bounds checks, so a crafted file can read out of memory.
    listed = ", ".join(repr(t) for t in refused[:5]) + (", …" if len(refused) > 5 else "")
    raise UntrustedModelError(
        f"the model holds types skops does not trust by default ({listed}): if you trust "
        f"the store it comes from, load it with load_model(..., trusted=[{listed}])"
    )


# -- XGBoost and LightGBM, native formats -----------------------------------------------------

_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


def _is_xgboost(model: Any) -> bool:
    xgb = _imported("xgboost")
    return xgb is not None and isinstance(model, xgb.XGBModel | xgb.Booster)


def _save_xgboost(model: Any, path: Path) -> None:
    model.save_model(str(path))


def _load_xgboost(path: Path, model_class: str, trusted: Trust) -> Any:
    import xgboost

    short = model_class.rsplit(".", 1)[-1]
    model: Any = getattr(xgboost, short)() if short in _XGB_CLASSES else xgboost.Booster()
    model.load_model(str(path))
    return model


def _is_lightgbm_booster(model: Any) -> bool:
    lgb = _imported("lightgbm")
    return lgb is not None and isinstance(model, lgb.Booster)


def _save_lightgbm(model: Any, path: Path) -> None:
    model.save_model(str(path))


def _load_lightgbm(path: Path, model_class: str, trusted: Trust) -> Any:
    import lightgbm

    return lightgbm.Booster(model_file=str(path))


# -- Keras ------------------------------------------------------------------------------------


def _is_keras(model: Any) -> bool:
    keras = _imported("keras")
    return keras is not None and isinstance(model, keras.Model)


def _save_keras(model: Any, path: Path) -> None:
    model.save(str(path))


def _load_keras(path: Path, model_class: str, trusted: Trust) -> Any:
    import keras

    # safe_mode refuses the lambda layers that would run code from the file.
    return keras.saving.load_model(str(path), safe_mode=trusted is not True)


# -- PyTorch ----------------------------------------------------------------------------------


def _is_state_dict(model: Any) -> bool:
    torch = _imported("torch")
    return (
        torch is not None
        and isinstance(model, dict)
        and bool(model)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items())
    )


def _is_torch_module(model: Any) -> bool:
    torch = _imported("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _save_torch(model: Any, path: Path) -> None:
    import torch

    torch.save(model, path)


def _load_state_dict(path: Path, model_class: str, trusted: Trust) -> Any:
    import torch

    return torch.load(path, weights_only=True)


def _load_torch_module(path: Path, model_class: str, trusted: Trust) -> Any:
    import torch

    return torch.load(path, weights_only=False)


# -- anything else: cloudpickle ---------------------------------------------------------------


def _save_pickle(model: Any, path: Path) -> None:
    try:
        import cloudpickle
    except ImportError:
        raise ModelError(
            f"storing a {type(model).__name__} needs cloudpickle (no framework format fits "
            "it): pip install 'labkeep[models]'"
        ) from None
    with open(path, "wb") as fh:
        cloudpickle.dump(model, fh)


def _load_pickle(path: Path, model_class: str, trusted: Trust) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)  # only reached with trusted=True


FLAVOURS = (
    Flavour(
        "xgboost", "model.ubj", ("xgboost",), True, _is_xgboost, _save_xgboost, _load_xgboost, True
    ),
    Flavour(
        "lightgbm",
        "model.txt",
        ("lightgbm",),
        True,
        _is_lightgbm_booster,
        _save_lightgbm,
        _load_lightgbm,
    ),
    Flavour("keras", "model.keras", ("keras",), True, _is_keras, _save_keras, _load_keras, True),
    Flavour(
        "pytorch_state_dict",
        "state_dict.pt",
        ("torch",),
        True,
        _is_state_dict,
        _save_torch,
        _load_state_dict,
    ),
    Flavour(
        "pytorch",
        "model.pt",
        ("torch",),
        False,
        _is_torch_module,
        _save_torch,
        _load_torch_module,
    ),
    Flavour(
        "sklearn",
        "model.skops",
        ("scikit-learn", "skops", "numpy"),
        True,
        _is_sklearn,
        _save_skops,
        _load_skops,
    ),
)
PICKLE = Flavour(
    "cloudpickle",
    "model.pkl",
    ("cloudpickle",),
    False,
    lambda model: True,
    _save_pickle,
    _load_pickle,
)
_BY_NAME = {f.name: f for f in (*FLAVOURS, PICKLE)}


def detect(model: Any) -> Flavour:
    """The first flavour that claims ``model``; cloudpickle when none does."""
    for flavour in FLAVOURS:
        if flavour.detect(model):
            return flavour
    return PICKLE


def flavour_named(name: str, where: str) -> Flavour:
    flavour = _BY_NAME.get(name)
    if flavour is None:
        known = ", ".join(_BY_NAME)
        raise ModelError(
            f"{where} has flavour {name!r}, which this labkeep does not know ({known}): "
            "upgrade labkeep"
        )
    return flavour


def versions_of(flavour: Flavour, model: Any) -> dict[str, str]:
    """The versions of the distributions that load the model (and of Python)."""
    names = list(flavour.distributions)
    if flavour is PICKLE:
        # The package that defines the model's class is needed to unpickle it.
        top = type(model).__module__.split(".")[0]
        for dist in importlib.metadata.packages_distributions().get(top, [])[:1]:
            names.insert(0, dist)
    found: dict[str, str] = {}
    for dist in names:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    found["python"] = ".".join(str(v) for v in sys.version_info[:3])
    return found
