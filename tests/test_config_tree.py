"""The generic configuration-tree operations, on a small tree of their own (independent of the run config)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from vmhan_lib.config_tree import ConfigError, apply_overrides, field_names, from_dict, parse_assignments, to_dict


@dataclass(frozen=True)
class Inner:
    width: int = 4
    rate: float = 0.5
    name: str | None = None
    tags: tuple[str, ...] = ("a",)
    on: bool = True

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    limit: int | None = None


def test_round_trip_through_json_restores_tuples_and_nesting() -> None:
    tree = Outer(Inner(width=7, tags=("x", "y"), name="n"), limit=3)
    assert from_dict(Outer, json.loads(json.dumps(to_dict(tree)))) == tree


@pytest.mark.parametrize("value, expected", [
    ("12", 12), (12, 12), ("none", None),
])
def test_optional_int_from_strings_and_values(value, expected) -> None:
    assert apply_overrides(Outer(), {"limit": value}).limit == expected


def test_overrides_parse_each_type_from_strings() -> None:
    tree = apply_overrides(Outer(), {"inner.width": "9", "inner.rate": "1e-3", "inner.name": "x",
                                     "inner.tags": "p, q", "inner.on": "false"})
    assert tree.inner == Inner(width=9, rate=1e-3, name="x", tags=("p", "q"), on=False)
    assert apply_overrides(Outer(), {"inner.tags": ["r"], "inner.rate": 2}).inner.tags == ("r",)


@pytest.mark.parametrize("overrides, message", [
    ({"inner.widht": 3}, "unknown field 'inner.widht': inner has no 'widht'; allowed: width, rate, name, tags, on"),
    ({"outer": 1}, "unknown field 'outer'"),
    ({"inner": 3}, "'inner' is a group; set one of its fields: inner.width"),
    ({"limit.x": 3}, "limit is a value, not a group"),
    ({"inner.width": "wide"}, "inner.width: 'wide' is not an integer"),
    ({"inner.width": 1.5}, "inner.width: 1.5 is not an integer"),
    ({"inner.on": "maybe"}, "inner.on: 'maybe' is not true/false"),
    ({"inner.width": None}, "inner.width: None is not allowed"),
    ({"inner.width": 0}, "inner.width: must be >= 1, got 0"),
])
def test_every_mistake_is_one_line_naming_the_field(overrides, message) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(Outer(), overrides)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_keys_in_a_stored_dict_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown field.*inner.extra"):
        from_dict(Outer, {"inner": {"extra": 1}})


def test_field_names_and_assignments() -> None:
    assert field_names(Outer) == ["inner.width", "inner.rate", "inner.name", "inner.tags", "inner.on", "limit"]
    assert parse_assignments(["a.b=1", "c= x=y"]) == {"a.b": "1", "c": " x=y"}
    with pytest.raises(ConfigError, match="expected name=value"):
        parse_assignments(["train.epochs"])
