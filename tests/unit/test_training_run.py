"""What the framework callbacks share: the one-line error for a framework that is missing or
too old (read from the installed distributions' real metadata), and configs as params."""

from __future__ import annotations

import enum
import importlib.metadata

import pytest

from labkeep.errors import IntegrationError, LabkeepError
from labkeep.integrations._training_run import numeric, params_of, release, require


def test_release_reads_the_numbers_of_a_version() -> None:
    assert release("2.13.0+cpu") == (2, 13, 0)
    assert release("3.0.0rc1") == (3, 0, 0)
    assert release("4.36") == (4, 36)
    assert release("2.13.0") > release("2.9")


def test_a_missing_framework_is_one_line_naming_package_and_version() -> None:
    with pytest.raises(IntegrationError) as caught:
        require("labkeep.example", ("labkeep-no-such-framework",), "2.1")
    message = str(caught.value)
    assert message == (
        "labkeep.example needs labkeep-no-such-framework>=2.1, which is not installed: "
        "pip install 'labkeep-no-such-framework>=2.1' (or 'labkeep[integrations]')"
    )
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, LabkeepError)


def test_a_framework_too_old_is_one_line_with_the_version_found() -> None:
    found = importlib.metadata.version("numpy")
    with pytest.raises(IntegrationError) as caught:
        require("labkeep.example", ("numpy",), "999.0")
    assert str(caught.value) == (
        f"labkeep.example needs numpy>=999.0, found numpy {found}: "
        "pip install --upgrade 'numpy>=999.0'"
    )
    assert require("labkeep.example", ("labkeep-no-such-framework", "numpy"), "1.0") == found


class Colour(enum.Enum):
    RED = "red"


def test_params_flatten_and_keep_what_labkeep_cannot_store_as_text() -> None:
    params = params_of(
        {"optimizer": {"name": "adam", "lr": 0.01, "betas": (0.9, 0.99)}, "colour": Colour.RED,
         "id2label": {0: "neg", 1: "pos"}, "empty": {}, "none": None},
        prefix="cfg.",
    )  # fmt: skip
    assert params == {
        "cfg.optimizer.name": "adam",
        "cfg.optimizer.lr": 0.01,
        "cfg.optimizer.betas": [0.9, 0.99],
        "cfg.colour": "Colour.RED",
        "cfg.id2label.0": "neg",
        "cfg.id2label.1": "pos",
        "cfg.empty": {},
        "cfg.none": None,
    }


def test_numeric_takes_one_number_of_any_kind() -> None:
    import numpy as np

    assert numeric(3) == 3.0 and numeric(True) == 1.0 and numeric(np.float32(0.5)) == 0.5
    assert numeric(np.array([2.0])) == 2.0
    assert numeric("0.3") is None or numeric("0.3") == 0.3
    assert numeric(np.array([1.0, 2.0])) is None and numeric(None) is None
