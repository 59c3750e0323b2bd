"""Controllers and pipelines by name, so a node or the benchmark picks one with a string.

Registration is one line per entry: a ``"module:attribute"`` path, imported only when that entry is
made, so building IBVS never imports torch. A controller factory takes a config mapping (YAML keys =
its config field names) and returns an object implementing
:class:`vs_controllers.core.protocol.Controller`.

A pipeline = an observer config class + a controller. Its configuration file
(``config/<pipeline>.yaml``) is a ROS parameter file with an ``observer`` section and a
``<pipeline>_controller`` section; a plain ``{"observer": ..., "controller": ...}`` mapping works too.

Example:
    >>> obs_cfg, ctrl = make_pipeline("ibvs", "config/ibvs.yaml")
    >>> ctrl = make_controller("ibvs", {"gain_mode": "constant", "gain": 0.5})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vs_common.core.config import from_mapping, load_yaml
from vs_common.core.errors import ConfigError

from vs_controllers.core.protocol import Controller

__all__ = ["CONTROLLERS", "CONTROLLER_CONFIGS", "PIPELINES", "controller_names", "controller_settings",
           "make_controller", "make_pipeline", "pipeline_names", "register_controller", "register_pipeline"]

# name → "module:callable(mapping) -> Controller"
CONTROLLERS: dict[str, str | Callable[[Mapping[str, Any]], Controller]] = {
    "ibvs": "vs_controllers.core.ibvs:IBVSController.from_mapping",
    "cns": "vs_controllers.core.cns.controller:make_cns_controller",
}

# name → "module:ConfigClass" of the controller's config (its fields become the controller node's parameters)
CONTROLLER_CONFIGS: dict[str, str | type] = {
    "ibvs": "vs_controllers.core.ibvs:IBVSConfig",
    "cns": "vs_controllers.core.cns.controller:CNSConfig",
}

# name → (observer config class, controller name)
PIPELINES: dict[str, tuple[str, str]] = {
    "ibvs": ("vs_perception.core.observer:ObserverConfig", "ibvs"),
    "cns": ("vs_perception.core.observer:ObserverConfig", "cns"),
}


def _resolve(ref: str | Callable) -> Any:
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def register_controller(name: str, factory: str | Callable[[Mapping[str, Any]], Controller],
                        config_class: str | type | None = None) -> None:
    """Add (or replace) a controller factory: a callable or a lazy ``"module:attr"`` path (+ its config class)."""
    CONTROLLERS[name] = factory
    if config_class is not None:
        CONTROLLER_CONFIGS[name] = config_class


def register_pipeline(name: str, observer_config: str, controller: str) -> None:
    """Add (or replace) a pipeline: observer config class path and controller name."""
    PIPELINES[name] = (observer_config, controller)


def controller_names() -> list[str]:
    return sorted(CONTROLLERS)


def pipeline_names() -> list[str]:
    return sorted(PIPELINES)


def make_controller(name: str, config: Mapping[str, Any] | None = None) -> Controller:
    """Build controller ``name`` from a config mapping.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or invalid config.
    """
    if name not in CONTROLLERS:
        raise ConfigError(f"unknown controller {name!r}; known controllers are {controller_names()}")
    return _resolve(CONTROLLERS[name])(dict(config or {}))


def _sections(name: str, config: Mapping[str, Any] | str | Path | None) -> tuple[dict, dict]:
    if config is None:
        return {}, {}
    if isinstance(config, str | Path):
        raw = load_yaml(config)
    else:
        raw = dict(config)
    unwrap = lambda sec: dict((sec or {}).get("ros__parameters", sec or {}))  # noqa: E731
    obs = unwrap(raw.get("observer"))
    ctrl_key = next((k for k in (f"{name}_controller", "controller") if k in raw), None)
    ctrl = unwrap(raw.get(ctrl_key)) if ctrl_key else {}
    unknown = sorted(set(raw) - {"observer", f"{name}_controller", "controller"})
    if unknown:
        raise ConfigError(f"pipeline config for {name!r} has unknown sections {unknown}; "
                          f"expected 'observer' and '{name}_controller'")
    return obs, ctrl


def controller_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> tuple[type, dict]:
    """The controller config class of pipeline ``name`` and the values its pipeline file gives it.

    The servo controller node declares the class' fields as parameters with these values as defaults.

    Raises:
        ConfigError: unknown pipeline, or a controller registered without a config class.
    """
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; known pipelines are {pipeline_names()}")
    ctrl_name = PIPELINES[name][1]
    if ctrl_name not in CONTROLLER_CONFIGS:
        raise ConfigError(f"controller {ctrl_name!r} was registered without a config class")
    cls, values = _resolve(CONTROLLER_CONFIGS[ctrl_name]), _sections(name, config)[1]
    from_mapping(cls, values)  # unknown keys and bad values fail here, naming the valid ones
    return cls, values


def make_pipeline(name: str, config: Mapping[str, Any] | str | Path | None = None) -> tuple[Any, Controller]:
    """Observer config and controller of pipeline ``name``.

    Args:
        name: a key of :data:`PIPELINES`.
        config: a YAML path or a mapping with ``observer`` and ``<name>_controller`` (or ``controller``)
            sections; None = every default.

    Returns:
        (observer config instance, controller instance).
    """
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; known pipelines are {pipeline_names()}")
    obs_cls_ref, ctrl_name = PIPELINES[name]
    obs_map, ctrl_map = _sections(name, config)
    return from_mapping(_resolve(obs_cls_ref), obs_map), make_controller(ctrl_name, ctrl_map)
