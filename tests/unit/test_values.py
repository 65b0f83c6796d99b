"""Validation and flattening of what users log (``labkeep._values``)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from labkeep._values import (
    MAX_KEY_LENGTH,
    check_key,
    check_keys,
    check_metric,
    check_text,
    check_value,
    decode_value,
    encode_value,
    flatten,
    run_number,
    run_ref,
    short_repr,
)
from labkeep.errors import InvalidInputError, LabkeepError, NotFoundError


@dataclass
class Optimizer:
    name: str = "adam"
    lr: float = 1e-3


@dataclass
class TrainConfig:
    epochs: int = 3
    optimizer: Optimizer = field(default_factory=Optimizer)
    layers: list[int] = field(default_factory=lambda: [64, 32])


def test_nested_dicts_flatten_to_dotted_keys() -> None:
    assert flatten({"optimizer": {"lr": 0.1, "betas": {"b1": 0.9}}, "epochs": 3}) == {
        "optimizer.lr": 0.1,
        "optimizer.betas.b1": 0.9,
        "epochs": 3,
    }


def test_namespace_flattens() -> None:
    ns = argparse.Namespace(lr=0.01, name="x", sub=argparse.Namespace(depth=2))
    assert flatten(ns) == {"lr": 0.01, "name": "x", "sub.depth": 2}


def test_dataclass_flattens_with_nested_dataclass() -> None:
    assert flatten(TrainConfig()) == {
        "epochs": 3,
        "optimizer.name": "adam",
        "optimizer.lr": 1e-3,
        "layers": [64, 32],
    }


def test_empty_nested_mapping_is_kept_as_empty_dict() -> None:
    assert flatten({"extra": {}}) == {"extra": {}}


@pytest.mark.parametrize(
    "value",
    [0, -7, 2**70, 1.5, float("inf"), True, False, "text", "", None, [1, "a", None, 2.5, [True]]],
)
def test_typed_values_are_kept_exactly(value: object) -> None:
    checked = check_value("k", value)
    assert checked == value
    assert type(checked) is type(value)
    assert decode_value(encode_value(checked)[3]) == value


def test_nan_param_round_trips() -> None:
    assert math.isnan(decode_value(encode_value(float("nan"))[3]))


def test_bool_is_not_turned_into_int() -> None:
    vtype, num, _text, exact = encode_value(True)
    assert (vtype, num, exact) == ("bool", 1.0, "true")
    assert decode_value(exact) is True


def test_encode_value_columns() -> None:
    assert encode_value(3)[:3] == ("int", 3.0, None)
    assert encode_value(2**64)[:3] == ("int", None, None)  # too big for a float index column
    assert encode_value("adam")[:3] == ("str", None, "adam")
    assert encode_value(None)[:3] == ("null", None, None)
    assert encode_value([1, 2])[:3] == ("list", None, None)
    assert encode_value(float("nan"))[:3] == ("float", None, None)


def test_numpy_scalars_and_arrays_become_python_values() -> None:
    assert type(check_value("k", np.int64(4))) is int
    assert type(check_value("k", np.float32(0.5))) is float
    assert check_value("k", np.array([1, 2])) == [1, 2]
    assert check_value("k", (1, 2)) == [1, 2]


def test_paths_are_stored_as_text() -> None:
    assert check_value("data", Path("/data/train.csv")) == "/data/train.csv"


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes", complex(1, 2)])
def test_unserialisable_param_names_the_key(value: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        flatten({"model": {"weights": value}})
    message = str(info.value)
    assert "'model.weights'" in message
    assert "\n" not in message


def test_unserialisable_item_in_a_list_names_the_key() -> None:
    with pytest.raises(InvalidInputError, match="'layers'"):
        check_value("layers", [1, {2}])


def test_config_of_wrong_type_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="dict, argparse Namespace or dataclass"):
        flatten(42)


@pytest.mark.parametrize("key", ["", "   "])
def test_empty_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidInputError, match="empty metric key"):
        check_key(key, "metric key")


def test_overlong_key_is_refused_naming_it() -> None:
    key = "a" * (MAX_KEY_LENGTH + 1)
    with pytest.raises(InvalidInputError) as info:
        check_key(key, "metric key")
    assert "aaaaaaaaaa" in str(info.value)
    assert str(MAX_KEY_LENGTH + 1) in str(info.value)
    assert check_key("a" * MAX_KEY_LENGTH) == "a" * MAX_KEY_LENGTH


def test_non_string_and_nul_keys_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="is a int"):
        check_key(3)
    with pytest.raises(InvalidInputError, match="NUL"):
        check_key("a\x00b")


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("", "empty metric key"),
        (" \t", "empty metric key"),
        ("k" * (MAX_KEY_LENGTH + 1), "kkkkkkkk"),
        ("a\x00b", "NUL"),
        ("\ud800x", "lone surrogate"),
        (7, "is a int"),
    ],
)
def test_many_keys_are_checked_as_one_key_is(bad: object, fragment: str) -> None:
    good = [f"layer{i}/w" for i in range(50)]
    check_keys(good, "metric key")
    check_keys(["é" * MAX_KEY_LENGTH, "x y"], "metric key")
    with pytest.raises(InvalidInputError, match="metric key") as info:
        check_keys([*good[:20], bad, *good[20:]], "metric key")
    assert fragment in str(info.value)


def test_overlong_nested_param_key_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="param key"):
        flatten({"a": {"b" * MAX_KEY_LENGTH: 1}})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 3, np.float64(2.5)])
def test_metric_values_are_floats_and_keep_nan_and_inf(value: float) -> None:
    got = check_metric("loss", value)
    assert isinstance(got, float)
    assert got == value or (math.isnan(got) and math.isnan(value))


@pytest.mark.parametrize("value", ["0.5", None, True, [1.0], np.array([1.0, 2.0])])
def test_non_numeric_metric_is_refused_naming_the_key(value: object) -> None:
    with pytest.raises(LabkeepError) as info:
        check_metric("val/loss", value)
    assert "'val/loss'" in str(info.value)
    assert "\n" not in str(info.value)


def test_zero_dim_numpy_metric_is_accepted() -> None:
    assert check_metric("acc", np.array(0.75)) == 0.75


@pytest.mark.parametrize("value", [10**400, -(10**400), Fraction(10**400)])
def test_metric_beyond_the_largest_float_is_refused_naming_the_key(value: object) -> None:
    with pytest.raises(InvalidInputError, match="'big'") as info:
        check_metric("big", value)
    assert "\n" not in str(info.value)


def test_ints_too_long_to_read_back_are_refused_as_params() -> None:
    assert check_value("ok", 2**100) == 2**100
    with pytest.raises(InvalidInputError, match="'huge'"):
        check_value("huge", 10**5000)


@pytest.mark.parametrize("text", ["\ud800", "a\udcffb"])
def test_lone_surrogates_are_refused_in_keys_values_and_notes(text: str) -> None:
    with pytest.raises(InvalidInputError, match="surrogate"):
        check_key(text)
    with pytest.raises(InvalidInputError, match="surrogate"):
        check_value("k", text)
    with pytest.raises(InvalidInputError, match="surrogate"):
        check_value("k", {text: 1})
    with pytest.raises(InvalidInputError, match="surrogate"):
        check_text(text, "notes")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1", 1),
        ("0012", 12),
        (str(2**31 - 1), 2**31 - 1),
        (str(2**31), None),
        ("9" * 5000, None),
        ("²", None),
        ("٣", None),
        ("-1", None),
        ("1.0", None),
        ("", None),
    ],
)
def test_run_number_is_ascii_digits_within_32_bits(text: str, number: int | None) -> None:
    assert run_number(text) == number


def test_run_ref_refuses_what_no_store_can_look_up() -> None:
    assert run_ref(" 12 ") == "12"
    assert run_ref(2**63 - 1) == str(2**63 - 1)
    with pytest.raises(NotFoundError, match="below 2\\*\\*63"):
        run_ref(10**5000)
    with pytest.raises(InvalidInputError, match="NUL"):
        run_ref("a\x00")
    with pytest.raises(InvalidInputError, match="surrogate"):
        run_ref("\udcff")


def test_short_repr_of_what_cannot_be_printed_in_full() -> None:
    assert short_repr(10**5000) == "an int of 16,610 bits"
    assert short_repr("x" * 100) == "'" + "x" * 36 + "..."

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short_repr(Broken()) == "a Broken"
