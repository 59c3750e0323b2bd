"""Defaults live once: every parameter file the launch logic loads holds only what differs from the code.

For every node the launch logic starts (every pipeline, simulated and real cell) and every perception node a
pipeline may name, each key of each of its parameter files must be a parameter the node declares (ROS 2
silently ignores a misspelt one) and must not equal the default the node declares it with: the config
dataclass field's (``declare_config``) or the literal of a one-by-one ``declare_parameter`` /
``declare_read_only``. A repeated default would be a second copy that drifts from the code. The CNS training
files (``config/training/cns*.yaml``) follow the same rule against ``CNSTrainingConfig``, an overlay
(``extends:``) against its base.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from vs_common.core.config import flatten_config, flatten_mapping, load_yaml

from vs_bringup import launch_logic as L

pytestmark = pytest.mark.ros  # imports the node modules (rclpy)

#: Node module of each node the launch logic starts, by (package, executable).
NODE_MODULES = {
    ("vs_sim", "sim_camera"): "vs_sim.nodes.sim_camera",
    ("vs_perception", "camera"): "vs_perception.nodes.camera_node",
    ("vs_perception", "goal"): "vs_perception.nodes.goal",
    ("vs_perception", "observer"): "vs_perception.nodes.observer",
    ("vs_perception", "relative_depth"): "vs_perception.nodes.relative_depth_node",
    ("vs_controllers", "servo_controller"): "vs_controllers.nodes.servo_controller",
    ("vs_robot_bridge", "robot_bridge"): "vs_robot_bridge.nodes.robot_bridge",
}


def _config_groups(module: Any) -> list[tuple[type, str, Mapping[str, str]]]:
    """The config dataclasses a node declares with ``declare_config``: (class, prefix, ROS names)."""
    name = module.__name__
    if name.endswith("robot_bridge"):
        return [(cls, prefix, {}) for cls, prefix in module._GROUPS]
    if name.endswith("camera_node"):
        return [(module.RealSenseConfig, "", module.ROS_PARAMETER_NAMES)]
    if name.endswith("goal"):
        return [(module.GoalNodeConfig, "", {})]
    if name.endswith("observer"):
        return [(module.ObserverConfig, "", {})]
    if name.endswith("relative_depth_node"):
        return [(module.RelativeDepthNodeConfig, "", {})]  # model.*: its nested RelativeDepthConfig
    if name.endswith("servo_controller"):
        return [(module.SessionConfig, "session.", {})]
    if name.endswith("sim_camera"):
        return [(module.SimCameraConfig, "", {})]
    return []


def _one_by_one(module: Any) -> dict[str, Any]:
    """Parameters the module declares one by one: ``declare_parameter(name, default, ...)`` and
    ``declare_read_only(node, name, default, ...)`` with a literal name, default evaluated in the module."""
    out: dict[str, Any] = {}
    for call in ast.walk(ast.parse(inspect.getsource(module))):
        if not isinstance(call, ast.Call):
            continue
        fn = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        args = call.args[1:] if fn == "declare_read_only" else call.args if fn == "declare_parameter" else []
        if len(args) >= 2 and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
            out[args[0].value] = eval(compile(ast.Expression(args[1]), module.__name__, "eval"), vars(module))
    return out


def node_defaults(spec: L.NodeSpec) -> dict[str, Any]:
    """Every parameter ``spec``'s node declares from its config dataclasses and one by one → its default."""
    module = importlib.import_module(NODE_MODULES[(spec.package, spec.executable)])
    out = _one_by_one(module)
    for cls, prefix, names in _config_groups(module):
        for name, value in flatten_config(cls()).items():  # nested configs: dotted parameters
            out[names.get(name, prefix + name)] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _specs() -> list[L.NodeSpec]:
    specs = [s for pipeline, use_sim in product(L.PIPELINES, (True, False))
             for s in L.node_specs(L.LaunchArgs(pipeline=pipeline, use_sim=use_sim)) if s.package != "rviz2"]
    # Perception nodes no registered pipeline starts yet still have their own files.
    for role, node in L.PERCEPTION_NODES.items():
        files = [L.config_file(n, required=False) for n in ("servo.yaml", *node.own_files)]
        specs.append(L.NodeSpec(node.package, node.executable, role, param_files=tuple(p for p in files if p)))
    return specs


