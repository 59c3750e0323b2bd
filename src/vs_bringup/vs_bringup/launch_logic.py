"""Everything the launch files decide, as plain functions over plain data (tested without ``launch``).

``launch/servo.launch.py`` declares :data:`LAUNCH_ARGUMENTS`, parses every launch configuration with
:func:`parse_launch_args` (an undeclared one is an error: ``ros2 launch`` itself ignores them), and turns
the :class:`LaunchPlan` of :func:`launch_plan` into ``launch_ros`` actions: one ``Node`` per
:class:`NodeSpec` (``LifecycleNode`` for the bridge), ``ros2 bag record`` (:func:`record_command`) where
rosbag2 exists or the project's own MCAP recorder node otherwise, and rviz2 only where it is installed.

Parameters come only from YAML files in ``config/``: every node gets ``config/servo.yaml`` (the graph's
defaults), then its own file where one exists (``camera.yaml``, ``robot_bridge.yaml``,
``relative_depth.yaml``; ``sim_cell.yaml`` for the bridge and the controller in the simulated cell), then the
pipeline's file ``config/<pipeline>.yaml`` — later files win, and a file only touches the nodes it names.
The few values derived from launch arguments (detector, backend, scene, ...) are listed in
:attr:`NodeSpec.overrides`, applied last.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vs_common.core.config import check_choice, describe, flatten_mapping
from vs_common.core.errors import ConfigError
from vs_controllers.core.pipelines import PipelineSpec, get_pipeline, pipeline_names

from vs_bringup import topics as T

#: The registered pipelines (:data:`vs_controllers.core.pipelines.PIPELINES`: the ones that run end to end).
PIPELINES = tuple(pipeline_names())
#: ``auto`` keeps the detector of the pipeline's parameter file (CNS: sift, IBVS and the others: akaze).
OBSERVERS = ("auto", "sift", "orb", "akaze")
ENVS = ("render", "image")
BOOLS = ("true", "false")
PACKAGE = "vs_bringup"


@dataclass(frozen=True)
class LaunchArgument:
    """One ``DeclareLaunchArgument``: name, default (a string, as launch wants), description, choices."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] | None = None


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("pipeline", "ibvs", "Visual-servo pipeline to run.", PIPELINES),
    LaunchArgument("use_sim", "true",
                   "true: the simulated cell (PyBullet camera + kinematic arm); false: RealSense + UR via ur_rtde.",
                   BOOLS),
    LaunchArgument("observer", "auto", "Keypoint detector of the observer and goal nodes (keypoint pipelines); "
                   "auto = the one in the pipeline's parameter file.", OBSERVERS),
    LaunchArgument("rviz", "false", "Start rviz2 with config/rviz/servo.rviz.", BOOLS),
    LaunchArgument("record", "false", "Record the run with `ros2 bag record` (MCAP) into record_dir.", BOOLS),
    LaunchArgument("scene", "", "Scene id of the simulated cell (use_sim:=true only); empty = the first scene."),
    LaunchArgument("env", "render", "Simulated environment: textured objects on a table, or a textured plane.",
                   ENVS),
    LaunchArgument("robot_ip", "", "UR controller address (use_sim:=false); empty keeps config/robot_bridge.yaml."),
    LaunchArgument("record_dir", "runs", "Folder the bag of record:=true goes into (<stamp>_<pipeline>/)."),
)


@dataclass(frozen=True)
class LaunchArgs:
    """The launch arguments, typed and validated (see :data:`LAUNCH_ARGUMENTS` for their meaning)."""

    pipeline: str = describe("Visual-servo pipeline.", default="ibvs")
    use_sim: bool = describe("Simulated cell instead of the real camera and arm.", default=True)
    observer: str = describe("Keypoint detector; 'auto' = the pipeline file's.", default="auto")
    rviz: bool = describe("Start rviz2.", default=False)
    record: bool = describe("Record an MCAP bag.", default=False)
    scene: str = describe("Simulated scene id; '' = the first.", default="")
    env: str = describe("Simulated environment.", default="render")
    robot_ip: str = describe("UR controller address; '' = from config.", default="")
    record_dir: str = describe("Folder for recorded bags.", default="runs")

    def __post_init__(self) -> None:
        check_choice("pipeline", self.pipeline, pipeline_names())
        check_choice("observer", self.observer, OBSERVERS)
        check_choice("env", self.env, ENVS)
        if not self.record_dir:
            raise ConfigError("record_dir must not be empty")


