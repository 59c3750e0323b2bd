"""The pipelines, each described once: what it needs, how its parts are built, which nodes and streams it runs.

A :class:`PipelineSpec` names a pipeline's inputs (:class:`Input`), its observer config class, its
controller factory and config class (lazy ``"module:attr"`` references, imported only when that pipeline
is built, so IBVS never imports torch), its parameter file and the defaults of its servo loop. The nodes
it brings up and the camera streams it needs follow from its inputs; the launch logic, the topic catalogue
(what is recorded), the recorder, the demo, the benchmark and the controller node all read the spec and
never compare pipeline names.

Adding a pipeline: one ``PipelineSpec`` in :data:`PIPELINES` (here), its core modules, its
``config/<name>.yaml`` and a thin ``launch/<name>.launch.py``. Only pipelines that run end to end are
registered.

Configuration file (``config/<name>.yaml``): a ROS 2 parameter file with an ``observer`` section (the
observer node's parameters), a ``<name>_controller`` section (the controller's config fields) and a
``loop`` section (:class:`~vs_controllers.core.loop.LoopConfig` fields); a plain
``{"observer": ..., "controller": ..., "loop": ...}`` mapping works too. Each section holds only what
differs from the defaults (the config dataclasses' for the observer and the controller, the spec's
:attr:`PipelineSpec.loop` for the loop). A variant is an overlay: ``extends: <file>`` (relative to the
variant's folder, else in ``config/``) takes that file's sections, and the variant's keys win
(:func:`load_pipeline_file`). Variants are read by the benchmark (``--config``) and the controller node
(``pipeline_config``); ROS reads only the base files (``--params-file``).

Example:
    >>> obs_cfg, ctrl, loop_cfg = make_pipeline("ibvs", "config/ibvs.yaml")
    >>> ctrl = make_controller("ibvs", {"interaction": "desired"})
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from vs_common.core.config import from_mapping, load_yaml
from vs_common.core.errors import ConfigError
from vs_common.core.paths import resolve_config

from vs_controllers.core.loop import LoopConfig
from vs_controllers.core.protocol import Controller

__all__ = ["INPUT_NODES", "INPUT_STREAMS", "PIPELINES", "Input", "PipelineSpec", "controller_settings",
           "get_pipeline", "load_pipeline_file", "loop_settings", "make_controller", "make_pipeline",
           "pipeline_names", "pipeline_settings", "register_pipeline", "resolve"]


class Input(StrEnum):
    """What a pipeline observes; each input brings up its nodes and camera streams."""

    #: keypoint correspondences current ↔ goal image (goal + observer nodes; colour, aligned depth).
    CORRESPONDENCES = "correspondences"
    #: the stereo infrared pair (grey, emitter off on a real D435).
    STEREO_IR = "stereo_ir"
    #: per-pixel relative depth of the colour image (relative_depth node).
    RELATIVE_DEPTH = "relative_depth"
    #: the goal image rendered from a mesh at the desired pose (goal node in render mode).
    RENDERED_GOAL = "rendered_goal"


#: Nodes (by role, in start order) each input brings up; vs_bringup's node catalogue maps a role to a node.
INPUT_NODES: dict[Input, tuple[str, ...]] = {
    Input.CORRESPONDENCES: ("goal", "observer"),
    Input.STEREO_IR: (),
    Input.RELATIVE_DEPTH: ("relative_depth",),
    Input.RENDERED_GOAL: ("goal",),
}

#: Camera streams (realsense-ros stream names) each input needs.
INPUT_STREAMS: dict[Input, tuple[str, ...]] = {
    Input.CORRESPONDENCES: ("color", "depth"),
    Input.STEREO_IR: ("infra1", "infra2"),
    Input.RELATIVE_DEPTH: ("color",),
    Input.RENDERED_GOAL: (),
}


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline (see the module docstring).

    Attributes:
        name: the pipeline's name (launch argument, node parameter, benchmark option).
        summary: one line for help texts.
        inputs: what it observes, in order.
        controller: ``"module:callable(mapping) -> Controller"``.
        controller_config: ``"module:ConfigClass"`` of the controller (its fields = controller.* parameters).
        observer_config: ``"module:ConfigClass"`` of the observer, or None without a keypoint observer.
        config_file: its parameter file in ``config/``.
        loop: the defaults of its servo loop (the file's ``loop`` section overrides them).
    """

    name: str
    summary: str
    inputs: tuple[Input, ...]
    controller: str
    controller_config: str
    observer_config: str | None = None
    config_file: str = ""
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"pipeline name {self.name!r} must be an identifier")
        if not self.inputs:
            raise ConfigError(f"pipeline {self.name!r} has no inputs")
        if not self.config_file:
            object.__setattr__(self, "config_file", f"{self.name}.yaml")

    def needs(self, what: Input) -> bool:
        """True when the pipeline observes ``what``."""
        return what in self.inputs

    @property
    def controller_section(self) -> str:
        """The section of the parameter file holding the controller's settings."""
        return f"{self.name}_controller"

    @property
    def nodes(self) -> tuple[str, ...]:
        """Perception nodes it brings up (roles, start order), between the camera and the servo controller."""
        return _unique(n for i in self.inputs for n in INPUT_NODES[i])

    @property
    def camera_streams(self) -> tuple[str, ...]:
        """Camera streams it needs (``color``, ``depth``, ``infra1``, ``infra2``)."""
        return _unique(s for i in self.inputs for s in INPUT_STREAMS[i])


