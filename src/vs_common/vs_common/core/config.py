"""Typed configuration: frozen dataclasses validated on load, YAML keys = field names.

Each component owns a ``@dataclass(frozen=True)`` config whose fields carry a description in
``field(metadata={"description": ...})``; nodes declare ROS parameters from these fields
(:mod:`vs_common.ros.params`), CLIs and tests build them from YAML through :func:`from_mapping`.

A config may nest others (a field typed as a config dataclass, e.g. ``ObserverConfig.features``): its
settings are then named with dots (``features.detector``), the same name in YAML (nested or dotted), in
ROS parameters and in error messages. :func:`flatten_config` gives ``{dotted name: value}``,
:func:`config_fields` the leaf fields, :func:`from_mapping` reads either form back.
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


def nested_config(hint: Any) -> type | None:
    """The config dataclass a field annotated ``hint`` nests (its settings are ``<field>.<name>``), else None."""
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def config_fields(cls: type) -> list[tuple[str, dataclasses.Field, Any]]:
    """Every leaf setting of ``cls`` as ``(dotted name, field, type hint)``, nested configs expanded in place.

    Fields that ``__init__`` does not take are left out (they are not settings).
    """
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, dataclasses.Field, Any]] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sub = nested_config(hints.get(f.name))
        if sub is None:
            out.append((f.name, f, hints.get(f.name)))
        else:
            out += [(f"{f.name}.{name}", g, hint) for name, g, hint in config_fields(sub)]
    return out


def flatten_config(config: Any) -> dict[str, Any]:
    """A config instance as ``{dotted name: value}`` (the ROS parameter names); :func:`from_mapping` reads it back."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update({f"{f.name}.{k}": v for k, v in flatten_config(value).items()})
        else:
            out[f.name] = value
    return out


def flatten_mapping(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{dotted name: value}`` (as rclpy reads a nested parameter file)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten_mapping(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _valid_keys(cls: type, path: str) -> list[str]:
    return sorted(path + name for name, _, _ in config_fields(cls))


def _located(err: ConfigError, cls: type, path: str) -> ConfigError:
    """``err`` of a nested config with its path: ``ratio=2 is out of range`` → ``matching.ratio=2 ...``."""
    text = str(err)
    head = text.split("=", 1)[0].split(" ", 1)[0]
    names = {f.name for f in dataclasses.fields(cls)}
    return ConfigError(path + text if head in names else f"{path[:-1]}: {text}")


def from_mapping(cls: type[T], values: Mapping[str, Any] | None, *, strict: bool = True, _path: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping, rejecting unknown keys with the list of valid ones.

    A field whose type is itself a config dataclass (a nested config) takes a mapping, an instance, or
    dotted keys: ``{"graph": {"ap_damping": 0.8}}`` and ``{"graph.ap_damping": 0.8}`` are the same (both
    may be mixed; a later key wins). Errors name the full dotted path of the setting. Lists are turned into
    tuples when the field is annotated as a tuple, so frozen configs stay hashable.
    """
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    subs = {name: sub for name in fields if (sub := nested_config(hints.get(name))) is not None}
    flat: dict[str, Any] = {}  # nested mappings and instances as dotted keys, in order (later keys win)
    for key, value in dict(values or {}).items():
        key = str(key)
        sub = subs.get(key)
        if isinstance(value, Mapping):
            flat.update(flatten_mapping(value, f"{key}."))
        elif sub is not None and isinstance(value, sub):
            flat.update({f"{key}.{k}": v for k, v in flatten_config(value).items()})
        else:
            flat[key] = value
    plain: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    for key, value in flat.items():
        head, dot, rest = key.partition(".")
        if head in subs and dot:
            nested.setdefault(head, {})[rest] = value
        elif head in subs:
            valid = _valid_keys(subs[head], f"{_path}{head}.")
            raise ConfigError(f"{_path}{head} is a group of settings ({subs[head].__name__}): give a mapping or "
                              f"dotted keys, not {value!r}; valid keys are {valid}")
        elif head in fields and not dot:
            plain[head] = value
        else:
            unknown.append(_path + key)
    if unknown and strict:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys are {_valid_keys(cls, _path)}")
    kwargs: dict[str, Any] = {}
    for name, value in plain.items():
        hint = hints.get(name)
        if isinstance(value, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            value = tuple(value)
        kwargs[name] = value
    for name, sub_values in nested.items():
        base = _field_default(fields[name])  # the outer config may choose its own defaults for a nested one
        if isinstance(base, subs[name]):
            sub_values = {**flatten_config(base), **sub_values}
        kwargs[name] = from_mapping(subs[name], sub_values, strict=strict, _path=f"{_path}{name}.")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{_path[:-1] or cls.__name__}: {err}") from err
    except ConfigError as err:
        if not _path:
            raise
        raise _located(err, cls, _path) from err


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
    """Dotted setting name → description, for parameter declarations and CLI help."""
    return {name: f.metadata.get("description", "") for name, f, _ in config_fields(cls)}
