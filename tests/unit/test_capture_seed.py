import os
import random

import numpy
import pytest

from labkeep.capture import seed_everything
from labkeep.errors import InvalidInputError


@pytest.fixture(autouse=True)
def _restore_hashseed(monkeypatch: pytest.MonkeyPatch) -> None:
    # seed_everything sets PYTHONHASHSEED when unset; keep that out of other tests.
    monkeypatch.setenv("PYTHONHASHSEED", "unset-marker")
    monkeypatch.delenv("PYTHONHASHSEED")


def test_random_and_numpy_are_reproducible_after_seeding() -> None:
    seed_everything(123)
    first = (random.random(), numpy.random.rand())
    seed_everything(123)
    second = (random.random(), numpy.random.rand())
    seed_everything(124)
    third = (random.random(), numpy.random.rand())
    assert first == second
    assert first != third


def test_reports_what_was_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    result = seed_everything(7)
    assert result["seed"] == 7
    assert result["seeded"][:2] == ["random", "numpy"]
    assert result["pythonhashseed"] == "7"
    assert result["pythonhashseed_in_process"] is False
    assert os.environ["PYTHONHASHSEED"] == "7"


def test_existing_pythonhashseed_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    result = seed_everything(7)
    assert result["pythonhashseed"] == "0"
    assert result["pythonhashseed_in_process"] is True
    assert os.environ["PYTHONHASHSEED"] == "0"


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "3", True])
def test_invalid_seed_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="seed must be an integer"):
        seed_everything(bad)  # type: ignore[arg-type]