#: Every registered pipeline, by name: the one place a pipeline is added.
PIPELINES: dict[str, PipelineSpec] = {}


def register_pipeline(spec: PipelineSpec) -> PipelineSpec:
    """Add (or replace) a pipeline; returns it."""
    PIPELINES[spec.name] = spec
    return spec


register_pipeline(PipelineSpec(
    name="ibvs", summary="keypoints → matching → RANSAC → v = −λ L̂⁺ e (Chaumette & Hutchinson 2006)",
    inputs=(Input.CORRESPONDENCES,),
    controller="vs_controllers.core.ibvs:IBVSController.from_mapping",
    controller_config="vs_controllers.core.ibvs:IBVSConfig",
    observer_config="vs_perception.core.observer:ObserverConfig",
    # ViSP's adaptive gain on ‖e‖∞, IBVS's speed limits.
    loop=LoopConfig(gain_mode="adaptive", gain=0.5, gain_zero=2.5, gain_inf=0.6, gain_slope=30.0,
                    max_linear_mps=0.3, max_angular_rps=1.0)))

register_pipeline(PipelineSpec(
    name="cns", summary="keypoints → correspondence graph → GNN → twist (Chen et al. 2024)",
    inputs=(Input.CORRESPONDENCES,),
    controller="vs_controllers.core.cns.controller:make_cns_controller",
    controller_config="vs_controllers.core.cns.controller:CNSConfig",
    observer_config="vs_perception.core.observer:ObserverConfig",
    # The authors' loop far from the goal (gain 1), up to 2x in the last pixels; IBVS's speed limits.
    loop=LoopConfig(gain_mode="adaptive", gain=1.0, gain_zero=2.0, gain_inf=1.0, gain_slope=100.0,
                    max_linear_mps=0.3, max_angular_rps=1.0)))


def pipeline_names() -> list[str]:
    """The registered pipelines, in registration order (the IBVS baseline first)."""
    return list(PIPELINES)


def get_pipeline(name: str) -> PipelineSpec:
    """The spec of pipeline ``name``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; known pipelines are {pipeline_names()}")
    return PIPELINES[name]


def resolve(ref: str | Any) -> Any:
    """Import a ``"module:attr.sub"`` reference (anything else is returned as is)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def make_controller(name: str, config: Mapping[str, Any] | None = None) -> Controller:
    """Build the controller of pipeline ``name`` from a config mapping (its config class' fields).

    Raises:
        ConfigError: unknown name or invalid config.
    """
    return resolve(get_pipeline(name).controller)(dict(config or {}))


def _unwrap(section: Any) -> dict[str, Any]:
    section = section or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"a pipeline file section must be a mapping, got {section!r}")
    return dict(section.get("ros__parameters", section) or {})


