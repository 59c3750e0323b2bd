"""Declare ROS parameters from a frozen config dataclass and build the config from their values.

Each dataclass field becomes a parameter named ``prefix + field`` with the field's description,
its default as the default value, and its type. Tuples become arrays. A value the config rejects
raises :class:`ConfigError` (the node fails to configure with a message that lists valid values).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from vs_common.core.config import from_mapping
from vs_common.core.errors import ConfigError

T = TypeVar("T")


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    raise ConfigError(f"config field {field.name!r} has no default; give it one to use it as a ROS parameter")


def _to_param(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def declare_config(node: Node, cls: type[T], prefix: str = "", overrides: dict[str, Any] | None = None) -> T:
    """Declare every field of ``cls`` as a described parameter on ``node`` and return the built config.

    Fields whose default is ``None`` are declared as strings ("" meaning None) since ROS parameters
    cannot be null. Fields whose name starts with an underscore are skipped.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name.startswith("_") or not f.init:
            continue
        default = (overrides or {}).get(f.name, _default(f))
        desc = ParameterDescriptor(description=f.metadata.get("description", ""))
        name = prefix + f.name
        none_default = default is None
        param_default = "" if none_default else _to_param(default)
        if isinstance(param_default, list) and not param_default:
            raise ConfigError(f"parameter {name!r} has an empty list default; ROS cannot type it")
        value = node.declare_parameter(name, param_default, desc).value
        if none_default and value == "":
            value = None
        hint = hints.get(f.name)
        if isinstance(value, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[f.name] = value
    return from_mapping(cls, values)
