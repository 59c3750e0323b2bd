"""Launch logic: arguments, node sets per argument combination, parameter files, what the plan does without
rviz2 / rosbag2, and the launch files' data plumbing against stand-ins for ``launch`` / ``launch_ros``.

The launch files under the real launch system (``ros2 launch`` as a subprocess) are tested in
``test_launch_real.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
import types
from itertools import product
from pathlib import Path

import pytest
from vs_common.core.errors import ConfigError
from vs_controllers.core.pipelines import PIPELINES, Input, PipelineSpec, get_pipeline

from vs_bringup import launch_logic as L
from vs_bringup import topics as T

ROOT = Path(__file__).resolve().parents[3]
LAUNCH_DIR = ROOT / "launch"
PER_PIPELINE = sorted(p for p in LAUNCH_DIR.glob("*.launch.py") if p.name != "servo.launch.py")


@pytest.fixture
def fake_root(tmp_path):
    """A copy of the real config/ tree that a test may edit; a file missing from config/ stays missing."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def test_every_registered_pipeline_has_its_files():
    """The real config/ and launch/ hold each registered pipeline's parameter file and launch file."""
    for name, spec in PIPELINES.items():
        assert (ROOT / "config" / spec.config_file).is_file(), name
        assert (LAUNCH_DIR / f"{name}.launch.py").is_file(), name


# --- arguments --------------------------------------------------------------------------------------------

def test_arguments_are_declared_with_descriptions_and_choices():
    names = [a.name for a in L.LAUNCH_ARGUMENTS]
    assert names[:6] == ["pipeline", "use_sim", "observer", "rviz", "record", "scene"]
    assert len(set(names)) == len(names)
    for a in L.LAUNCH_ARGUMENTS:
        assert len(a.description) > 15, a.name
        if a.choices:
            assert a.default in a.choices, a.name
    by_name = {a.name: a for a in L.LAUNCH_ARGUMENTS}
    assert by_name["pipeline"].choices == ("ibvs", "cns", "depth_pc")  # the pipelines that run end to end today
    assert by_name["observer"].choices == ("auto", "sift", "orb", "akaze")
    # Every declared argument is a LaunchArgs field and the defaults agree.
    assert L.parse_launch_args({}) == L.LaunchArgs()


def test_parse_launch_args_types_and_errors():
    a = L.parse_launch_args({"pipeline": "cns", "use_sim": "False", "rviz": "true", "scene": " 7 ",
                             "robot_ip": "10.0.0.2"})
    assert (a.pipeline, a.use_sim, a.rviz, a.scene, a.robot_ip) == ("cns", False, True, "7", "10.0.0.2")
    with pytest.raises(ConfigError, match="choose one of.*'ibvs'"):
        L.parse_launch_args({"pipeline": "vpServo"})
    with pytest.raises(ConfigError, match="use_sim.*'true', 'false'"):
        L.parse_launch_args({"use_sim": "yes"})
    with pytest.raises(ConfigError, match="unknown launch argument 'pipline'; valid ones are pipeline, use_sim"):
        L.parse_launch_args({"pipline": "ibvs"})
    with pytest.raises(ConfigError, match="unknown launch arguments 'a', 'only'"):
        L.parse_launch_args({"only": "perception", "a": "1"})
    # Configurations launch_ros actions set in an including file are not arguments.
    assert L.parse_launch_args({"ros_namespace": "/cell1", "global_params": "[]"}) == L.LaunchArgs()


