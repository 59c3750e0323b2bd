"""The simulated cell's bounds on image age (config/sim_cell.yaml) reach the controller and the bridge under
use_sim:=true, and never a real cell's nodes.

The simulated camera stamps a frame when it reads the pose it renders, before a ~0.1-0.15 s render, so its
images reach the controller older than a D435's: CNS saw 0.53 s at load 9-10, past the real cell's 0.5 s
(``SessionConfig.max_observation_age_s``), and every observation was refused (#20).
"""

from __future__ import annotations

import pytest
from vs_controllers.core.session import SessionConfig
from vs_robot_bridge.core.config import SafetyConfig

from vs_bringup import launch_logic as L

pytestmark = pytest.mark.ros  # the node test imports rclpy

AGE = "session.max_observation_age_s"


def _spec(name: str, pipeline: str, use_sim: bool) -> L.NodeSpec:
    return next(s for s in L.node_specs(L.LaunchArgs(pipeline=pipeline, use_sim=use_sim)) if s.name == name)


@pytest.mark.parametrize("pipeline", L.PIPELINES)
def test_the_sim_cell_age_limits_are_given_only_in_the_simulated_cell(pipeline: str) -> None:
    sim, real = _spec("servo_controller", pipeline, True), _spec("servo_controller", pipeline, False)
    assert L.config_file("sim_cell.yaml") in sim.param_files and L.config_file("sim_cell.yaml") not in real.param_files
    age = L.resolve_parameters(sim)[AGE]
    assert age == 0.8 > SessionConfig().max_observation_age_s
    assert AGE not in L.resolve_parameters(real)  # a real cell starts with SessionConfig's 0.5 s
    # The bridge lets through what the controller accepted (its twists carry the image's stamp) ...
    bridge = L.resolve_parameters(_spec("robot_bridge", pipeline, True))
    assert bridge["safety.max_command_age_s"] > age
    # ... and a real bridge keeps SafetyConfig's 0.1 s.
    assert "safety.max_command_age_s" not in L.resolve_parameters(_spec("robot_bridge", pipeline, False))
    assert SafetyConfig().max_command_age_s == 0.1


@pytest.mark.parametrize("use_sim", [True, False])
def test_the_controller_node_starts_with_the_cell_s_age_limit(ros_context, tmp_path, use_sim: bool) -> None:
    """The node as launch_ros starts it (node_command: the parameter files, then the overrides file)."""
    from vs_controllers.nodes.servo_controller import ServoControllerNode

    spec = _spec("servo_controller", "ibvs", use_sim)
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(L.overrides_yaml(spec))
    argv = L.node_command(spec, "servo_controller", overrides)
    node = ServoControllerNode(context=ros_context, cli_args=argv[argv.index("--ros-args"):])
    try:
        want = 0.8 if use_sim else SessionConfig().max_observation_age_s
        assert node.get_parameter(AGE).value == want
        assert node.session.config.max_observation_age_s == want
    finally:
        node.destroy_node()
