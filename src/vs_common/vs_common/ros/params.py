"""Declare ROS parameters from a frozen config dataclass and build the config from their values.

Each dataclass field becomes a parameter named ``prefix + field`` (or the name given in ``names``) with
the field's description, its default as the default value, and its type; a nested config's fields are
dotted (``prefix + "features.detector"``). Tuples become arrays. A value
the config rejects raises :class:`ConfigError` (the node fails to start with a message that lists valid
values; :func:`vs_common.ros.main.spin_node` turns it into one log line and a non-zero exit).

At run time (``ros2 param set``) a parameter is either

* **read-only** (the default: device settings, models, anything the node built at start-up) — ROS refuses
  the change with "read-only"; or
* **dynamic** (listed in ``dynamic``): an on-set callback rebuilds the whole config with the new value, so
  the dataclasses' own checks (nested ones included) accept or refuse it (the refusal names the valid
  values), then hands the new config to the node's ``on_change``; if that raises, the value is refused too
  and the node keeps its settings.
"""

from __future__ import annotations

import array
import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from vs_common.core.config import config_fields, flatten_config, from_mapping
from vs_common.core.errors import ConfigError

T = TypeVar("T")


def _defaults(cls: type) -> dict[str, Any]:
    """Dotted setting → default of the config ``cls`` (nested configs' defaults as ``cls`` builds them)."""
    missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
               if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"config fields {missing} of {cls.__name__} have no default; give them one to use them "
                          "as ROS parameters")
    return flatten_config(cls())


def _to_param(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _from_param(value: Any, default: Any, hint: Any) -> Any:
    """A parameter value → the field value: "" → None for None defaults, arrays → tuples, int → float."""
    if default is None and value == "":
        return None
    if isinstance(value, array.array):  # arrays set over the parameter services arrive as array.array
        value = value.tolist()
    if isinstance(value, list) and (hint is tuple or typing.get_origin(hint) is tuple):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def declare_read_only(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare one described, read-only parameter (fixed once the node has started) and return its value."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True)).value


def declare_config(node: Node, cls: type[T], prefix: str = "", overrides: Mapping[str, Any] | None = None, *,
                   dynamic: bool | Iterable[str] = (), on_change: Callable[[T], None] | None = None,
                   names: Mapping[str, str] | None = None) -> T:
    """Declare every setting of ``cls`` as a described parameter on ``node`` and return the built config.

    A nested config's settings are dotted parameters (``features.detector`` for ``ObserverConfig.features``),
    as rclpy names the keys of a nested parameter file.

    Args:
        node: the node to declare on.
        cls: a (frozen) config dataclass; its ``__post_init__`` validates.
        prefix: put before each setting name (``"session."``); ignored for settings in ``names``.
        overrides: setting → default replacing the dataclass default (e.g. a pipeline file's section), nested
            or with dotted names.
        dynamic: settings that may change at run time: dotted names, or a nested config's name for all of its
            settings (True = every setting); all others are read-only.
        on_change: called with the new config after a dynamic parameter was set (required with ``dynamic``).
        names: setting → parameter name, where the ROS name differs (realsense-ros' ``align_depth.enable``).

    Settings whose default is ``None`` are declared as strings ("" meaning None) since ROS parameters
    cannot be null. Fields whose name starts with an underscore are skipped.

    Raises:
        ConfigError: a value the config rejects (the message names the setting and the valid values).
    """
    leaves = [(n, f, h) for n, f, h in config_fields(cls) if not any(p.startswith("_") for p in n.split("."))]
    settings = [n for n, _, _ in leaves]
    hints = {n: h for n, _, h in leaves}
    asked = set(settings) if dynamic is True else set(dynamic or ())
    live = {n for n in settings if n in asked or any(n.startswith(g + ".") for g in asked)}
    unknown = sorted(g for g in asked if not any(n == g or n.startswith(g + ".") for n in settings))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no settings {unknown} to make dynamic")
    if live and on_change is None:
        raise ConfigError("dynamic parameters need an on_change callback to take effect")
    param_of = {n: (names or {}).get(n, prefix + n) for n in settings}
    given = from_mapping(cls, overrides) if overrides else None  # unknown keys and bad values fail here
    defaults = _defaults(cls) if given is None else flatten_config(given)
    values: dict[str, Any] = {}
    for name, f, _ in leaves:
        default = defaults[name]
        text = f.metadata.get("description", "")
        desc = ParameterDescriptor(description=text if name in live else f"{text} (read-only)".strip(),
                                   read_only=name not in live)
        param_default = "" if default is None else _to_param(default)
        if isinstance(param_default, list) and not param_default:
            raise ConfigError(f"parameter {param_of[name]!r} has an empty list default; ROS cannot type it")
        value = node.declare_parameter(param_of[name], param_default, desc).value
        values[name] = _from_param(value, default, hints[name])
    config = from_mapping(cls, values)
    if live:
        _watch(node, cls, {param_of[n]: n for n in live}, param_of, defaults, hints, on_change)
    return config


def _watch(node: Node, cls: type[T], live: dict[str, str], param_of: dict[str, str], defaults: dict[str, Any],
           hints: dict[str, Any], on_change: Callable[[T], None]) -> None:
    """Validate and apply (both on-set) run-time changes of the parameters in ``live`` (param → field)."""

    def build(changed: list[Parameter]) -> T:
        values = {f: _from_param(node.get_parameter(p).value, defaults[f], hints.get(f)) for f, p in param_of.items()}
        for param in changed:
            field = live[param.name]
            values[field] = _from_param(param.value, defaults[field], hints.get(field))
        return from_mapping(cls, values)

    def validate_and_apply(params: list[Parameter]) -> SetParametersResult:
        # On-set, so a value the node cannot take (the config refuses it, or building the new core object
        # fails, e.g. a detector this OpenCV build lacks) is refused and the node keeps running as it was;
        # a post-set callback could only fail after the value was stored, and an exception there ends the node.
        mine = [p for p in params if p.name in live]  # others belong to other configs or to rclpy
        if not mine:
            return SetParametersResult(successful=True)
        try:
            config = build(mine)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        except (TypeError, ValueError) as err:  # a value of the right ROS type the dataclass still cannot take
            return SetParametersResult(successful=False, reason=f"{cls.__name__}: {err}")
        try:
            on_change(config)
        except Exception as err:  # noqa: BLE001 - a failure to apply must refuse the value, never end the node
            node.get_logger().error(f"could not apply {[p.name for p in mine]}: {err!r}")
            return SetParametersResult(successful=False, reason=f"could not apply: {err}")
        shown = {p.name: p.value.tolist() if isinstance(p.value, array.array) else p.value for p in mine}
        node.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in shown.items()))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(validate_and_apply)