def load_pipeline_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """A pipeline file as ``{section: {key: value}}`` (``ros__parameters`` unwrapped), overlays resolved.

    ``extends: <file>`` names the base (relative to this file's folder, else a name in ``config/``); the
    base's sections are taken and this file's keys replace theirs, section by section. Bases may extend
    further bases.

    Raises:
        ConfigError: a missing file, a cycle, or a file that is not a mapping of sections.
    """
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    raw = load_yaml(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path} is not a pipeline file (expected a mapping of sections)")
    raw = dict(raw)
    base_name = raw.pop("extends", None)
    out: dict[str, dict[str, Any]] = {}
    if base_name:
        local = path.parent / str(base_name)
        base = local if local.is_file() else resolve_config(str(base_name))
        out = load_pipeline_file(base, (*_seen, path.resolve()))
    for name, section in raw.items():
        out[name] = {**out.get(name, {}), **_unwrap(section)}
    return out


def _sections(spec: PipelineSpec, config: Mapping[str, Any] | str | Path | None) -> tuple[dict, dict, dict]:
    """(observer, controller, loop) values of a pipeline file or mapping."""
    if config is None:
        return {}, {}, {}
    if isinstance(config, str | Path):
        raw = load_pipeline_file(config)
    else:
        raw = dict(config)
        if raw.get("extends"):  # an overlay as a mapping: its base is a file in config/ (or a path)
            base = load_pipeline_file(resolve_config(str(raw.pop("extends"))))
            raw = {k: {**base.get(k, {}), **_unwrap(raw.get(k))} for k in {*base, *raw}}
        raw.pop("extends", None)
    unwrap = _unwrap
    ctrl_key = next((k for k in (spec.controller_section, "controller") if k in raw), None)
    known = {"observer", spec.controller_section, "controller", "loop"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"pipeline config for {spec.name!r} has unknown sections {unknown}; "
                          f"expected 'observer', '{spec.controller_section}' and 'loop'")
    return unwrap(raw.get("observer")), unwrap(raw.get(ctrl_key)) if ctrl_key else {}, unwrap(raw.get("loop"))


def controller_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> tuple[type, dict]:
    """The controller config class of pipeline ``name`` and the values its pipeline file gives it.

    The servo controller node declares the class' fields as parameters with these values as defaults.

    Raises:
        ConfigError: unknown pipeline, unknown keys or bad values (naming the valid ones).
    """
    spec = get_pipeline(name)
    cls, values = resolve(spec.controller_config), _sections(spec, config)[1]
    from_mapping(cls, values)  # unknown keys and bad values fail here, naming the valid ones
    return cls, values


def loop_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> LoopConfig:
    """The servo-loop settings of pipeline ``name``: its spec's defaults, then the file's ``loop`` section."""
    spec = get_pipeline(name)
    return from_mapping(LoopConfig, {**dataclasses.asdict(spec.loop), **_sections(spec, config)[2]})


def pipeline_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> dict[str, Any]:
    """Every setting pipeline ``name`` runs with (defaults filled in), without building anything heavy.

    Returns:
        ``{"pipeline", "observer", "controller", "loop"}``: plain dicts of the config dataclasses (observer
        None without one), so two files that give the same behaviour give equal settings (the benchmark
        journal keys episodes by them).
    """
    spec = get_pipeline(name)
    obs_map, ctrl_map, _ = _sections(spec, config)
    obs = from_mapping(resolve(spec.observer_config), obs_map) if spec.observer_config else None
    ctrl = from_mapping(resolve(spec.controller_config), ctrl_map)
    return {"pipeline": name, "observer": dataclasses.asdict(obs) if obs is not None else None,
            "controller": dataclasses.asdict(ctrl), "loop": dataclasses.asdict(loop_settings(name, config))}


def make_pipeline(name: str, config: Mapping[str, Any] | str | Path | None = None) -> tuple[Any, Controller,
                                                                                             LoopConfig]:
    """Observer config, controller and loop settings of pipeline ``name``.

    Args:
        name: a key of :data:`PIPELINES`.
        config: a YAML path or a mapping with ``observer``, ``<name>_controller`` (or ``controller``) and
            ``loop`` sections; None = every default.

    Returns:
        (observer config instance or None, controller instance, :class:`LoopConfig`).
    """
    spec = get_pipeline(name)
    obs_map, ctrl_map, _ = _sections(spec, config)
    obs_cfg = from_mapping(resolve(spec.observer_config), obs_map) if spec.observer_config else None
    return obs_cfg, make_controller(name, ctrl_map), loop_settings(name, config)
