"""Generic operations on trees of frozen dataclasses: to/from plain dicts, and overrides by dotted name.

A configuration tree is a frozen dataclass whose fields are plain values (``int``, ``float``,
``bool``, ``str``, ``None``, tuples of those) or other such dataclasses. :func:`to_dict` and
:func:`from_dict` are inverses, also across a JSON round trip (tuples come back from lists).
:func:`apply_overrides` changes any field by its dotted name, e.g.
``{"features.text.model": "bert-base-uncased", "train.epochs": 20}``; values may be typed (a
notebook's ``overrides`` dict) or strings (the command line's ``--set name=value``), and every
mistake is a :class:`ConfigError` whose one-line message names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


DERIVED: dict[str, bool] = {"derived": True}
"""Metadata of a field computed from the data (a model's input widths), never set by the user:
not listed by :func:`field_names`, refused by :func:`apply_overrides`, kept by :func:`to_dict`."""


class UserError(ValueError):
    """A mistake in what a user gave (a setting, a data file): the one-line message is the whole story.
    The command line prints it alone (exit 2); IPython, so a notebook under Jupyter or papermill,
    shows it as its cell's only output line, no traceback above it (``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(UserError):
    """A configuration value or field name a user gave is wrong; the message says which and why."""


def to_dict(config: Any) -> dict[str, Any]:
    """The tree as nested plain dicts (tuples stay tuples; JSON turns them into lists)."""
    return dataclasses.asdict(config)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _settable(cls: type) -> dict[str, Any]:
    """The field types of ``cls`` a user may set (every field but the :data:`DERIVED` ones)."""
    derived = {f.name for f in dataclasses.fields(cls) if f.metadata.get("derived")}
    return {name: kind for name, kind in _field_types(cls).items() if name not in derived}


def _is_dataclass_type(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _union_members(kind: Any) -> tuple[Any, ...]:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return (kind,)


def _describe(kind: Any) -> str:
    names = []
    for member in _union_members(kind):
        if member is type(None):
            names.append("None")
        elif typing.get_origin(member) is tuple:
            names.append(f"a comma-separated list of {_describe(typing.get_args(member)[0])}")
        else:
            names.append({int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
                member, getattr(member, "__name__", str(member))))
    return " or ".join(names)


def _coerce(value: Any, kind: Any, name: str) -> Any:
    """``value`` as the field type ``kind``; strings are parsed (command line), typed values checked."""
    members = _union_members(kind)
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS and type(None) in members):
        if type(None) in members:
            return None
        raise ConfigError(f"{name}: None is not allowed; expected {_describe(kind)}")
    for member in members:
        if member is type(None):
            continue
        if typing.get_origin(member) is tuple:
            item_kind = typing.get_args(member)[0]
            items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
            if isinstance(items, (list, tuple)):
                return tuple(_coerce(item, item_kind, name) for item in items)
            continue
        if member is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in (*_TRUE_WORDS, *_FALSE_WORDS):
                return value.strip().lower() in _TRUE_WORDS
            continue
        if member in (int, float):
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (member is float and isinstance(value, float)):
                return member(value)
            if isinstance(value, str):
                try:
                    return member(value.strip())
                except ValueError:
                    continue
            continue
        if member is str:
            if isinstance(value, str):
                return value
            continue
    raise ConfigError(f"{name}: {value!r} is not {_describe(kind)}")


def from_dict(cls: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
    """Inverse of :func:`to_dict` (also after JSON): nested dicts become the nested dataclasses.

    Raises:
        ConfigError: an unknown field, a value of the wrong type, or one the dataclass rejects.
    """
    kinds = _field_types(cls)
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        where = prefix.rstrip(".") or cls.__name__
        raise ConfigError(f"unknown field(s) {', '.join(prefix + u for u in unknown)} in {where}; "
                          f"allowed: {', '.join(kinds)}")
    arguments = {}
    for name, value in values.items():
        kind = kinds[name]
        if _is_dataclass_type(kind):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{prefix}{name}: expected a group of fields ({', '.join(_field_types(kind))})")
            arguments[name] = from_dict(kind, value, f"{prefix}{name}.")
        else:
            arguments[name] = _coerce(value, kind, prefix + name)
    try:
        return cls(**arguments)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(_name_the_field(str(err), kinds, prefix) or f"{prefix.rstrip('.') or cls.__name__}: {err}") from err


def _name_the_field(message: str, kinds: Mapping[str, Any], prefix: str) -> str | None:
    """A dataclass's message with the dotted field it is about in front: ``"width must be >= 1"``
    -> ``"inner.width: must be >= 1"``, ``"unknown mode 'x'; ..."`` -> ``"inner.mode: unknown mode 'x'; ..."``;
    ``None`` when the message names none of the group's fields."""
    leading = re.match(r"(\w+) (must .*)", message, re.DOTALL)
    if leading and leading.group(1) in kinds:
        return f"{prefix}{leading.group(1)}: {leading.group(2)}"
    named = next((name for name in re.findall(r"\w+", message) if name in kinds), None)
    return None if named is None else f"{prefix}{named}: {message}"


def field_names(cls: type, prefix: str = "") -> list[str]:
    """Every settable leaf field of a tree, by dotted name, in declaration order."""
    names = []
    for name, kind in _settable(cls).items():
        if _is_dataclass_type(kind):
            names += field_names(kind, f"{prefix}{name}.")
        else:
            names.append(prefix + name)
    return names


def apply_overrides(config: T, overrides: Mapping[str, Any]) -> T:
    """A copy of ``config`` with each dotted field of ``overrides`` set (typed values or strings).

    Raises:
        ConfigError: an unknown field (the message lists the fields of its group), a value of the
            wrong type, or one the dataclass rejects (the message names the field).
    """
    tree = to_dict(config)
    for dotted, value in overrides.items():
        group, cls = tree, type(config)
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            kinds = _settable(cls)
            where = ".".join(parts[:depth]) or "the configuration"
            if part not in kinds:
                raise ConfigError(f"unknown field {dotted!r}: {where} has no {part!r}; allowed: {', '.join(kinds)}")
            last = depth == len(parts) - 1
            if _is_dataclass_type(kinds[part]):
                if last:
                    raise ConfigError(f"{dotted!r} is a group; set one of its fields: "
                                      f"{', '.join(f'{dotted}.{n}' for n in _field_types(kinds[part]))}")
                group, cls = group[part], kinds[part]
            elif not last:
                raise ConfigError(f"unknown field {dotted!r}: {'.'.join(parts[:depth + 1])} is a value, not a group")
            else:
                group[part] = _coerce(value, kinds[part], dotted)
    return from_dict(type(config), tree)


def parse_assignments(assignments: list[str] | None) -> dict[str, str]:
    """``["train.epochs=20", ...]`` (the command line's ``--set``) as ``{"train.epochs": "20"}``."""
    parsed = {}
    for item in assignments or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r}: expected name=value, e.g. train.epochs=20")
        parsed[name.strip()] = value
    return parsed