def test_parameter_files_hold_only_what_differs_from_the_defaults() -> None:
    checked: set[str] = set()
    problems = []
    for spec in _specs():
        defaults = node_defaults(spec)
        for path in spec.param_files:
            checked.add(path.name)
            for key, value in L.yaml_parameters(path, spec.name, spec.namespace).items():
                if key not in defaults:
                    problems.append(f"{path.name}: {key!r} is not a parameter of {spec.name}")
                elif _same(value, defaults[key]):
                    problems.append(f"{path.name}: {spec.name} {key} = {value!r} repeats the default")
    assert not problems, "\n".join(sorted(set(problems)))
    # Every file the launch logic loads was looked at.
    assert checked >= {"servo.yaml", "camera.yaml", "robot_bridge.yaml", "sim_cell.yaml", "relative_depth.yaml",
                       *(f"{p}.yaml" for p in L.PIPELINES)}, checked


def test_a_repeated_default_is_caught(tmp_path) -> None:
    """The check above sees a default written out (the bridge's speed limit) and a misspelt key."""
    (tmp_path / "f.yaml").write_text("robot_bridge:\n  ros__parameters:\n    safety:\n      max_linear_speed: 0.1\n"
                                     "      max_linear_sped: 0.2\n")
    spec = L.NodeSpec("vs_robot_bridge", "robot_bridge", "robot_bridge", param_files=(tmp_path / "f.yaml",))
    values = L.yaml_parameters(tmp_path / "f.yaml", "robot_bridge")
    defaults = node_defaults(spec)
    assert _same(values["safety.max_linear_speed"], defaults["safety.max_linear_speed"])
    assert "safety.max_linear_sped" not in defaults
    assert defaults["autostart"] is False and defaults["backend"] == "sim"  # one-by-one and dataclass ones


#: The training files read by ``train_cns.load_config`` (overlays resolved); Depth-PC's have their own loader.
TRAINING = Path(__file__).resolve().parents[3] / "config" / "training"


def training_repeats(path: Path) -> list[str]:
    """The keys of a CNS training file that change nothing: equal to its base's value (``extends:``, a file
    next to it), else to the ``CNSTrainingConfig`` default."""
    from vs_controllers.training.train_cns import CNSTrainingConfig, load_config

    raw = load_yaml(path)
    base = raw.pop("extends", None)
    if base and not (path.parent / base).is_file():
        return [f"{path.name}: extends {base!r}, which is not a training file next to it"]
    before = flatten_config(CNSTrainingConfig(*load_config(path.parent / base)) if base else CNSTrainingConfig())
    load_config(path)  # unknown keys and bad values fail here
    return [f"{path.name}: {key} = {value!r} repeats {'its base' if base else 'the default'}"
            for key, value in flatten_mapping(raw).items() if _same(value, before[key])]


def test_training_files_hold_only_what_differs_from_the_defaults() -> None:
    files = sorted(TRAINING.glob("cns*.yaml"))
    assert {"cns_stage1.yaml", "cns_table.yaml"} <= {p.name for p in files}
    problems = [p for path in files for p in training_repeats(path)]
    assert not problems, "\n".join(problems)


def test_a_repeated_training_default_is_caught(tmp_path) -> None:
    """A default written out, and an overlay's key equal to its base's value (not the default: 1e-3)."""
    (tmp_path / "base.yaml").write_text("train: {batch_size: 32, lr: 1.0e-4}\nenv: {jitter: 0.002}\n")
    (tmp_path / "top.yaml").write_text("extends: base.yaml\ntrain: {lr: 1.0e-4, seed: 3}\n")
    assert training_repeats(tmp_path / "base.yaml") == ["base.yaml: train.batch_size = 32 repeats the default",
                                                        "base.yaml: env.jitter = 0.002 repeats the default"]
    assert training_repeats(tmp_path / "top.yaml") == ["top.yaml: train.lr = 0.0001 repeats its base"]