# --- node sets --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pipeline,use_sim,rviz", list(product(L.PIPELINES, (True, False), (True, False))))
def test_node_set_for_every_combination(fake_root, pipeline, use_sim, rviz):
    args = L.LaunchArgs(pipeline=pipeline, use_sim=use_sim, rviz=rviz, observer="sift")
    specs = L.node_specs(args, fake_root)
    by_name = {s.name: s for s in specs}
    assert len(by_name) == len(specs)
    spec = get_pipeline(pipeline)
    expected = {"camera", "servo_controller", "robot_bridge", *spec.nodes}
    if rviz:
        expected.add("rviz2")
    assert set(by_name) == expected
    cam = by_name["camera"]
    assert (cam.package, cam.executable) == (("vs_sim", "sim_camera") if use_sim else ("vs_perception", "camera"))
    assert cam.namespace == "camera"  # realsense-ros topic names: /camera/camera/...
    assert specs[0] is cam and specs[-1 - rviz].name == "robot_bridge"
    assert [s.name for s in specs if s.lifecycle] == ["robot_bridge"]
    bridge = by_name["robot_bridge"].overrides
    assert bridge["backend"] == ("sim" if use_sim else "ur_rtde") and bridge["autostart"] is use_sim
    ctrl = by_name["servo_controller"]
    assert ctrl.overrides["pipeline"] == pipeline
    assert Path(ctrl.overrides["pipeline_config"]) == fake_root / "config" / f"{pipeline}.yaml"
    for s in specs:
        if s.name == "rviz2":
            assert s.arguments == ("-d", str(fake_root / "config" / "rviz" / "servo.rviz")) and not s.param_files
            continue
        # Parameters only from YAML: servo.yaml first, the pipeline's file last, all present.
        assert s.param_files[0].name == "servo.yaml" and s.param_files[-1].name == f"{pipeline}.yaml"
        assert all(p.is_file() for p in s.param_files)
        assert s.parameters[: len(s.param_files)] == [str(p) for p in s.param_files]
    if "observer" in spec.nodes:
        assert by_name["observer"].overrides["features.detector"] == "sift" == by_name["goal"].overrides["detector"]
    key = "enable_infra" if use_sim else "enable_infra1"
    assert cam.overrides.get(key, False) is ("infra1" in spec.camera_streams)
    if not use_sim:
        assert any(p.name == "camera.yaml" for p in cam.param_files)
    assert any(p.name == "robot_bridge.yaml" for p in by_name["robot_bridge"].param_files)


def test_a_new_pipeline_is_one_spec(fake_root, monkeypatch):
    """Nodes, camera streams and recorded topics follow from a spec's inputs; nothing names the pipeline."""
    spec = PipelineSpec(name="stereo_depth", summary="a test pipeline", inputs=(Input.STEREO_IR, Input.RELATIVE_DEPTH),
                        controller="vs_controllers.core.ibvs:IBVSController.from_mapping",
                        controller_config="vs_controllers.core.ibvs:IBVSConfig")
    monkeypatch.setitem(PIPELINES, spec.name, spec)
    (fake_root / "config" / spec.config_file).write_text("{}\n")
    assert spec.nodes == ("relative_depth",) and spec.camera_streams == ("infra1", "infra2", "color")
    for use_sim in (True, False):
        specs = {s.name: s for s in L.node_specs(L.LaunchArgs(pipeline=spec.name, use_sim=use_sim), fake_root)}
        assert set(specs) == {"camera", "relative_depth", "servo_controller", "robot_bridge"}
        cam = specs["camera"].overrides
        assert cam["enable_infra"] if use_sim else (cam["enable_infra1"] and cam["depth_module.emitter_enabled"] == 0)
        assert specs["relative_depth"].param_files[-1].name == "stereo_depth.yaml"
    names = [t.name for t in T.run_topics(spec.name, with_color=False)]
    assert {T.INFRA1_IMAGE, T.INFRA2_IMAGE, T.RELATIVE_DEPTH, T.COLOR_IMAGE} <= set(names)
    assert T.CORRESPONDENCES not in names and not T.debug_topics(spec.name)
    ibvs = [t.name for t in T.run_topics("ibvs", with_color=False)]
    assert T.CORRESPONDENCES in ibvs and T.COLOR_IMAGE not in ibvs and T.INFRA1_IMAGE not in ibvs


