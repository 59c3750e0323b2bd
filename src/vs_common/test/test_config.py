"""Nested config dataclasses: built from nested mappings and dotted keys, flattened and read back."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from vs_common.core.config import (
    check_range,
    config_fields,
    describe,
    field_descriptions,
    flatten_config,
    flatten_mapping,
    from_mapping,
)
from vs_common.core.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    ratio: float = describe("a ratio in (0, 1]", default=0.75)
    sizes: tuple[int, ...] = describe("sizes", default=(1, 2))

    def __post_init__(self) -> None:
        check_range("ratio", self.ratio, 0.0, 1.0, lo_open=True)


@dataclass(frozen=True)
class Middle:
    inner: Inner = describe("inner settings", default_factory=Inner)
    name: str = describe("a name", default="m")


@dataclass(frozen=True)
class Outer:
    middle: Middle = describe("middle settings", default_factory=Middle)
    other: Inner = describe("another Inner, its own defaults", default_factory=lambda: Inner(ratio=0.5))
    top: int = describe("a top-level number", default=3)


def test_nested_mappings_and_dotted_keys_build_the_same_config() -> None:
    nested = from_mapping(Outer, {"middle": {"inner": {"ratio": 0.9}}, "top": 4})
    dotted = from_mapping(Outer, {"middle.inner.ratio": 0.9, "top": 4})
    mixed = from_mapping(Outer, {"middle": {"inner.ratio": 0.9}, "top": 4})
    assert nested == dotted == mixed == Outer(middle=Middle(inner=Inner(ratio=0.9)), top=4)
    assert from_mapping(Outer, {}).other.ratio == 0.5  # a nested default the outer config chose
    assert from_mapping(Outer, {"other.sizes": [3]}).other == Inner(ratio=0.5, sizes=(3,))  # lists → tuples
    # dotted keys on top of a nested mapping or a whole instance
    assert from_mapping(Outer, {"middle": {"name": "a"}, "middle.name": "b"}).middle.name == "b"
    assert from_mapping(Outer, {"other": Inner(ratio=0.2), "other.sizes": (5,)}).other == Inner(0.2, (5,))


def test_errors_name_the_full_dotted_path_and_the_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown Inner keys \['middle.inner.ratoi'\]") as err:
        from_mapping(Outer, {"middle": {"inner": {"ratoi": 0.9}}})
    assert "'middle.inner.ratio'" in str(err.value) and "'middle.inner.sizes'" in str(err.value)
    with pytest.raises(ConfigError, match=r"unknown Outer keys \['nope.x'\]"):
        from_mapping(Outer, {"nope.x": 1})
    with pytest.raises(ConfigError, match=r"^middle.inner.ratio=2.0 is out of range"):
        from_mapping(Outer, {"middle.inner.ratio": 2.0})
    with pytest.raises(ConfigError, match="middle is a group of settings"):
        from_mapping(Outer, {"middle": 3})
    with pytest.raises(ConfigError, match="unknown Outer keys"):
        from_mapping(Outer, {"top.x": 1})  # a plain setting has no sub-settings


def test_flatten_and_back() -> None:
    cfg = Outer(middle=Middle(inner=Inner(ratio=0.9, sizes=(4,)), name="x"), top=7)
    flat = flatten_config(cfg)
    assert flat == {"middle.inner.ratio": 0.9, "middle.inner.sizes": (4,), "middle.name": "x",
                    "other.ratio": 0.5, "other.sizes": (1, 2), "top": 7}
    assert from_mapping(Outer, flat) == cfg
    assert [n for n, _, _ in config_fields(Outer)] == list(flat)
    assert flatten_mapping({"a": {"b": {"c": 1}, "d": [1]}, "e": 2}) == {"a.b.c": 1, "a.d": [1], "e": 2}
    assert field_descriptions(Outer)["middle.inner.ratio"] == "a ratio in (0, 1]"
