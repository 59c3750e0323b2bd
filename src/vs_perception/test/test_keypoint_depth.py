"""Keypoint depth: bilinear samples of the latest map, NaN outside / at holes, its age, the goal map by stamp."""

from __future__ import annotations

import numpy as np
import pytest
from vs_common.core.errors import ConfigError, InputError
from vs_perception.core.keypoint_depth import DepthMap, KeypointDepth, KeypointDepthConfig
from vs_perception.core.stereo_depth import depth_to_other_camera


def _ramp(w: int = 8, h: int = 6) -> np.ndarray:
    return np.tile(np.arange(w, dtype=np.float32), (h, 1))  # value = u


def test_bilinear_samples_nan_outside_and_at_holes() -> None:
    d = _ramp()
    d[3, 5] = np.nan
    m = DepthMap(d, stamp=1.0)
    z = m.sample(np.array([[2.25, 1.0], [2.5, 1.5], [-3.0, 1.0], [2.0, 40.0], [np.nan, 1.0], [5.0, 3.0],
                           [4.5, 3.0]]), (8, 6))
    np.testing.assert_allclose(z[:2], [2.25, 2.5], atol=1e-5)  # bilinear between pixel centres
    assert np.isnan(z[2:]).all()  # outside, non-finite pixel, a NaN pixel and its neighbourhood


def test_a_smaller_map_of_the_same_image_is_sampled_at_scaled_pixels() -> None:
    full = DepthMap(_ramp(16, 12), stamp=0.0)
    half = DepthMap(np.tile(np.arange(8, dtype=np.float32) * 2 + 0.5, (6, 1)), stamp=0.0, image_size=(16, 12))
    uv = np.array([[5.0, 5.0], [9.5, 2.0]])
    np.testing.assert_allclose(half.sample(uv, (16, 12)), full.sample(uv, (16, 12)), atol=1e-5)
    with pytest.raises(InputError, match="16x12"):
        half.sample(uv, (640, 480))
    with pytest.raises(InputError):
        DepthMap(np.zeros(5), stamp=0.0)


def test_latest_map_its_age_and_the_age_limit() -> None:
    kd = KeypointDepth(KeypointDepthConfig(max_age_s=1.0))
    uv = np.array([[3.0, 2.0]])
    assert np.isnan(kd.age_s(5.0)) and np.isnan(kd.current_values(uv, (8, 6), 5.0)).all()
    kd.update(DepthMap(_ramp(), stamp=4.5))
    kd.update(DepthMap(_ramp() + 100, stamp=4.0))  # older, arriving late: ignored
    assert kd.age_s(5.0) == pytest.approx(0.5)
    assert kd.current_values(uv, (8, 6), 5.0)[0] == pytest.approx(3.0)
    assert np.isnan(kd.current_values(uv, (8, 6), 6.0)).all()  # 1.5 s old > max_age_s


def test_goal_map_is_the_one_nearest_the_goal_stamp_within_the_tolerance() -> None:
    kd = KeypointDepth(KeypointDepthConfig(goal_stamp_tolerance_s=0.2))
    uv = np.array([[1.0, 1.0]])
    assert kd.goal_values(uv, (8, 6), 10.0) is None
    kd.add_goal(DepthMap(_ramp() + 1, stamp=9.7))
    assert kd.goal_values(uv, (8, 6), 10.0) is None  # 0.3 s away
    kd.add_goal(DepthMap(_ramp() + 2, stamp=10.1))
    kd.add_goal(DepthMap(_ramp() + 3, stamp=10.15))
    assert kd.goal_values(uv, (8, 6), 10.0)[0] == pytest.approx(3.0)  # 1 + 2, nearest
    with pytest.raises(ConfigError):
        KeypointDepthConfig(goal_maps=0)


def test_post_sample_hook_sees_pixels_and_values() -> None:
    m = DepthMap(_ramp(), stamp=0.0, post=lambda uv, z: z + uv[:, 1])
    assert m.sample(np.array([[2.0, 3.0]]), (8, 6))[0] == pytest.approx(5.0)


def test_depth_of_a_parallel_camera_in_another_grid() -> None:
    K_ir = np.array([[385.0, 0, 320], [0, 385.0, 240], [0, 0, 1]])
    K_c = np.array([[615.0, 0, 320], [0, 615.0, 240], [0, 0, 1]])
    z = np.full((480, 640), 1.0, np.float32)
    z[:, 320:] = 2.0
    z[:, :10] = np.nan
    out = depth_to_other_camera(z, K_ir, K_c, (640, 480))
    assert out[240, 300] == 1.0 and out[240, 340] == 2.0 and not np.isnan(out).any()  # colour FOV inside IR
    shifted = depth_to_other_camera(z, K_ir, K_c, (640, 480), np.array([0.015, 0.0, 0.01]))
    assert shifted[240, 100] == pytest.approx(1.01) and shifted[240, 600] == pytest.approx(2.01)