def test_a_pipeline_files_node_sections_reach_their_nodes(fake_root, monkeypatch):
    """A section per node role of the spec (``relative_depth:``, ``goal:``) is accepted by the pipeline loader,
    checked against the node's config class where one exists, and reaches that node (nested → dotted)."""
    from vs_controllers.core.pipelines import pipeline_sections, pipeline_settings

    spec = PipelineSpec(name="depth_test", summary="a test pipeline",
                        inputs=(Input.CORRESPONDENCES, Input.RELATIVE_DEPTH),
                        controller="vs_controllers.core.ibvs:IBVSController.from_mapping",
                        controller_config="vs_controllers.core.ibvs:IBVSConfig",
                        observer_config="vs_perception.core.observer:ObserverConfig")
    monkeypatch.setitem(PIPELINES, spec.name, spec)
    path = fake_root / "config" / spec.config_file
    path.write_text("relative_depth: {ros__parameters: {source: aligned, model: {output: disparity}}}\n"
                    "goal: {ros__parameters: {save_dir: /tmp/goals}}\n"
                    "observer: {ros__parameters: {features: {max_keypoints: 300}}}\n")
    specs = {s.name: s for s in L.node_specs(L.LaunchArgs(pipeline=spec.name), fake_root)}
    assert L.resolve_parameters(specs["relative_depth"])["model.output"] == "disparity"
    assert L.resolve_parameters(specs["goal"])["save_dir"] == "/tmp/goals"
    assert L.resolve_parameters(specs["observer"])["features.max_keypoints"] == 300
    sections = pipeline_sections(spec.name, path)
    assert sections["relative_depth"] == {"source": "aligned", "model.output": "disparity"}
    settings = pipeline_settings(spec.name, path)
    assert settings["goal"]["save_dir"] == "/tmp/goals" and settings["observer"]["features"]["max_keypoints"] == 300
    path.write_text("goal: {ros__parameters: {detektor: orb}}\n")  # checked against GoalNodeConfig
    with pytest.raises(ConfigError, match="unknown GoalNodeConfig keys"):
        pipeline_sections(spec.name, path)
    path.write_text("camera: {ros__parameters: {rate_hz: 5.0}}\n")  # not a node this spec brings up
    with pytest.raises(ConfigError, match="unknown sections"):
        pipeline_sections(spec.name, path)


def test_real_robot_ip_and_sim_scene(fake_root):
    real = {s.name: s for s in L.node_specs(L.LaunchArgs(use_sim=False, robot_ip="10.0.0.2"), fake_root)}
    assert real["robot_bridge"].overrides["ur.robot_ip"] == "10.0.0.2"
    sim = {s.name: s for s in L.node_specs(L.LaunchArgs(scene="image_003", env="image", robot_ip="10.0.0.2"),
                                           fake_root)}
    assert "ur.robot_ip" not in sim["robot_bridge"].overrides
    assert sim["camera"].overrides["scene_id"] == "image_003" and sim["camera"].overrides["env"] == "image"
    with pytest.raises(ConfigError, match="unknown scene ids"):  # fails at launch, not in the camera process
        L.node_specs(L.LaunchArgs(scene="s3"), fake_root)


