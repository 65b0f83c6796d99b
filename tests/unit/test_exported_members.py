"""The public API is what ``labkeep.__all__`` lists, and every listed name exists."""

from __future__ import annotations

import types

import labkeep


def test_all_exported_names_exist() -> None:
    missing = [name for name in labkeep.__all__ if not hasattr(labkeep, name)]
    assert missing == []


def test_all_public_members_are_exported() -> None:
    public = {
        name
        for name, value in vars(labkeep).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(labkeep.__all__) == set()


def test_all_has_no_duplicates() -> None:
    assert len(labkeep.__all__) == len(set(labkeep.__all__))


def test_core_api_is_exported() -> None:
    core = {"init", "log", "config", "summary", "finish", "active_run", "get_run", "runs"}
    assert core <= set(labkeep.__all__)
    assert issubclass(labkeep.LabkeepError, Exception)
    assert isinstance(labkeep.__version__, str) and labkeep.__version__
