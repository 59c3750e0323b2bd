"""Loop-rate benchmark plumbing (it measures the machine; nothing here asserts a rate)."""

from __future__ import annotations

import numpy as np
from vs_common.core.se3 import exp_se3, pose_error
from vs_controllers.benchmark.loop_rate import camera_path, markdown, measure, render_sequences
from vs_controllers.benchmark.runner import select_scenes


def test_camera_path_steps_are_bounded_and_end_at_the_goal() -> None:
    w_T_init = exp_se3(np.array([0.1, -0.2, 0.05, 0.3, -0.4, 1.2]))
    w_T_goal = exp_se3(np.array([-0.1, 0.1, 0.4, 0.0, 0.2, -0.3]))
    path = camera_path(w_T_init, w_T_goal, step_m=0.01, step_deg=2.0, hold=5)
    assert np.allclose(path[0], w_T_init) and all(np.allclose(T, w_T_goal) for T in path[-6:])
    steps = [pose_error(a, b) for a, b in zip(path[:-1], path[1:])]
    assert max(te for te, _ in steps) <= 0.01 + 1e-9 and max(re for _, re in steps) <= 2.0 + 1e-6


def test_measure_replays_frames_with_and_without_tracking() -> None:
    seqs = render_sequences("image", select_scenes("image", "A", "0:1", scenes_seed=7), 0.02, 3.0, 3)
    assert seqs[0]["frames"][0][0].shape == (480, 640, 3)
    rows = []
    for track in (False, True):
        r = measure("ibvs", seqs, None, {"features.detector": "orb", "tracking.enabled": track})
        assert r["frames"] == len(seqs[0]["frames"]) and r["fps"] > 0 and r["valid"] > 10
        r.update(pipeline="ibvs", detector="orb", track=track, max_keypoints=1000)
        rows.append(r)
    assert rows[0]["detect_fraction"] == 1.0 and rows[0]["track_ms"] == 0.0
    assert rows[1]["detect_fraction"] < 0.5 and rows[1]["track_ms"] > 0.0
    assert markdown(rows).count("\n") == 3


def test_a_relative_depth_pipeline_gets_its_maps_asynchronously() -> None:
    """Depth-PC's loop gets a depth map every few frames: it computes twists instead of waiting for depth."""
    seqs = render_sequences("image", select_scenes("image", "A", "0:1", scenes_seed=7), 0.02, 3.0, 3)
    r = measure("depth_pc", seqs[:1], None, {"features.detector": "orb"}, depth_every=4)
    assert r["frames"] == len(seqs[0]["frames"]) and r["valid"] > 10
    assert r["lost_fraction"] < 0.2, r  # without the maps every frame would wait for the goal's depth