@pytest.mark.parametrize("env,scene", [("render", ""), ("render", "render_017"), ("image", "image_003")])
def test_sim_arm_starts_at_the_scene_goal_view(fake_root, env, scene):
    """use_sim:=true: the bridge's sim TCP, through its hand-eye, puts the camera at the scene's goal view."""
    import numpy as np
    from scipy.spatial.transform import Rotation
    from vs_common.core.se3 import make_pose, pose_error
    from vs_sim.core.scenes import load_scenes

    bridge = next(s for s in L.node_specs(L.LaunchArgs(env=env, scene=scene), fake_root) if s.name == "robot_bridge")
    p = L.resolve_parameters(bridge)
    base_T_tcp = make_pose(Rotation.from_quat(p["sim.initial_quat_xyzw"]).as_matrix(), np.array(p["sim.initial_xyz"]))
    xyz, quat = L.bridge_hand_eye(fake_root)
    w_T_cam = base_T_tcp @ make_pose(Rotation.from_quat(quat).as_matrix(), np.array(xyz))
    goal = load_scenes(env, ids=[scene] if scene else None)[0].w_T_goal
    te, re = pose_error(goal, w_T_cam)
    assert te < 1e-5 and re < 1e-3
    # The safety box holds the start TCP with room for an orbit around it.
    lo, hi = np.array(p["safety.workspace_min"]), np.array(p["safety.workspace_max"])
    assert np.all(lo <= base_T_tcp[:3, 3] - 0.3 + 1e-6) and np.all(base_T_tcp[:3, 3] + 0.3 - 1e-6 <= hi)
    real = next(s for s in L.node_specs(L.LaunchArgs(use_sim=False), fake_root) if s.name == "robot_bridge")
    # A real cell keeps its own box: of the safety settings, launch sets only the command timeout it derives
    # from the camera rate.
    assert not any(k.startswith("sim.") for k in real.overrides)
    assert {k for k in real.overrides if k.startswith("safety.")} == {"safety.command_timeout_s"}


def test_sim_camera_uses_the_bridge_hand_eye(fake_root):
    (fake_root / "config" / "robot_bridge.yaml").write_text(
        "robot_bridge:\n  ros__parameters:\n    safety:\n      hand_eye_xyz: [0.01, 0.02, 0.07]\n")
    cam = L.node_specs(L.LaunchArgs(), fake_root)[0]
    assert cam.overrides["hand_eye_xyz"] == [0.01, 0.02, 0.07]


def test_the_sgbm_relative_depth_source_turns_the_ir_pair_on(fake_root):
    """The relative_depth node's source (its parameter, not the pipeline's name) decides the IR streams."""
    def camera(use_sim: bool) -> L.NodeSpec:
        return L.node_specs(L.LaunchArgs(pipeline="depth_pc", use_sim=use_sim), fake_root)[0]

    assert camera(True).overrides["enable_infra"] is False  # the shipped file: aligned depth
    (fake_root / "config" / "depth_pc.yaml").write_text(
        (fake_root / "config" / "depth_pc.yaml").read_text().replace("source: aligned", "source: sgbm"))
    assert camera(True).overrides["enable_infra"] is True
    real = camera(False).overrides
    assert real["enable_infra1"] and real["enable_infra2"] and "depth_module.emitter_enabled" not in real


def test_missing_pipeline_file_is_a_clear_error(fake_root):
    (fake_root / "config" / "cns.yaml").unlink()
    with pytest.raises(ConfigError, match="missing parameter file .*cns.yaml"):
        L.node_specs(L.LaunchArgs(pipeline="cns"), fake_root)


@pytest.mark.parametrize(("pipeline", "detector"), [("ibvs", "akaze"), ("cns", "sift")])
def test_observer_auto_keeps_the_pipeline_files_detector(pipeline, detector):
    specs = {s.name: s for s in L.node_specs(L.LaunchArgs(pipeline=pipeline))}
    assert L.DETECTOR_PARAMETER == "features.detector" and L.DETECTOR_PARAMETER not in specs["observer"].overrides
    from vs_perception.core.features import FeatureConfig

    assert L.resolve_parameters(specs["observer"]).get("features.detector", FeatureConfig().detector) == detector
    assert specs["goal"].overrides["detector"] == detector  # the goal node checks keypoints with the same one
    forced = {s.name: s for s in L.node_specs(L.LaunchArgs(pipeline=pipeline, observer="orb"))}
    assert L.resolve_parameters(forced["observer"])[L.DETECTOR_PARAMETER] == "orb"
    assert forced["goal"].overrides["detector"] == "orb"


