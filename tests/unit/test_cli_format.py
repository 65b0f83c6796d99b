"""How values read in the terminal: a float stays a float, an int an int."""

from __future__ import annotations

import pytest

from labkeep.cli._format import format_value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-1.0, "-1.0"),
        (1.0, "1.0"),
        (0.0, "0.0"),
        (2.0e6, "2e+06"),
        (100000.0, "100000.0"),
        (0.5, "0.5"),
        (0.0625, "0.0625"),
        (1e-5, "1e-05"),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
        (-1, "-1"),
        (1, "1"),
        (True, "True"),
        (None, "None"),
        ("1.0", "1.0"),
    ],
)
def test_floats_keep_their_type_on_screen(value: object, text: str) -> None:
    assert format_value(value) == text
