"""Observer tests: goal bookkeeping, synthetic-warp recovery, depth sampling and input errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from vs_common.core.camera import CameraModel
from vs_common.core.config import from_mapping
from vs_common.core.errors import ConfigError, InputError, NotReadyError, ObservationError
from vs_perception.core.observer import Observer, ObserverConfig, sample_depth

W, H = 640, 480
CAM = CameraModel(np.array([[540.0, 0, 320], [0, 540, 240], [0, 0, 1]]), W, H)
# A mild perspective warp (rotation, shear, shift, a little projective part).
H_TRUE = np.array([[0.96, 0.12, 18.0], [-0.09, 1.01, -12.0], [2e-5, -3e-5, 1.0]])


def textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), 127, np.uint8)
    for _ in range(300):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        u, v = int(rng.integers(0, W)), int(rng.integers(0, H))
        if rng.random() < 0.5:
            cv2.circle(img, (u, v), int(rng.integers(3, 25)), colour, -1)
        else:
            cv2.rectangle(img, (u, v), (u + int(rng.integers(4, 50)), v + int(rng.integers(4, 50))), colour, -1)
    return img


@pytest.mark.parametrize("detector", ["akaze", "sift", "orb"])
@pytest.mark.parametrize("strategy", ["ratio", "mutual"])
def test_observer_recovers_a_synthetic_warp(detector: str, strategy: str) -> None:
    goal_img = textured()
    cur_img = cv2.warpPerspective(goal_img, H_TRUE, (W, H))
    obs = Observer(from_mapping(ObserverConfig, {"features.detector": detector, "matching.strategy": strategy,
                                                 "estimator": {"model": "homography", "method": "magsac"}}))
    goal = obs.set_goal(goal_img, None, CAM, goal_id="g0")
    corr = obs.observe(cur_img, stamp=1.5)
    assert len(corr) == len(goal) and corr.goal_id == "g0" and corr.stamp == 1.5
    assert np.array_equal(corr.goal_ids, goal.goal_ids)
    assert corr.num_valid > 100
    v = corr.valid
    H_est, _ = cv2.findHomography(corr.goal_uv[v], corr.current_uv[v], 0)
    H_est /= H_est[2, 2]
    # Compare the two homographies where it matters: on a grid of image points.
    grid = np.stack(np.meshgrid(np.linspace(50, W - 50, 8), np.linspace(50, H - 50, 6)), -1).reshape(1, -1, 2)
    diff = cv2.perspectiveTransform(grid, H_est) - cv2.perspectiveTransform(grid, H_TRUE)
    assert np.abs(diff).max() < 1.5, np.abs(diff).max()
    # Invalid rows carry NaN, valid ones score in (0, 1]; no goal keypoint matched twice by construction.
    assert np.isnan(corr.current_uv[~v]).all() and np.all(corr.score[~v] == 0)
    assert np.all((corr.score[v] >= 0) & (corr.score[v] <= 1))
    for key in ("detect_ms", "match_ms", "ransac_ms", "total_ms", "num_matches", "num_inliers"):
        assert key in corr.info


def test_goal_is_itself_and_depth_is_sampled() -> None:
    img = textured(1)
    depth = np.full((H, W), 0.8, np.float32)
    depth[:, : W // 2] = np.nan  # unknown on the left half
    obs = Observer(from_mapping(ObserverConfig, {"features.detector": "orb", "depth_window": 1}))
    goal = obs.set_goal(img, depth, CAM)
    assert goal.valid.all() and np.array_equal(goal.goal_uv, goal.current_uv)
    left = goal.goal_uv[:, 0] < W / 2 - 1
    right = goal.goal_uv[:, 0] > W / 2 + 1
    assert np.isnan(goal.goal_depth[left]).all()
    assert np.allclose(goal.goal_depth[right], 0.8)
    # The same image again: every good match is back in its own row, with depth from the map.
    corr = obs.observe(img, depth=np.full((H, W), 1000, np.uint16))  # uint16 millimetres
    assert corr.num_valid > 0.8 * len(goal)
    assert np.allclose(corr.current_uv[corr.valid], corr.goal_uv[corr.valid])
    assert np.allclose(corr.current_depth[corr.valid], 1.0)
    assert obs.observe(img).current_depth is None


def test_sample_depth_median_window_and_edges() -> None:
    depth = np.arange(25, dtype=np.float64).reshape(5, 5)
    depth[2, 2] = np.nan
    uv = np.array([[2.0, 2.0], [0.0, 0.0], [10.0, 10.0], [np.nan, 1.0], [3.4, 0.6]])
    d = sample_depth(depth, uv, window=3)
    assert d[0] == np.nanmedian(depth[1:4, 1:4])
    assert d[1] == np.median([1, 5, 6])  # window clipped at the border; depth 0 means unknown
    assert np.isnan(d[2]) and np.isnan(d[3])
    assert sample_depth(depth, uv[4:], window=1)[0] == depth[1, 3]


def test_too_few_matches_is_not_an_error() -> None:
    obs = Observer(ObserverConfig())
    goal = obs.set_goal(textured(2), None, CAM)
    corr = obs.observe(textured(3))  # a different scene: (almost) nothing matches geometrically
    assert len(corr) == len(goal)
    assert corr.num_valid < 0.05 * len(goal)


def test_errors() -> None:
    obs = Observer()
    with pytest.raises(NotReadyError):
        obs.observe(textured())
    with pytest.raises(InputError):
        obs.set_goal(textured()[:100], None, CAM)  # wrong size for the camera
    with pytest.raises(ObservationError):
        flat = np.full((H, W, 3), 90, np.uint8)
        flat[0, 0] = 91
        obs.set_goal(flat, None, CAM)
    obs.set_goal(textured(), None, CAM)
    with pytest.raises(InputError):
        obs.observe(np.zeros((H, W, 3), np.uint8))  # black frame
    with pytest.raises(InputError):
        obs.observe(textured().astype(np.float32))
    with pytest.raises(InputError):
        obs.observe(textured(), depth=np.ones((H, W - 1), np.float32))
    with pytest.raises(InputError):
        obs.observe(textured(), depth=np.ones((H, W), np.int32))
    with pytest.raises(ConfigError):
        ObserverConfig(depth_window=4)
    with pytest.raises(ConfigError, match="features.detector='superpoint'"):
        from_mapping(ObserverConfig, {"features": {"detector": "superpoint"}})
    with pytest.raises(ConfigError, match=r"unknown ObserverConfig keys \['detector'\].*'features.detector'"):
        from_mapping(ObserverConfig, {"detector": "sift"})  # the flat name of before the nesting