def test_the_real_config_for_ibvs():
    specs = {s.name: s for s in L.node_specs(L.LaunchArgs(rviz=True))}
    assert specs["servo_controller"].param_files[-1] == ROOT / "config" / "ibvs.yaml"
    # The shipped IBVS graph is the defaults in code but for tracking: the files give the observer only that (#20:
    # tracking, goal-image LK)
    # and the session only the simulated cell's image-age limit (sim_cell.yaml, test_sim_cell.py).
    assert L.resolve_parameters(specs["observer"]) == {"tracking.enabled": True, "tracking.goal_lk_px": 2.0}
    ctrl = L.resolve_parameters(specs["servo_controller"])
    assert ctrl["pipeline"] == "ibvs"
    assert {k for k in ctrl if k.startswith("session.")} == {"session.max_observation_age_s"}
    assert L.rviz_config() == ROOT / "config" / "rviz" / "servo.rviz"


# --- parameter files ------------------------------------------------------------------------------------

def test_yaml_parameters_node_keys(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("""
/**:
  ros__parameters: {use_sim_time: false, rate: 1}
camera:
  camera:
    ros__parameters: {rate: 2, nested: {a: 1, b: {c: x}}}
/camera/camera:
  ros__parameters: {late: true}
/*/observer:
  ros__parameters: {detector: orb}
observer:
  ros__parameters: {detector: sift}
""")
    assert L.yaml_parameters(f, "camera", "camera") == {
        "use_sim_time": False, "rate": 2, "nested.a": 1, "nested.b.c": "x", "late": True}
    assert L.yaml_parameters(f, "observer") == {"use_sim_time": False, "rate": 1, "detector": "sift"}
    assert L.yaml_parameters(f, "observer", "robot1")["detector"] == "orb"
    assert L.yaml_parameters(f, "camera") == {"use_sim_time": False, "rate": 1}
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="not a ROS 2 parameter file"):
        L.yaml_parameters(tmp_path / "bad.yaml", "x")


# --- recording ------------------------------------------------------------------------------------------

def test_record_command():
    cmd = L.record_command(L.LaunchArgs(pipeline="cns", record_dir="/data/runs"), stamp="20260101_120000")
    assert cmd[:3] == ["ros2", "bag", "record"] and cmd[cmd.index("--storage") + 1] == "mcap"
    assert cmd[cmd.index("--output") + 1] == "/data/runs/20260101_120000_cns/bag"
    topics = cmd[cmd.index("--topics") + 1:]
    assert "/vs/perception/correspondences" in topics and "/vs/servo/cmd_twist" in topics
    assert "/camera/camera/color/image_raw" not in topics  # raw camera only on request
    assert "/camera/camera/color/image_raw" in L.record_command(L.LaunchArgs(), with_camera=True)
    assert "/diagnostics" in topics and "/vs/perception/markers" in topics


# --- the launch files ------------------------------------------------------------------------------------

def test_launch_files_parse_and_import_launch_lazily():
    files = sorted(LAUNCH_DIR.glob("*.launch.py"))
    assert {f.name for f in files} >= {"servo.launch.py", "ibvs.launch.py", "cns.launch.py"}
    for f in files:
        tree = ast.parse(f.read_text(), filename=str(f))
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in funcs, f.name
        for node in tree.body:  # module level: no launch / launch_ros imports (not installable everywhere)
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in ("launch", "launch_ros"), f.name
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] not in ("launch", "launch_ros") for a in node.names), f.name


