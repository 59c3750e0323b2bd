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

Configuration file (``config/<name>.yaml``): a ROS 2 parameter file with a section per node role the
spec brings up (:attr:`PipelineSpec.nodes`: ``observer``, ``goal``, ``relative_depth``, ...; ROS gives each
node its section, as the launch logic passes the file to every perception node), a ``<name>_controller``
section (the controller's config, the servo controller node's ``controller.*`` parameters) and a ``loop``
section (:class:`~vs_controllers.core.loop.LoopConfig`, ``loop.*``); a plain ``{"observer": ...,
"controller": ..., "loop": ...}`` mapping works too. Settings of nested configs are written nested
(``features: {detector: sift}``) or dotted (``features.detector: sift``), as rclpy reads them. Each section
holds only what differs from the defaults (the config dataclasses', the spec's :attr:`PipelineSpec.loop`
for the loop) and is checked against its config class (:func:`pipeline_sections`). A variant is an overlay:
``extends: <file>`` (relative to the variant's folder, else in ``config/``) takes that file's sections, and
the variant's settings win one by one (:func:`load_pipeline_file`). Variants are read by the benchmark
(``--config``) and the controller node (``pipeline_config``); ROS reads only the base files
(``--params-file``).

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

from vs_common.core.config import flatten_config, flatten_mapping, from_mapping, load_yaml
from vs_common.core.errors import ConfigError
from vs_common.core.paths import resolve_config

from vs_controllers.core.loop import LoopConfig
from vs_controllers.core.protocol import Controller

__all__ = ["INPUT_NODES", "INPUT_STREAMS", "NODE_CONFIGS", "PIPELINES", "Input", "PipelineSpec",
           "controller_settings", "get_pipeline", "load_pipeline_file", "loop_settings", "make_controller",
           "make_pipeline", "node_config", "pipeline_names", "pipeline_sections", "pipeline_settings",
           "register_pipeline", "resolve"]


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
    controller="vs_controllers.core.cns.controller:CNSController.from_mapping",
    controller_config="vs_controllers.core.cns.controller:CNSConfig",
    observer_config="vs_perception.core.observer:ObserverConfig",
    # The authors' loop far from the goal (gain 1), up to 2x in the last pixels; IBVS's speed limits.
    loop=LoopConfig(gain_mode="adaptive", gain=1.0, gain_zero=2.0, gain_inf=1.0, gain_slope=100.0,
                    max_linear_mps=0.3, max_angular_rps=1.0)))


register_pipeline(PipelineSpec(
    name="depth_pc", summary="keypoints + relative depth → Depth-PC graph → GNN → twist (Depth-PC)",
    inputs=(Input.CORRESPONDENCES, Input.RELATIVE_DEPTH),
    controller="vs_controllers.core.depth_pc.controller:DepthPCController.from_mapping",
    controller_config="vs_controllers.core.depth_pc.controller:DepthPCConfig",
    observer_config="vs_perception.core.observer:ObserverConfig",
    # CNS's loop: the network is trained like CNS's (m/s, rad/s at unit gain).
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


#: Config class of a perception node role (``"module:Class"``, in a core module) that a pipeline file's section
#: for that role is checked against; the observer's is the spec's ``observer_config``. A role without one here
#: still gets its section (ROS reads it from the file), checked by the parameter-file test against what the
#: node declares.
NODE_CONFIGS: dict[str, str] = {
    "goal": "vs_perception.core.goal_store:GoalNodeConfig",
    "relative_depth": "vs_perception.core.relative_depth:RelativeDepthNodeConfig",
}


def _unwrap(section: Any) -> dict[str, Any]:
    """A section's settings with dotted names (``ros__parameters`` unwrapped, nested mappings flattened)."""
    section = section or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"a pipeline file section must be a mapping, got {section!r}")
    return flatten_mapping(section.get("ros__parameters", section) or {})


def load_pipeline_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """A pipeline file as ``{section: {dotted key: value}}`` (``ros__parameters`` unwrapped), overlays resolved.

    ``extends: <file>`` names the base (relative to this file's folder, else a name in ``config/``); the
    base's sections are taken and this file's settings replace theirs one by one (``features.detector`` in
    a variant keeps the base's ``features.max_keypoints``). Bases may extend further bases.

    Raises:
        ConfigError: a missing file, a cycle, or a file that is not a mapping of sections.
    """
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    raw = load_yaml(path)
    base_name = raw.pop("extends", None)
    out: dict[str, dict[str, Any]] = {}
    if base_name:
        local = path.parent / str(base_name)
        base = local if local.is_file() else resolve_config(str(base_name))
        out = load_pipeline_file(base, (*_seen, path.resolve()))
    for name, section in raw.items():
        out[name] = {**out.get(name, {}), **_unwrap(section)}
    return out


def node_config(spec: PipelineSpec, role: str) -> type | None:
    """The config class a pipeline file's ``role`` section is checked against (None: not checked here)."""
    ref = spec.observer_config if role == "observer" else NODE_CONFIGS.get(role)
    return resolve(ref) if ref else None


def pipeline_sections(name: str, config: Mapping[str, Any] | str | Path | None) -> dict[str, dict[str, Any]]:
    """The settings a pipeline file (or mapping) gives, by section, overlays resolved, keys dotted.

    Sections: ``controller`` (the file's ``<name>_controller`` or ``controller``), ``loop`` and one per node
    role the spec brings up (:attr:`PipelineSpec.nodes`: ``observer``, ``goal``, ``relative_depth``, ...). Each
    is checked against its config class (the controller's, :class:`LoopConfig`, :func:`node_config`): unknown
    keys and bad values fail here, naming the valid ones. Parse a file once and pass the result on: every
    function here also takes these sections as its ``config``.

    Raises:
        ConfigError: unknown sections, keys or values.
    """
    spec = get_pipeline(name)
    if config is None:
        raw: dict[str, Any] = {}
    elif isinstance(config, str | Path):
        raw = dict(load_pipeline_file(config))
    else:
        raw = dict(config)
        if raw.get("extends"):  # an overlay as a mapping: its base is a file in config/ (or a path)
            base = load_pipeline_file(resolve_config(str(raw.pop("extends"))))
            raw = {k: {**base.get(k, {}), **_unwrap(raw.get(k))} for k in {*base, *raw}}
        raw.pop("extends", None)
    known = ("controller", spec.controller_section, "loop", *spec.nodes)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"pipeline config for {spec.name!r} has unknown sections {unknown}; expected "
                          f"'{spec.controller_section}', 'loop' and the sections of its nodes {list(spec.nodes)}")
    out = {k: _unwrap(raw.get(k)) for k in ("loop", *spec.nodes)}
    out["controller"] = {**_unwrap(raw.get("controller")), **_unwrap(raw.get(spec.controller_section))}
    from_mapping(resolve(spec.controller_config), out["controller"])
    from_mapping(LoopConfig, out["loop"])
    for role in spec.nodes:
        cls = node_config(spec, role)
        if cls is not None:
            from_mapping(cls, out[role])
    return out