def _parse_bool(name: str, value: str) -> bool:
    v = str(value).strip().lower()
    if v not in BOOLS:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {list(BOOLS)}")
    return v == "true"


#: Launch configurations that launch_ros actions set themselves (PushRosNamespace, SetParameter, SetRemap):
#: an including launch file may use them, so they are not taken for unknown arguments.
LAUNCH_ROS_CONFIGURATIONS = ("ros_namespace", "global_params", "ros_remaps")


def parse_launch_args(values: Mapping[str, str]) -> LaunchArgs:
    """Launch-argument strings (``context.launch_configurations``) → :class:`LaunchArgs`.

    Missing keys take the declared defaults; unknown keys raise (a typo must not be silently ignored).
    """
    declared = {a.name: a.default for a in LAUNCH_ARGUMENTS}
    values = {k: v for k, v in values.items() if k not in LAUNCH_ROS_CONFIGURATIONS}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ConfigError(f"unknown launch argument{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(repr(u) for u in unknown)}; valid ones are {', '.join(declared)} "
                          "(see `ros2 launch vs_bringup servo.launch.py --show-args`)")
    v = {**declared, **{k: str(x) for k, x in values.items()}}
    return LaunchArgs(pipeline=v["pipeline"], use_sim=_parse_bool("use_sim", v["use_sim"]), observer=v["observer"],
                      rviz=_parse_bool("rviz", v["rviz"]), record=_parse_bool("record", v["record"]),
                      scene=v["scene"].strip(), env=v["env"], robot_ip=v["robot_ip"].strip(),
                      record_dir=v["record_dir"])


