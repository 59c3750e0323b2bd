"""Demo pieces (start-pose offset, node command lines, command timeout, config) and the full demo in the
simulated cell (each node in its own process, as ros2 launch starts them)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from vs_bringup.demo import DemoConfig
from vs_common.core.errors import ConfigError
from vs_common.core.orbit import orbit_offset
from vs_common.core.se3 import invert, look_at, pose_error

from vs_bringup import launch_logic as L


def test_orbit_offset_meets_the_demo_requirement():
    """Default offset at a typical 0.4 m viewing distance: at least 20 deg and 10 cm away."""
    w_T_c = look_at(np.array([0.0, -0.4, 0.45]), np.array([0.0, -0.4, 0.0]))
    cfg = DemoConfig()
    start = orbit_offset(w_T_c, 0.45, cfg.rotation_deg, cfg.axis)
    te, re = pose_error(w_T_c, start)
    assert re == pytest.approx(cfg.rotation_deg, abs=1e-9)
    assert te >= 0.10 and re >= 20.0
    # The viewed point stays where it was in the image: same point 0.45 m ahead on the optical axis.
    p = w_T_c @ np.array([0.0, 0.0, 0.45, 1.0])
    assert np.allclose(invert(start) @ p, [0.0, 0.0, 0.45, 1.0])


def test_orbit_offset_about_the_optical_axis_is_a_pure_roll():
    w_T_c = np.eye(4)
    start = orbit_offset(w_T_c, 0.5, 30.0, (0.0, 0.0, 1.0))
    te, re = pose_error(w_T_c, start)
    assert te == pytest.approx(0.0, abs=1e-12) and re == pytest.approx(30.0)


def test_node_commands_are_what_launch_ros_runs(tmp_path):
    """Each node: its executable, name, namespace, the launch file's parameter files in order, then its overrides,
    which read back as the launch logic's values."""
    for spec in L.node_specs(L.LaunchArgs(pipeline=L.PIPELINES[0], use_sim=True)):
        over = tmp_path / f"{spec.name}.yaml"
        over.write_text(L.overrides_yaml(spec))
        cmd = L.node_command(spec, "/x/exe", over)
        assert cmd[:2] == ["/x/exe", "--ros-args"] and f"__node:={spec.name}" in cmd
        assert (f"__ns:=/{spec.namespace}" in cmd) == bool(spec.namespace)
        files = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--params-file"]
        assert files == [*map(str, spec.param_files), str(over)]
        assert L.yaml_parameters(over, spec.name, spec.namespace) == {
            k: list(v) if isinstance(v, tuple) else v for k, v in spec.overrides.items()}


def test_command_timeout_is_three_camera_periods():
    def timeout(use_sim: bool) -> float:
        (bridge,) = [s for s in L.node_specs(L.LaunchArgs(use_sim=use_sim)) if s.name == "robot_bridge"]
        return bridge.overrides["safety.command_timeout_s"]

    assert timeout(True) == pytest.approx(L.COMMAND_TIMEOUT_PERIODS / 10.0)  # simulated camera, 10 Hz
    assert timeout(False) == pytest.approx(L.COMMAND_TIMEOUT_PERIODS / 30.0)  # RealSense 640x480x30
    with pytest.raises(ConfigError):
        L.command_timeout_s(0.0)


def test_demo_config_validates():
    with pytest.raises(ConfigError, match="pipeline"):
        DemoConfig(pipeline="vpservo")
    with pytest.raises(ConfigError, match="axis"):
        DemoConfig(axis=(0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="rotation_deg"):
        DemoConfig(rotation_deg=120.0)


def _sim_cell_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("vs_sim.core.cells", "vs_sim.core.scenes"))


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.closed_loop
@pytest.mark.skipif(not _sim_cell_available(), reason="the simulated cell (vs_sim.core.cells) is not there yet")
@pytest.mark.parametrize("pipeline", ["ibvs", "cns", "depth_pc"])
def test_demo_converges(pipeline, tmp_path, monkeypatch):
    """`make demo` end to end: the composed graph servoes back to the goal and leaves a complete run folder.

    With ``cns`` this is the shipped default checkpoint driving the real CNS controller node in the graph.
    """
    import random

    from vs_bringup.demo import run_demo

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    summary = run_demo(DemoConfig(pipeline=pipeline, out=str(tmp_path), timeout_s=240.0,
                                  domain_id=random.randint(101, 200)))
    (run_dir,) = tmp_path.iterdir()
    assert {p.name for p in run_dir.iterdir()} >= {"bag", "report.png", "summary.json"}
    assert json.loads((run_dir / "summary.json").read_text())["pipeline"] == pipeline
    assert summary["start_te_mm"] >= 100.0 and summary["start_re_deg"] >= 20.0
    assert summary["converged"], summary
    assert summary["direct_final_te_mm"] < 30.0 and summary["direct_final_re_deg"] < 3.0
    # The bag replays to the same ground truth the demo measured directly.
    assert summary["final_te_mm"] == pytest.approx(summary["direct_final_te_mm"], abs=2.0)
    assert summary["bag_mb"] < 100.0


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.skipif(not _sim_cell_available(), reason="the simulated cell (vs_sim.core.cells) is not there yet")
def test_demo_wiring_in_the_image_cell(tmp_path, monkeypatch):
    """Goal capture, orbit, Servo action, recording, logs and the report, every node in its own process, in the
    fast textured-plane cell (``--env image``)."""
    import random

    from vs_bringup.demo import run_demo

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    summary = run_demo(DemoConfig(env="image", out=str(tmp_path), timeout_s=150.0, rotation_deg=20.0,
                                  domain_id=random.randint(101, 200)))
    (run_dir,) = tmp_path.iterdir()
    assert {p.name for p in run_dir.iterdir()} >= {"bag", "report.png", "summary.json", "logs", "params"}
    assert {p.stem for p in (run_dir / "logs").iterdir()} == {s.name for s in L.node_specs(L.LaunchArgs(env="image"))}
    assert summary["start_re_deg"] == pytest.approx(20.0) and summary["start_te_mm"] >= 100.0
    assert summary["ground_truth"] and summary["num_twists"] > 10
    assert summary["final_te_mm"] == pytest.approx(summary["direct_final_te_mm"], abs=2.0)
    assert summary["converged"], summary
    assert summary["direct_final_te_mm"] < 30.0 and summary["direct_final_re_deg"] < 3.0
    # The bridge timed the motion commands from their image stamps (/diagnostics, read back from the bag).
    lat = summary["latency_ms"]
    assert lat["image_to_robot"]["n"] > 10 and 0.0 < lat["image_to_twist"]["median"] < 1000.0
    assert summary["loop_rate_hz"] > 1.0
