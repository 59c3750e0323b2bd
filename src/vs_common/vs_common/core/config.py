"""Typed configuration: frozen dataclasses validated on load, YAML keys = field names.

Each component owns a ``@dataclass(frozen=True)`` config whose fields carry a description in
``field(metadata={"description": ...})``; nodes declare ROS parameters from these fields
(:mod:`vs_common.ros.params`), CLIs and tests build them from YAML through :func:`from_mapping`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vs_common.core.errors import ConfigError

T = TypeVar("T")


def describe(description: str, **kwargs: Any) -> Any:
    """A dataclass ``field`` with a human description (shown as the ROS parameter description)."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["description"] = description
    return dataclasses.field(metadata=metadata, **kwargs)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise :class:`ConfigError` listing the valid values when ``value`` is not one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {list(choices)}")


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise :class:`ConfigError` when ``value`` is outside ``[lo, hi]`` (ends optionally open)."""
    ok = True
    if lo is not None:
        ok &= value > lo if lo_open else value >= lo
    if hi is not None:
        ok &= value < hi if hi_open else value <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ConfigError(f"{name}={value!r} is out of range {left}{lo}, {hi}{right}")


def from_mapping(cls: type[T], values: Mapping[str, Any] | None, *, strict: bool = True) -> T:
    """Build the dataclass ``cls`` from a mapping, rejecting unknown keys with the list of valid ones.

    Lists are turned into tuples when the field is annotated as a tuple, so frozen configs stay hashable.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown and strict:
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}; valid keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        if name not in fields:
            continue
        hint = hints.get(name)
        if isinstance(value, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{cls.__name__}: {err}") from err


def load_yaml(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """Read a YAML file (optionally one top-level section of it) into a dict.

    A ROS parameter file (``node: {ros__parameters: {...}}``) is unwrapped to its parameters.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if section is not None:
        if section not in data:
            raise ConfigError(f"{path} has no section {section!r}; sections are {sorted(data)}")
        data = data[section]
    if isinstance(data, dict) and "ros__parameters" in data:
        data = data["ros__parameters"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a mapping of settings (got a {type(data).__name__})")
    return dict(data)


def field_descriptions(cls: type) -> dict[str, str]:
    """Field name → description, for parameter declarations and CLI help."""
    return {f.name: f.metadata.get("description", "") for f in dataclasses.fields(cls)}
