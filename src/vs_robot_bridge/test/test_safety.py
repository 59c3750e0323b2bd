"""Unit tests of the safety filter: validity, frames (lever arm), clamps, workspace, silence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vs_common.core.errors import ConfigError, SafetyViolation
from vs_common.core.se3 import exp_se3, integrate_twist, make_pose
from vs_robot_bridge.core.config import SafetyConfig
from vs_robot_bridge.core.safety import (
    SafetyFilter,
    camera_twist_to_base,
    clamp_acceleration,
    clamp_speed,
    hand_eye_transform,
    limit_to_workspace,
)
from vs_robot_bridge.core.types import TwistCommand

CAM = "camera_color_optical_frame"
# A hand-eye transform with both a rotation and a real lever arm, so sign errors show.
HE_Q = tuple(Rotation.from_euler("xyz", [10.0, -20.0, 90.0], degrees=True).as_quat())
HE_T = (0.03, -0.08, 0.12)


def _cfg(**kw) -> SafetyConfig:
    base = dict(hand_eye_xyz=HE_T, hand_eye_quat_xyzw=HE_Q)
    base.update(kw)
    return SafetyConfig(**base)


def _pose() -> np.ndarray:
    return make_pose(Rotation.from_euler("xyz", [170.0, 5.0, 30.0], degrees=True).as_matrix(),
                     np.array([0.1, -0.4, 0.4]))


def _cmd(twist, frame=CAM, stamp=10.0, received=10.0) -> TwistCommand:
    return TwistCommand(np.asarray(twist, float), frame, stamp, received)


def test_lever_arm_matches_rigid_body_motion():
    """Moving the TCP by the converted twist moves the camera exactly as the camera twist says."""
    cfg = _cfg()
    tcp_T_cam = hand_eye_transform(cfg)
    base_T_tcp = _pose()
    v_c = np.array([0.02, -0.01, 0.03, 0.2, -0.3, 0.4])
    v_b = camera_twist_to_base(v_c, base_T_tcp, tcp_T_cam)
    dt = 1e-4
    # speedL semantics: the TCP point moves with v_b[:3], the body rotates with v_b[3:] (base axes).
    R = base_T_tcp[:3, :3]
    tcp_next = integrate_twist(base_T_tcp, np.concatenate([R.T @ v_b[:3], R.T @ v_b[3:]]), dt)
    cam_expected = base_T_tcp @ tcp_T_cam @ exp_se3(v_c * dt)
    np.testing.assert_allclose(tcp_next @ tcp_T_cam, cam_expected, atol=1e-9)


def test_pure_rotation_about_camera_moves_tcp():
    """A camera rotation about its own origin must translate a TCP that sits away from it."""
    cfg = SafetyConfig(hand_eye_xyz=(0.0, 0.0, 0.1))
    base_T_tcp = np.eye(4)
    v_b = camera_twist_to_base(np.array([0, 0, 0, 1.0, 0, 0]), base_T_tcp, hand_eye_transform(cfg))
    # ω = x̂, TCP at −0.1 ẑ from the camera: v = ω × r = x̂ × (−0.1 ẑ) = +0.1 ŷ
    np.testing.assert_allclose(v_b, [0, 0.1, 0, 1.0, 0, 0], atol=1e-12)


def test_frames_base_tcp_camera_and_unknown():
    f = SafetyFilter(_cfg(max_linear_speed=1.0, max_angular_speed=3.0))
    pose = _pose()
    v = np.array([0.01, 0.02, 0.03, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(f.to_base(_cmd(v, "base"), pose), v)
    np.testing.assert_allclose(f.to_base(_cmd(v, "tool0"), pose)[:3], pose[:3, :3] @ v[:3])
    with pytest.raises(SafetyViolation, match="unknown frame"):
        f.submit(_cmd(v, "map"), 10.0)
    with pytest.raises(SafetyViolation, match="unknown frame"):
        f.submit(_cmd(v, ""), 10.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rejected_and_previous_dropped(bad):
    f = SafetyFilter(_cfg())
    f.submit(_cmd([0.01, 0, 0, 0, 0, 0]), 10.0)
    twist = [0.01, 0, 0, 0, bad, 0]
    with pytest.raises(SafetyViolation, match="non-finite"):
        f.submit(_cmd(twist), 10.01)
    out = f.step(10.01, _pose())
    assert out.stop and not np.any(out.v_b)


def test_stale_stamp_rejected():
    f = SafetyFilter(_cfg())
    with pytest.raises(SafetyViolation, match="stale"):
        f.submit(_cmd([0.01, 0, 0, 0, 0, 0], stamp=9.85, received=10.0), 10.0)
    # zero stamp (never set) is stale too, as in moveit_servo
    with pytest.raises(SafetyViolation, match="stale"):
        f.submit(_cmd([0.01, 0, 0, 0, 0, 0], stamp=0.0, received=10.0), 10.0)
    f.submit(_cmd([0.01, 0, 0, 0, 0, 0], stamp=9.95, received=10.0), 10.0)


def test_huge_twist_clamped_keeping_direction():
    cfg = _cfg(max_linear_accel=5.0, max_angular_accel=20.0)
    f = SafetyFilter(cfg)
    pose = make_pose(t=np.array([0.0, -0.4, 0.4]))
    t = 10.0
    for _ in range(200):  # let the acceleration limit settle
        f.submit(_cmd([1e3, 2e3, 0, 0, 0, 5e2], frame="base", stamp=t, received=t), t)
        out = f.step(t, pose)
        t += 0.008
    assert np.linalg.norm(out.v_b[:3]) == pytest.approx(cfg.max_linear_speed)
    # one common factor: the whole twist keeps its direction (screw axis)
    np.testing.assert_allclose(out.v_b / np.linalg.norm(out.v_b), np.array([1e3, 2e3, 0, 0, 0, 5e2]) / np.linalg.norm(
        [1e3, 2e3, 0, 0, 0, 5e2]), rtol=1e-9)
    f.submit(_cmd([0, 0, 0, 0, 0, 1e3], frame="base", stamp=t, received=t), t)
    for _ in range(400):
        f.submit(_cmd([0, 0, 0, 0, 0, 1e3], frame="base", stamp=t, received=t), t)
        out = f.step(t, pose)
        t += 0.008
    assert np.linalg.norm(out.v_b[3:]) == pytest.approx(cfg.max_angular_speed)
    assert "speed clamped" in out.reason


def test_clamp_functions():
    v = clamp_speed(np.array([3.0, 4.0, 0, 0, 0, 2.0]), 0.1, 0.5)
    np.testing.assert_allclose(v, [0.06, 0.08, 0, 0, 0, 0.04])
    v = clamp_acceleration(np.array([0.1, 0, 0, 0, 0, 0]), np.zeros(6), 0.01, 0.5, 2.0)
    np.testing.assert_allclose(v, [0.005, 0, 0, 0, 0, 0])


def test_acceleration_limited_per_tick():
    cfg = _cfg(max_linear_accel=0.5)
    f = SafetyFilter(cfg)
    pose = make_pose(t=np.array([0.0, -0.4, 0.4]))
    f.step(9.99, pose)  # a tick with no command primes the time base
    f.submit(_cmd([0.1, 0, 0, 0, 0, 0], frame="base"), 10.0)
    out = f.step(10.0, pose)
    assert np.linalg.norm(out.v_b[:3]) <= 0.5 * 0.01 + 1e-12
    assert "acceleration limited" in out.reason


def test_workspace_zeroes_outward_components_only():
    lo, hi = np.array([-0.5, -0.5, 0.1]), np.array([0.5, 0.5, 0.8])
    v = np.array([0.1, -0.1, -0.1, 0, 0, 0.2])
    out, zeroed = limit_to_workspace(v, np.array([0.499, 0.0, 0.101]), lo, hi, 0.05)
    np.testing.assert_allclose(out, [0.0, -0.1, 0.0, 0, 0, 0.2])
    assert zeroed == ["x", "z"]
    # outside the box, moving back in is allowed
    out, zeroed = limit_to_workspace(np.array([-0.1, 0, 0, 0, 0, 0]), np.array([0.6, 0, 0.5]), lo, hi, 0.05)
    assert out[0] == -0.1 and not zeroed
    # the stopping distance counts: 0.1 m/s at 0.5 m/s² needs 1 cm
    assert limit_to_workspace(np.array([0, 0, 0.1, 0, 0, 0]), np.array([0, 0, 0.787]), lo, hi, 0.05)[1] == []
    assert limit_to_workspace(np.array([0, 0, 0.1, 0, 0, 0]), np.array([0, 0, 0.787]), lo, hi, 0.05, 0.5)[1] == ["z"]


def test_silence_goes_to_zero():
    cfg = _cfg()
    f = SafetyFilter(cfg)
    pose = make_pose(t=np.array([0.0, -0.4, 0.4]))
    f.submit(_cmd([0.05, 0, 0, 0, 0, 0], frame="base"), 10.0)
    assert not f.step(10.0, pose).stop
    assert not f.step(10.0 + cfg.command_timeout_s * 0.9, pose).stop
    out = f.step(10.0 + cfg.command_timeout_s + 1e-3, pose)
    assert out.stop and "timeout" in out.reason and not np.any(out.v_b)
    # and it does not come back by itself
    assert f.step(10.5, pose).stop


def test_unknown_pose_stops():
    f = SafetyFilter(_cfg())
    f.submit(_cmd([0.05, 0, 0, 0, 0, 0], frame="base"), 10.0)
    assert f.step(10.0, None).stop


def test_config_validation_lists_problem():
    with pytest.raises(ConfigError, match="unit quaternion"):
        SafetyConfig(hand_eye_quat_xyzw=(0.0, 0.0, 0.0, 2.0))
    with pytest.raises(ConfigError, match="workspace_min"):
        SafetyConfig(workspace_min=(0.0, 0.0, 1.0), workspace_max=(1.0, 1.0, 0.5))
    with pytest.raises(ConfigError, match="max_linear_speed"):
        SafetyConfig(max_linear_speed=-1.0)