class _Action:
    """Stand-in for every launch action / substitution / description: records its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Action):
    def perform(self, context) -> str:
        return context.launch_configurations[self.args[0]]


@pytest.fixture
def fake_launch(monkeypatch):
    """Install minimal ``launch`` / ``launch_ros`` modules that record what the launch files build."""
    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.events", "launch.logging", "launch.substitutions",
        "launch.launch_description_sources",
        "launch_ros", "launch_ros.actions", "launch_ros.events", "launch_ros.events.lifecycle")}
    mods["launch"].LaunchDescription = _Action
    for n in ("DeclareLaunchArgument", "OpaqueFunction", "EmitEvent", "ExecuteProcess", "LogInfo",
              "IncludeLaunchDescription"):
        setattr(mods["launch.actions"], n, type(n, (_Action,), {}))
    mods["launch.events"].matches_action = lambda action: ("matches", action)
    mods["launch.logging"].get_logger = lambda name: types.SimpleNamespace(warning=lambda msg: None)
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    mods["launch.launch_description_sources"].PythonLaunchDescriptionSource = _Action
    mods["launch_ros.actions"].Node = type("Node", (_Action,), {})
    mods["launch_ros.actions"].LifecycleNode = type("LifecycleNode", (_Action,), {})
    mods["launch_ros.events.lifecycle"].ChangeState = _Action
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return mods


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"_launch_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_servo_launch(values: dict[str, str]) -> list[_Action]:
    ld = _load(LAUNCH_DIR / "servo.launch.py").generate_launch_description()
    (entities,) = ld.args
    declared = [e for e in entities if type(e).__name__ == "DeclareLaunchArgument"]
    assert [d.args[0] for d in declared] == [a.name for a in L.LAUNCH_ARGUMENTS]
    assert all(d.kwargs["description"] for d in declared)
    assert declared[0].kwargs["choices"] == list(L.PIPELINES)
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    context = types.SimpleNamespace(launch_configurations={
        **{d.args[0]: d.kwargs["default_value"] for d in declared}, **values})
    return opaque.kwargs["function"](context)


def test_servo_launch_builds_the_sim_graph(fake_launch, monkeypatch):
    monkeypatch.setattr(L, "executable_exists", lambda package, executable: True)  # as on a full ROS install
    monkeypatch.setattr(L, "rosbag2_available", lambda: True)
    monkeypatch.setattr(L.launch_plan, "__defaults__", (None, None, L.executable_exists, L.rosbag2_available))
    actions = _run_servo_launch({"pipeline": "ibvs", "record": "true", "rviz": "true"})
    kinds = [type(a).__name__ for a in actions]
    nodes = {a.kwargs["name"]: a for a in actions if type(a).__name__ in ("Node", "LifecycleNode")}
    assert set(nodes) == {"camera", "goal", "observer", "servo_controller", "robot_bridge", "rviz2"}
    assert type(nodes["robot_bridge"]).__name__ == "LifecycleNode"
    assert nodes["camera"].kwargs["executable"] == "sim_camera" and nodes["camera"].kwargs["namespace"] == "camera"
    params = nodes["observer"].kwargs["parameters"]
    assert params[0].endswith("servo.yaml") and params[-1].endswith("ibvs.yaml")  # observer:=auto, no override
    assert "EmitEvent" not in kinds  # the simulated bridge autostarts
    (record,) = [a for a in actions if type(a).__name__ == "ExecuteProcess"]
    assert record.kwargs["cmd"][:3] == ["ros2", "bag", "record"]


def test_servo_launch_real_robot_configures_but_does_not_activate(fake_launch, fake_root, monkeypatch):
    from lifecycle_msgs.msg import Transition

    monkeypatch.setattr(L, "workspace_root", lambda: fake_root)

    actions = _run_servo_launch({"pipeline": "cns", "use_sim": "false", "robot_ip": "10.0.0.2"})
    nodes = {a.kwargs["name"]: a for a in actions if type(a).__name__ in ("Node", "LifecycleNode")}
    assert set(nodes) == {"camera", "goal", "observer", "servo_controller", "robot_bridge"}
    assert nodes["camera"].kwargs["executable"] == "camera"
    assert nodes["robot_bridge"].kwargs["parameters"][-1]["ur.robot_ip"] == "10.0.0.2"
    (emit,) = [a for a in actions if type(a).__name__ == "EmitEvent"]
    change = emit.kwargs["event"]
    assert change.kwargs["transition_id"] == Transition.TRANSITION_CONFIGURE
    assert change.kwargs["lifecycle_node_matcher"] == ("matches", nodes["robot_bridge"])
    assert not any(type(a).__name__ == "ExecuteProcess" for a in actions)


def test_servo_launch_rejects_a_bad_argument(fake_launch):
    with pytest.raises(ConfigError, match="observer"):
        _run_servo_launch({"observer": "surf"})
    with pytest.raises(ConfigError, match="unknown launch argument 'only'"):
        _run_servo_launch({"only": "perception"})


# --- the plan: what is installed ---------------------------------------------------------------------------

def test_plan_without_rviz2_warns_once_and_keeps_the_graph(fake_root):
    args = L.LaunchArgs(rviz=True)
    plan = L.launch_plan(args, fake_root, have_executable=lambda p, e: False, have_rosbag2=lambda: False)
    assert [s.name for s in plan.specs] == [s.name for s in L.node_specs(args, fake_root) if s.name != "rviz2"]
    assert len(plan.warnings) == 1 and "rviz2 is not installed" in plan.warnings[0]
    assert plan.record_cmd is None
    full = L.launch_plan(args, fake_root, have_executable=lambda p, e: True, have_rosbag2=lambda: True)
    assert full.specs[-1].name == "rviz2" and not full.warnings


def test_plan_records_with_rosbag2_or_the_recorder_node(fake_root):
    args = L.LaunchArgs(pipeline="cns", record=True, record_dir="/data/runs")
    bag = L.launch_plan(args, fake_root, stamp="20260101_120000", have_rosbag2=lambda: True)
    assert bag.record_cmd == L.record_command(args, stamp="20260101_120000") and not bag.warnings
    assert "recorder" not in [s.name for s in bag.specs]
    own = L.launch_plan(args, fake_root, stamp="20260101_120000", have_rosbag2=lambda: False)
    assert own.record_cmd is None and len(own.warnings) == 1 and "recorder node" in own.warnings[0]
    rec = own.specs[-1]
    assert (rec.package, rec.executable, rec.name) == ("vs_bringup", "recorder", "recorder")
    # The same folder and the same topics as `ros2 bag record`.
    assert rec.overrides["output"] == "/data/runs/20260101_120000_cns/bag"
    assert rec.overrides["pipeline"] == "cns" and rec.overrides["with_camera"] is False
    cmd = bag.record_cmd
    assert [t.name for t in L.record_topics(args)] == cmd[cmd.index("--topics") + 1:]


def test_installed_checks_on_this_machine(monkeypatch):
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    assert L.executable_exists("vs_perception", "observer") is False  # no ament prefix: nothing is found
    assert L.rosbag2_available() is False
    monkeypatch.setenv("AMENT_PREFIX_PATH", sys.prefix)
    built = (Path(sys.prefix) / "lib" / "vs_perception" / "observer").is_file()  # make setup's colcon build
    assert L.executable_exists("vs_perception", "observer") is built
    assert L.executable_exists("vs_perception", "no_such_executable") is False
    assert L.executable_exists("no_such_package_xyz", "x") is False


@pytest.mark.parametrize("path", PER_PIPELINE, ids=lambda p: p.name)
def test_per_pipeline_files_include_the_base(fake_launch, path):
    ld = _load(path).generate_launch_description()
    (entities,) = ld.args
    check, include = entities
    source = include.args[0]
    assert Path(source.args[0]) == LAUNCH_DIR / "servo.launch.py"
    pipeline = path.name.removesuffix(".launch.py")
    assert pipeline in L.PIPELINES
    assert dict(include.kwargs["launch_arguments"]) == {"pipeline": pipeline}
    # A contradicting pipeline:=... on the command line is refused before the include runs.
    refuse = check.kwargs["function"]
    assert refuse(types.SimpleNamespace(launch_configurations={})) == []
    assert refuse(types.SimpleNamespace(launch_configurations={"pipeline": pipeline})) == []
    with pytest.raises(ConfigError, match=f"runs pipeline {pipeline}, not pipeline:=kovis"):
        refuse(types.SimpleNamespace(launch_configurations={"pipeline": "kovis"}))
