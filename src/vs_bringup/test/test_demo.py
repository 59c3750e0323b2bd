"""Demo pieces (start-pose offset, parameter conversion, config) and the full demo in the simulated cell."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from vs_bringup.demo import DemoConfig, as_ros_parameters
from vs_common.core.errors import ConfigError
from vs_common.core.orbit import orbit_offset
from vs_common.core.se3 import invert, look_at, pose_error


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


def test_as_ros_parameters_types():
    from rclpy.parameter import Parameter

    params = {p.name: p for p in as_ros_parameters({"a": [0, 0.5], "b": (1.0, 2.0), "c": "", "d": float("nan"),
                                                    "e": True, "f": [1, 2]})}
    assert params["a"].type_ == Parameter.Type.DOUBLE_ARRAY and params["a"].value == [0.0, 0.5]
    assert params["b"].type_ == Parameter.Type.DOUBLE_ARRAY
    assert params["c"].type_ == Parameter.Type.STRING
    assert params["d"].type_ == Parameter.Type.DOUBLE and np.isnan(params["d"].value)
    assert params["e"].type_ == Parameter.Type.BOOL
    assert params["f"].type_ == Parameter.Type.INTEGER_ARRAY


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
@pytest.mark.parametrize("pipeline", ["ibvs", "cns"])
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


# --- the demo wiring against a stand-in cell (a textured plane rendered by homography) --------------------

class _PlaneCell:
    """Minimal stand-in of vs_sim's Cell: a textured plane z = 0 seen by a pinhole camera (exact homography)."""

    def __init__(self) -> None:
        import cv2
        from vs_common.core.camera import CameraModel

        rng = np.random.default_rng(0)
        tex = np.zeros((800, 800), np.float32)
        for size in (4, 16, 64):  # multi-scale noise: plenty of AKAZE keypoints
            tex += cv2.resize(rng.random((800 // size, 800 // size), np.float32), (800, 800),
                              interpolation=cv2.INTER_CUBIC)
        tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        self.texture = np.stack([tex, np.roll(tex, 37, axis=0), np.roll(tex, 91, axis=1)], axis=2)
        self.camera = CameraModel(K=np.array([[540.0, 0, 320], [0, 540.0, 240], [0, 0, 1]]), width=640, height=480)
        self.ir_camera, self.baseline_m = self.camera, 0.05
        s = 1.0 / 800  # texture pixel → metres; the texture spans x ∈ [-0.5, 0.5], y ∈ [-0.9, 0.1]
        self.A = np.array([[s, 0, -0.5], [0, s, -0.9], [0, 0, 1.0]])

    def load_scene(self, scene) -> None:
        pass

    def render(self, w_T_c: np.ndarray, streams=("color", "depth")):
        import types

        import cv2

        c_T_w = invert(w_T_c)
        K = self.camera.K
        H = K @ np.column_stack([c_T_w[:3, 0], c_T_w[:3, 1], c_T_w[:3, 3]]) @ self.A
        color = cv2.warpPerspective(self.texture, H, (640, 480), flags=cv2.INTER_LINEAR)
        u, v = np.meshgrid(np.arange(640.0), np.arange(480.0))
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
        rz = rays @ w_T_c[:3, :3].T[:, 2]  # world z of each ray (unit optical z)
        depth = (-w_T_c[2, 3] / rz).astype(np.float32)
        depth[~(depth > 0)] = np.nan
        return types.SimpleNamespace(color=color, depth=depth, ir_left=None, ir_right=None, w_T_c=w_T_c)


@pytest.fixture
def plane_cell(monkeypatch):
    """Install the stand-in as vs_sim.core.cells / vs_sim.core.scenes for the sim camera node."""
    import sys
    import types

    scene = types.SimpleNamespace(id="plane0", env="render", section="S", scene_center=np.array([0.0, -0.4, 0.0]),
                                  w_T_goal=look_at(np.array([0.02, -0.38, 0.45]), np.array([0.0, -0.4, 0.0])),
                                  w_T_init=np.eye(4))
    cells = types.ModuleType("vs_sim.core.cells")
    cells.make_cell = lambda env, **kw: _PlaneCell()
    scenes = types.ModuleType("vs_sim.core.scenes")
    scenes.load_scenes = lambda env, section=None, ids=None: [scene]
    monkeypatch.setitem(sys.modules, "vs_sim.core.cells", cells)
    monkeypatch.setitem(sys.modules, "vs_sim.core.scenes", scenes)
    monkeypatch.delitem(sys.modules, "vs_sim.nodes.sim_camera", raising=False)
    return scene


@pytest.mark.ros
@pytest.mark.slow
def test_demo_wiring_with_a_stand_in_cell(plane_cell, tmp_path, monkeypatch):
    """Goal capture, offset, Servo action, recording and the report, with the real nodes of every package."""
    import random

    from vs_bringup.demo import run_demo

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    summary = run_demo(DemoConfig(out=str(tmp_path), timeout_s=150.0, rotation_deg=20.0,
                                  domain_id=random.randint(101, 200)))
    (run_dir,) = tmp_path.iterdir()
    assert {p.name for p in run_dir.iterdir()} >= {"bag", "report.png", "summary.json"}
    assert summary["start_re_deg"] == pytest.approx(20.0) and summary["start_te_mm"] >= 100.0
    assert summary["ground_truth"] and summary["num_twists"] > 10
    assert summary["final_te_mm"] == pytest.approx(summary["direct_final_te_mm"], abs=2.0)
    assert summary["converged"], summary
    assert summary["direct_final_te_mm"] < 30.0 and summary["direct_final_re_deg"] < 3.0