def controller_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> tuple[type, dict]:
    """The controller config class of pipeline ``name`` and the values its pipeline file gives it (dotted keys).

    The servo controller node declares the class' settings as parameters with these values as defaults.

    Raises:
        ConfigError: unknown pipeline, unknown keys or bad values (naming the valid ones).
    """
    return resolve(get_pipeline(name).controller_config), pipeline_sections(name, config)["controller"]


def loop_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> LoopConfig:
    """The servo-loop settings of pipeline ``name``: its spec's defaults, then the file's ``loop`` section."""
    spec = get_pipeline(name)
    return from_mapping(LoopConfig, {**flatten_config(spec.loop), **pipeline_sections(name, config)["loop"]})


def pipeline_settings(name: str, config: Mapping[str, Any] | str | Path | None = None) -> dict[str, Any]:
    """Every setting pipeline ``name`` runs with (defaults filled in), without building anything heavy.

    Returns:
        ``{"pipeline", "observer", "controller", "loop"}``: plain (nested) dicts of the config dataclasses
        (observer None without one), so two files that give the same behaviour give equal settings (the
        benchmark journal keys episodes by them); plus a dict per other node role whose section the file
        sets (checked against its config class where one exists: all settings, else the file's).
    """
    spec = get_pipeline(name)
    sections = pipeline_sections(name, config)
    obs_cls = node_config(spec, "observer") if "observer" in spec.nodes else None
    obs = from_mapping(obs_cls, sections["observer"]) if obs_cls is not None else None
    ctrl = from_mapping(resolve(spec.controller_config), sections["controller"])
    out: dict[str, Any] = {"pipeline": name, "observer": dataclasses.asdict(obs) if obs is not None else None,
                           "controller": dataclasses.asdict(ctrl),
                           "loop": dataclasses.asdict(loop_settings(name, sections))}
    for role in spec.nodes:
        if role != "observer" and sections[role]:
            cls = node_config(spec, role)
            out[role] = dataclasses.asdict(from_mapping(cls, sections[role])) if cls else sections[role]
    return out


def make_pipeline(name: str, config: Mapping[str, Any] | str | Path | None = None) -> tuple[Any, Controller,
                                                                                             LoopConfig]:
    """Observer config, controller and loop settings of pipeline ``name``.

    Args:
        name: a key of :data:`PIPELINES`.
        config: a YAML path, a mapping of sections (``observer``, ``<name>_controller`` or ``controller``,
            ``loop``, other node roles) or :func:`pipeline_sections`' result; None = every default.

    Returns:
        (observer config instance or None, controller instance, :class:`LoopConfig`).
    """
    spec = get_pipeline(name)
    sections = pipeline_sections(name, config)
    obs_cfg = from_mapping(resolve(spec.observer_config), sections["observer"]) if spec.observer_config else None
    return obs_cfg, make_controller(name, sections["controller"]), loop_settings(name, sections)
