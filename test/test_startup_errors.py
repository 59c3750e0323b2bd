"""A node given a bad parameter ends start-up with ONE clear log line and a non-zero exit (real processes)."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

from vs_common.ros.main import STARTUP_FAILED  # noqa: E402

CASES = [
    ("vs_perception.nodes.observer", ["features.detector:=surf"], "detector='surf' is not valid; choose one of"),
    ("vs_perception.nodes.observer", ["matching.ratio:=abc"], "expecting type 'DOUBLE'"),
    ("vs_perception.nodes.goal", ["distance_prior_m:=-1.0"], "distance_prior_m=-1.0 is out of range"),
    ("vs_controllers.nodes.servo_controller", ["pipeline:=nope"], "pipeline='nope' is not valid; choose one of"),
    ("vs_controllers.nodes.servo_controller", ["loop.gain_mode:=turbo"], "gain_mode"),
    ("vs_robot_bridge.nodes.robot_bridge", ["safety.max_linear_speed:=5.0"], "max_linear_speed=5.0 is out of range"),
    ("vs_sim.nodes.sim_camera", ["scene_id:=nope"], "unknown scene ids ['nope']"),
]


@pytest.mark.parametrize("module,params,expected", CASES, ids=[f"{c[0].rsplit('.', 1)[1]}-{c[1][0]}" for c in CASES])
def test_bad_parameter_gives_one_line_and_an_exit_status(module, params, expected):
    env = {**os.environ, "ROS_DOMAIN_ID": str(random.randint(101, 200)), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    args = [a for p in params for a in ("-p", p)]
    proc = subprocess.run([sys.executable, "-m", module, "--ros-args", *args], capture_output=True, text=True,
                          timeout=120, env=env)
    # pybullet's C library prints its build banner on import; everything else is the node's.
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip() and "pybullet build time" not in ln]
    assert proc.returncode == STARTUP_FAILED, (proc.returncode, lines)
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "[FATAL]" in lines[0] and "cannot start" in lines[0] and expected in lines[0], lines[0]