@dataclass(frozen=True)
class NodeSpec:
    """What launch_ros needs to start one node: plain strings, paths and dicts."""

    package: str
    executable: str
    name: str
    namespace: str = ""
    param_files: tuple[Path, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    lifecycle: bool = False

    @property
    def parameters(self) -> list[str | dict[str, Any]]:
        """``Node(parameters=...)``: the YAML files in order, then the derived overrides."""
        return [str(p) for p in self.param_files] + ([dict(self.overrides)] if self.overrides else [])


def workspace_root() -> Path | None:
    """The checkout this module runs from (``src/vs_bringup/vs_bringup`` → root) if it has the config."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "config" / "servo.yaml").is_file() else None


def share_dir(root: str | Path | None = None) -> Path:
    """Folder holding ``config/`` and ``launch/``: ``root`` if given, else the checkout, else the installed share.

    Raises:
        ConfigError: when none is found.
    """
    if root is not None:
        return Path(root)
    found = workspace_root()
    if found is not None:
        return found
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE))
        if (share / "config").is_dir():
            return share
    except (ImportError, LookupError, OSError):
        pass
    raise ConfigError("cannot find the vs_bringup config: run from a checkout or source the workspace install")


def config_file(name: str, root: str | Path | None = None, required: bool = True) -> Path | None:
    """``config/<name>`` under :func:`share_dir`; raises ConfigError (or returns None) when absent."""
    path = share_dir(root) / "config" / name
    if path.is_file():
        return path
    if required:
        raise ConfigError(f"missing parameter file {path}")
    return None


def _files(root: str | Path | None, *names: str, pipeline: PipelineSpec) -> tuple[Path, ...]:
    """servo.yaml, the node's own files (when present), then the pipeline file (required)."""
    own = [config_file(n, root, required=False) for n in names]
    return (config_file("servo.yaml", root), *[p for p in own if p is not None],
            config_file(pipeline.config_file, root))


@dataclass(frozen=True)
class PerceptionNode:
    """A node a pipeline's inputs bring up (:attr:`PipelineSpec.nodes`), by role: what starts it."""

    package: str
    executable: str
    node_class: str  # "module:Class", for in-process composition (the demo)
    own_files: tuple[str, ...] = ()


#: Every perception role a pipeline spec may name (``vs_controllers.core.pipelines.INPUT_NODES``).
PERCEPTION_NODES: dict[str, PerceptionNode] = {
    "goal": PerceptionNode("vs_perception", "goal", "vs_perception.nodes.goal:GoalNode"),
    "observer": PerceptionNode("vs_perception", "observer", "vs_perception.nodes.observer:ObserverNode"),
    "relative_depth": PerceptionNode("vs_perception", "relative_depth",
                                     "vs_perception.nodes.relative_depth_node:RelativeDepthNode",
                                     ("relative_depth.yaml",)),
}


#: The observer node's detector parameter (ObserverConfig.features.detector), set by the ``observer`` argument.
DETECTOR_PARAMETER = "features.detector"


def _perception_specs(args: LaunchArgs, spec: PipelineSpec, root: str | Path | None) -> list[NodeSpec]:
    """The nodes of ``spec.nodes`` in order; the observer gets the chosen detector and the goal node (which
    checks a new goal has keypoints) the observer's."""
    nodes = {role: NodeSpec(PERCEPTION_NODES[role].package, PERCEPTION_NODES[role].executable, role,
                            param_files=_files(root, *PERCEPTION_NODES[role].own_files, pipeline=spec))
             for role in spec.nodes}
    if "observer" in nodes:
        if args.observer != "auto":
            nodes["observer"] = replace(nodes["observer"], overrides={DETECTOR_PARAMETER: args.observer})
        if "goal" in nodes:
            from vs_perception.core.features import FeatureConfig  # the observer node's own default

            detector = resolve_parameters(nodes["observer"]).get(DETECTOR_PARAMETER, FeatureConfig().detector)
            nodes["goal"] = replace(nodes["goal"], overrides={"detector": detector})
    return list(nodes.values())


def rviz_config(root: str | Path | None = None) -> Path:
    """The rviz2 display config of the servo graph."""
    return config_file("rviz/servo.rviz", root)


def node_specs(args: LaunchArgs, root: str | Path | None = None) -> list[NodeSpec]:
    """The nodes of the graph for ``args``, in start order (sensors first, the bridge last).

    - camera: ``vs_sim sim_camera`` (use_sim) or the RealSense ``vs_perception camera`` in namespace
      ``camera`` (realsense-ros names); a pipeline that needs the IR pair turns it on (and off the emitter).
    - the perception nodes of the pipeline's spec (:attr:`PipelineSpec.nodes`: goal + observer for
      correspondences, with the chosen detector; ``relative_depth`` for relative depth).
    - ``servo_controller`` with ``pipeline`` and its pipeline file (after ``sim_cell.yaml`` in the simulated
      cell: its ``session.max_observation_age_s``).
    - ``robot_bridge`` (lifecycle) with the sim or ur_rtde backend; in the simulated cell it autostarts,
      a real arm waits for an explicit ``ros2 lifecycle set /robot_bridge configure`` / ``activate``.
    - ``rviz2`` when asked.
    """
    p = get_pipeline(args.pipeline)
    perception = _perception_specs(args, p, root)
    infra = "infra1" in p.camera_streams
    # The relative_depth node's sgbm source matches the IR pair (its parameter, whatever the pipeline).
    sgbm = any(s.name == "relative_depth" and resolve_parameters(s).get("source") == "sgbm" for s in perception)
    specs: list[NodeSpec] = []
    if args.use_sim:
        # Named like the RealSense driver (/camera/camera) so every topic and tool sees the same graph. Its
        # hand-eye is the bridge's (one source: robot_bridge.yaml), or the rendered view would not match
        # the pose the bridge reports.
        xyz, quat = bridge_hand_eye(root)
        specs.append(NodeSpec("vs_sim", "sim_camera", "camera", namespace="camera",
                              param_files=_files(root, pipeline=p),
                              overrides={"env": args.env, "scene_id": args.scene, "enable_infra": infra or sgbm,
                                         "hand_eye_xyz": xyz, "hand_eye_quat_xyzw": quat}))
    else:
        over: dict[str, Any] = {}
        if infra:
            # The stereo IR pair is an input; the projector's dot pattern would move with the camera.
            over = {"enable_infra1": True, "enable_infra2": True, "depth_module.emitter_enabled": 0}
        elif sgbm:  # SGBM only gains from the projector's dots
            over = {"enable_infra1": True, "enable_infra2": True}
        specs.append(NodeSpec("vs_perception", "camera", "camera", namespace="camera",
                              param_files=_files(root, "camera.yaml", pipeline=p), overrides=over))
    specs += perception
    # sim_cell.yaml: the simulated cell's bounds on image age (its frames are stamped before a ~0.1-0.15 s render).
    specs.append(NodeSpec("vs_controllers", "servo_controller", "servo_controller",
                          param_files=_files(root, *(("sim_cell.yaml",) if args.use_sim else ()), pipeline=p),
                          overrides={"pipeline": p.name, "pipeline_config": str(config_file(p.config_file, root))}))
    timeout = command_timeout_s(camera_rate_hz(specs[0], args.use_sim))  # 3 camera periods
    bridge_over: dict[str, Any] = {"backend": "sim" if args.use_sim else "ur_rtde", "autostart": args.use_sim,
                                   "safety.command_timeout_s": timeout}
    if args.robot_ip and not args.use_sim:
        bridge_over["ur.robot_ip"] = args.robot_ip
    bridge = NodeSpec("vs_robot_bridge", "robot_bridge", "robot_bridge", lifecycle=True,
                      param_files=_files(root, "robot_bridge.yaml", *(("sim_cell.yaml",) if args.use_sim else ()),
                                         pipeline=p), overrides=bridge_over)
    if args.use_sim:
        start = sim_start_overrides(args, resolve_parameters(bridge), root)
        bridge = replace(bridge, overrides={**bridge_over, **start})
    specs.append(bridge)
    if args.rviz:
        specs.append(NodeSpec("rviz2", "rviz2", "rviz2", arguments=("-d", str(rviz_config(root)))))
    return specs


#: The bridge stops the robot after this many camera periods without a command (#20): a command is held for
#: one period until the next frame's replaces it, one late or dropped frame is ridden through, and a silent
#: controller stops the arm within three frames (30 Hz RealSense: 0.1 s, moveit_servo's default; 10 Hz
#: simulated camera: 0.3 s).
COMMAND_TIMEOUT_PERIODS = 3.0


def camera_rate_hz(camera: NodeSpec, use_sim: bool) -> float:
    """The frame rate (Hz) the camera node of ``camera`` starts with: the simulated camera's ``rate_hz``, or
    the RealSense colour profile's fps (its parameter files, then the defaults)."""
    values = resolve_parameters(camera)
    if use_sim:
        from vs_sim.core.cells import CAMERA_RATE_HZ

        return float(values.get("rate_hz", CAMERA_RATE_HZ))
    from vs_perception.core.realsense import ROS_PARAMETER_NAMES, RealSenseConfig, parse_profile

    return float(parse_profile(str(values.get(ROS_PARAMETER_NAMES["color_profile"],
                                              RealSenseConfig().color_profile)))[2])


def command_timeout_s(rate_hz: float) -> float:
    """The bridge's ``safety.command_timeout_s`` for a loop at the camera's ``rate_hz``:
    :data:`COMMAND_TIMEOUT_PERIODS` periods."""
    if not rate_hz > 0:
        raise ConfigError(f"camera rate {rate_hz!r} Hz must be positive")
    return round(COMMAND_TIMEOUT_PERIODS / float(rate_hz), 4)


def pipeline_launch_description(pipeline: str, base: Path):  # -> launch.LaunchDescription
    """What ``<pipeline>.launch.py`` is: ``base`` (servo.launch.py) with ``pipeline:=<pipeline>``, every other
    argument passed through; a contradicting ``pipeline:=...`` on the command line is refused, not replaced."""
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription, OpaqueFunction
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    def refuse_another_pipeline(context, *args, **kwargs):  # noqa: ANN001, ANN202 - launch's signature
        given = context.launch_configurations.get("pipeline", pipeline)
        if given != pipeline:
            raise ConfigError(f"{pipeline}.launch.py runs pipeline {pipeline}, not pipeline:={given} "
                              f"(use servo.launch.py pipeline:={given})")
        return []

    return LaunchDescription([OpaqueFunction(function=refuse_another_pipeline),
                              IncludeLaunchDescription(PythonLaunchDescriptionSource(str(base)),
                                                       launch_arguments={"pipeline": pipeline}.items())])


#: Raw camera streams are left out of `ros2 bag record` (27 MB/s for 640x480 rgb8 at 30 Hz); the observer's
#: debug image still shows what the camera saw, with the matches drawn.
RAW_CAMERA_TOPICS = (T.COLOR_IMAGE, T.ALIGNED_DEPTH, T.INFRA1_IMAGE, T.INFRA2_IMAGE)


def bag_dir(args: LaunchArgs, stamp: str | None = None) -> Path:
    """``<record_dir>/<YYYYmmdd_HHMMSS>_<pipeline>``: the run folder convention shared with the demo."""
    return Path(args.record_dir) / f"{stamp or time.strftime('%Y%m%d_%H%M%S')}_{args.pipeline}"


def record_command(args: LaunchArgs, stamp: str | None = None, with_camera: bool = False) -> list[str]:
    """The ``ros2 bag record`` command line of a run (MCAP, zstd chunks, explicit topic list).

    Args:
        args: the launch arguments (pipeline decides the topics, record_dir the output).
        stamp: folder time stamp; None = now.
        with_camera: also record the raw camera streams (large).

    Returns:
        argv for ``ExecuteProcess``; the bag goes to ``bag_dir(args, stamp) / "bag"``.
    """
    names = [t.name for t in record_topics(args, with_camera)]
    return ["ros2", "bag", "record", "--storage", "mcap", "--storage-preset-profile", "zstd_fast",
            "--output", str(bag_dir(args, stamp) / "bag"), "--topics", *names]


def record_topics(args: LaunchArgs, with_camera: bool = False) -> list[T.TopicSpec]:
    """What ``record:=true`` records, by ``ros2 bag record`` or by the recorder node: every message of the
    run's topics (no rate cap) plus /diagnostics and the markers; raw camera streams only on request."""
    specs = [replace(t, max_rate_hz=0.0) for t in T.run_topics(args.pipeline, with_depth=with_camera)
             if with_camera or t.name not in RAW_CAMERA_TOPICS]
    specs.append(T.TopicSpec(T.DIAGNOSTICS, "diagnostic_msgs/msg/DiagnosticArray", "reliable"))
    specs += T.debug_topics(args.pipeline)
    return specs


# --- what is installed: rviz2 and rosbag2 are optional (a PyPI-wheel workspace has neither) ------------------

def executable_path(package: str, executable: str) -> Path | None:
    """What ``ros2 run package executable`` (and launch_ros) runs: ament prefix + lib/<package>/; None if absent."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return None
    try:
        path = Path(get_package_prefix(package)) / "lib" / package / executable
    except (PackageNotFoundError, ValueError, OSError):  # OSError: AMENT_PREFIX_PATH is not set
        return None
    return path if path.is_file() and os.access(path, os.X_OK) else None


def executable_exists(package: str, executable: str) -> bool:
    """True when ``ros2 run package executable`` would find it (:func:`executable_path`)."""
    return executable_path(package, executable) is not None


def node_command(spec: NodeSpec, executable: str | Path, overrides_file: str | Path | None = None) -> list[str]:
    """The command line launch_ros gives a ``Node`` of ``spec``: the executable, its name and namespace, its
    parameter files in order, then ``overrides_file`` (``spec.overrides`` written by :func:`overrides_yaml`)."""
    ros_args = ["-r", f"__node:={spec.name}"] + (["-r", f"__ns:=/{spec.namespace.strip('/')}"] if spec.namespace
                                                  else [])
    for path in [*spec.param_files, *([overrides_file] if overrides_file else [])]:
        ros_args += ["--params-file", str(path)]
    for a, b in spec.remappings:
        ros_args += ["-r", f"{a}:={b}"]
    return [str(executable), *spec.arguments, "--ros-args", *ros_args]


def overrides_yaml(spec: NodeSpec) -> str:
    """``spec.overrides`` as a ROS 2 parameter file for every node (``/**``), dotted names nested."""
    import yaml

    nested: dict[str, Any] = {}
    for name, value in spec.overrides.items():
        *parents, leaf = name.split(".")
        d = nested
        for key in parents:
            d = d.setdefault(key, {})
        d[leaf] = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump({"/**": {"ros__parameters": nested}}, sort_keys=False)


def rosbag2_available() -> bool:
    """True when ``ros2 bag record --storage mcap`` works: the ros2bag verb and the MCAP storage plugin."""
    import importlib.util

    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return False
    if importlib.util.find_spec("ros2bag") is None or shutil.which("ros2") is None:
        return False
    try:
        get_package_prefix("rosbag2_storage_mcap")
    except (PackageNotFoundError, ValueError, OSError):
        return False
    return True


@dataclass(frozen=True)
class LaunchPlan:
    """What the launch file starts: nodes in order, ``ros2 bag record`` (or None), and warnings to log once."""

    specs: list[NodeSpec]
    record_cmd: list[str] | None = None
    warnings: tuple[str, ...] = ()


def launch_plan(args: LaunchArgs, root: str | Path | None = None, stamp: str | None = None,
                have_executable: Callable[[str, str], bool] = executable_exists,
                have_rosbag2: Callable[[], bool] = rosbag2_available) -> LaunchPlan:
    """:func:`node_specs` adapted to what is installed.

    - ``rviz:=true`` without rviz2: one warning, no rviz2 node (launch_ros would otherwise fail the whole
      launch on the missing package), the graph runs.
    - ``record:=true``: ``ros2 bag record`` where rosbag2 exists, else the ``vs_bringup recorder`` node with
      the same topics into the same folder (``<record_dir>/<stamp>_<pipeline>/bag``, rosbag2 MCAP).
    """
    warnings: list[str] = []
    specs = []
    for spec in node_specs(args, root):
        if spec.package == "rviz2" and not have_executable(spec.package, spec.executable):
            warnings.append("rviz:=true but rviz2 is not installed (it comes with a full ROS 2 install, e.g. "
                            "apt install ros-jazzy-rviz2): the graph runs without it")
            continue
        specs.append(spec)
    record_cmd = None
    if args.record:
        stamp = stamp or time.strftime("%Y%m%d_%H%M%S")
        if have_rosbag2():
            record_cmd = record_command(args, stamp)
        else:
            out = bag_dir(args, stamp) / "bag"
            warnings.append(f"record:=true without rosbag2 (ros2 bag + MCAP storage): recording with the "
                            f"vs_bringup recorder node into {out}")
            specs.append(NodeSpec(PACKAGE, "recorder", "recorder", overrides={
                "output": str(out), "pipeline": args.pipeline, "with_camera": False}))
    return LaunchPlan(specs, record_cmd, tuple(warnings))



# --- parameter files → values (what ``--params-file`` does, for in-process composition and tests) ----------

def _key_matches(pattern: str, fqn: str) -> bool:
    """ROS 2 params-file node keys: an exact fully-qualified name, or wildcards ``*`` (one token), ``/**`` (any)."""
    import re

    pattern = "/" + pattern.strip("/")
    if pattern == fqn:
        return True
    regex = re.escape(pattern).replace(r"/\*\*", "(/.*)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, fqn) is not None


def yaml_parameters(path: str | Path, name: str, namespace: str = "") -> dict[str, Any]:
    """The parameters a ROS 2 params file gives node ``/<namespace>/<name>``, as dotted names → values.

    Node keys may be nested (``camera: camera: ros__parameters``) or fully qualified (``/camera/camera``);
    the ``/**`` wildcard applies to every node. Later sections override earlier ones.
    """
    import yaml

    fqn = "/" + "/".join(x for x in (namespace.strip("/"), name) if x)
    doc = yaml.safe_load(Path(path).read_text()) or {}
    out: dict[str, Any] = {}

    def walk(d: Mapping[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if k == "ros__parameters":
                if _key_matches(prefix, fqn):
                    out.update(flatten_mapping(v or {}))
            elif isinstance(v, Mapping):
                walk(v, f"{prefix}/{str(k).strip('/')}")

    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path} is not a ROS 2 parameter file (expected a mapping of node names)")
    walk(doc, "")
    return out


def resolve_parameters(spec: NodeSpec) -> dict[str, Any]:
    """All parameter values ``spec`` starts with: its YAML files in order, then the overrides."""
    values: dict[str, Any] = {}
    for path in spec.param_files:
        values.update(yaml_parameters(path, spec.name, spec.namespace))
    values.update(spec.overrides)
    return values


def sim_start_overrides(args: LaunchArgs, bridge_params: Mapping[str, Any], root: str | Path | None = None,
                        margin_m: float = 0.3) -> dict[str, Any]:
    """Bridge parameters that start the simulated arm with the camera at the scene's goal view (as the demo).

    The goal camera pose ``w_T_goal`` of the chosen scene (world = robot base in the simulated cell) becomes
    the TCP pose ``w_T_goal · tcp_T_camera⁻¹`` through the bridge's hand-eye. The workspace box is grown to
    hold that TCP ± ``margin_m`` (a box written for a real cell may not hold a scene's goal; the safety layer
    would then refuse to move towards it), enough for the documented ``/vs/sim/orbit`` offsets.

    Raises:
        ConfigError: an unknown scene id (the message shows what ids look like).
    """
    import numpy as np
    from scipy.spatial.transform import Rotation
    from vs_common.core.se3 import pose_from_xyz_quat
    from vs_robot_bridge.core.config import SafetyConfig
    from vs_sim.core.scenes import load_scenes

    w_T_goal = np.asarray(load_scenes(args.env, ids=[args.scene] if args.scene else None)[0].w_T_goal, float)
    xyz, quat = bridge_hand_eye(root)
    tcp_T_cam = pose_from_xyz_quat(xyz, quat)
    base_T_tcp = w_T_goal @ np.linalg.inv(tcp_T_cam)
    t = base_T_tcp[:3, 3]
    default = SafetyConfig()
    lo = np.minimum(np.asarray(bridge_params.get("safety.workspace_min", default.workspace_min), float), t - margin_m)
    hi = np.maximum(np.asarray(bridge_params.get("safety.workspace_max", default.workspace_max), float), t + margin_m)
    r = lambda a: [round(float(x), 6) for x in a]  # noqa: E731 - readable parameter values
    return {"sim.initial_xyz": r(t), "sim.initial_quat_xyzw": r(Rotation.from_matrix(base_T_tcp[:3, :3]).as_quat()),
            "safety.workspace_min": r(lo), "safety.workspace_max": r(hi)}


def bridge_hand_eye(root: str | Path | None = None) -> tuple[list[float], list[float]]:
    """The hand-eye ``tcp_T_camera`` (xyz, quaternion xyzw) the robot bridge is configured with."""
    from vs_robot_bridge.core.config import SafetyConfig

    values = yaml_parameters(config_file("robot_bridge.yaml", root), "robot_bridge")
    default = SafetyConfig()
    xyz = values.get("safety.hand_eye_xyz", list(default.hand_eye_xyz))
    quat = values.get("safety.hand_eye_quat_xyzw", list(default.hand_eye_quat_xyzw))
    return [float(x) for x in xyz], [float(x) for x in quat]
