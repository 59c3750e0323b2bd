"""The safety filter under any input (hypothesis): the output is finite and within the limits, or a stop.

Also the issue #17 reproductions that live in the core: a finite but huge command must not reach a backend
as NaN (repro 1), stamps from the future are refused (repro 3), and the backends refuse a non-finite
speedL themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation
from vs_common.core.errors import RobotFault, SafetyViolation
from vs_common.core.se3 import make_pose
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig
from vs_robot_bridge.core.safety import (
    SafetyFilter,
    clamp_acceleration,
    clamp_speed,
    limit_to_workspace,
    pose_problem,
    safe_norm,
)
from vs_robot_bridge.core.sim_backend import SimBackend
from vs_robot_bridge.core.types import TwistCommand

CAM, TCP, BASE = "camera_color_optical_frame", "tool0", "base"
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
HUGE = st.sampled_from([1.79e308, -1.79e308, 1e308, -1e308, 1e200, 3e38, 1e6, 1e4 + 1, 1e4, -1e4])
ANY_FLOAT = st.one_of(FLOATS, HUGE, st.floats(-1.0, 1.0))
TWISTS = st.lists(ANY_FLOAT, min_size=6, max_size=6)
FRAMES = st.one_of(st.sampled_from([CAM, TCP, BASE]), st.text(max_size=8))
QUATS = st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)


def _pose(quat, xyz) -> np.ndarray:
    return make_pose(Rotation.from_quat(np.asarray(quat) / np.linalg.norm(quat)).as_matrix(), np.asarray(xyz))


def _within(cfg: SafetyConfig, v: np.ndarray) -> bool:
    tol = 1.0 + 1e-9
    return bool(np.all(np.isfinite(v)) and np.linalg.norm(v[:3]) <= cfg.max_linear_speed * tol
                and np.linalg.norm(v[3:]) <= cfg.max_angular_speed * tol)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(twists=st.lists(TWISTS, min_size=1, max_size=6), frames=st.lists(FRAMES, min_size=6, max_size=6),
       ages=st.lists(st.one_of(st.floats(-0.05, 0.15), FLOATS), min_size=6, max_size=6), quat=QUATS,
       xyz=st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3), dts=st.lists(st.floats(0.0, 0.2), min_size=6,
                                                                                 max_size=6))
def test_filter_output_finite_and_within_limits(twists, frames, ages, quat, xyz, dts) -> None:
    cfg = SafetyConfig(hand_eye_xyz=(0.03, -0.02, 0.05), hand_eye_quat_xyzw=(0.0, 0.0, 0.38268343, 0.92387953))
    f = SafetyFilter(cfg)
    pose = _pose(quat, xyz)
    t = 100.0
    for i, twist in enumerate(twists):
        t += dts[i]
        try:
            f.submit(TwistCommand(np.asarray(twist), frames[i], t - ages[i], t), t)
        except SafetyViolation:
            pass
        out = f.step(t, pose)
        assert _within(cfg, out.v_b), (twist, out)
        if out.stop:
            assert not np.any(out.v_b)


@settings(max_examples=200, deadline=None)
@given(twist=TWISTS)
def test_invalid_or_absurd_command_is_refused_and_gives_zero(twist) -> None:
    cfg = SafetyConfig()
    f = SafetyFilter(cfg)
    v = np.asarray(twist)
    valid = bool(np.all(np.isfinite(v)) and np.max(np.abs(v)) <= cfg.absurd_command_limit)
    try:
        f.submit(TwistCommand(v, CAM, 10.0, 10.0), 10.0)
        accepted = True
    except SafetyViolation as err:
        accepted = False
        assert "non-finite" in str(err) or "absurd" in str(err)
    assert accepted == valid
    out = f.step(10.0, make_pose(t=np.array([0.0, -0.4, 0.4])))
    assert _within(cfg, out.v_b)
    if not valid:
        assert out.stop and not np.any(out.v_b)


@settings(max_examples=300, deadline=None)
@given(v=st.lists(ANY_FLOAT, min_size=6, max_size=6), prev=st.lists(st.floats(-0.1, 0.1), min_size=6, max_size=6),
       dt=st.floats(0.0, 1.0))
def test_clamps_never_produce_non_finite(v, prev, dt) -> None:
    v = np.asarray(v)
    out = clamp_speed(v, 0.1, 0.5)
    assert np.all(np.isfinite(out))
    assert np.linalg.norm(out[:3]) <= 0.1 * (1 + 1e-9) and np.linalg.norm(out[3:]) <= 0.5 * (1 + 1e-9)
    acc = clamp_acceleration(v, np.asarray(prev), dt, 0.5, 2.0)
    assert np.all(np.isfinite(acc))
    if np.all(np.isfinite(v)):
        n = safe_norm(v)  # no intermediate overflow: exact up to the float range
        assert n >= 0 and (np.isfinite(n) or np.max(np.abs(v)) > 1e154)


@settings(max_examples=200, deadline=None)
@given(v=st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6), p=st.lists(st.floats(-2, 2), min_size=3, max_size=3))
def test_workspace_limit_never_increases_speed(v, p) -> None:
    v = np.asarray(v)
    out, _ = limit_to_workspace(v, np.asarray(p), np.array([-0.7, -0.7, 0.05]), np.array([0.7, 0.7, 0.9]), 0.05, 0.5)
    assert np.all(np.abs(out) <= np.abs(v))


@pytest.mark.parametrize("tilt", [None, [0.3, 0.9, 0.1, 0.2], [0.2, 0.1, 0.3, 0.9]])
@pytest.mark.parametrize("frame", [CAM, TCP, BASE])
@pytest.mark.parametrize("huge", [1.79e308, 1.7e308, 1e200])
def test_repro1_huge_finite_command_never_reaches_backend_as_nan(frame, huge, tilt) -> None:
    """Issue #17 repro 1: linear.x = +huge, angular.y = -huge gave speedL([nan, ...]) (camera frame, start pose)."""
    clock = [0.0]
    sim = SimBackend(clock=lambda: clock[0])
    sent = []
    sim.on_command = lambda what, v: sent.append((what, np.array(v)))
    bridge = RobotBridge(BridgeConfig(), SafetyConfig(), sim)
    bridge.configure()
    bridge.activate()
    if tilt is not None:
        sim.base_T_tcp = _pose(tilt, [0.1, -0.4, 0.4])
    for i in range(30):
        clock[0] = 0.008 * i
        reason = bridge.submit(np.array([huge, 0, 0, 0, -huge, 0]), frame, clock[0], clock[0])
        assert "absurd" in reason
        bridge.tick(clock[0])
    assert all(np.all(np.isfinite(v)) for _, v in sent)
    assert not any(what == "speedL" and np.any(v) for what, v in sent)
    assert np.all(np.isfinite(sim.base_T_tcp))
    status = bridge.status()
    assert status.rejected == 30 and np.all(np.isfinite(status.last_command_b))


def test_frame_change_overflow_is_an_invalid_output_not_nan() -> None:
    """Defence in depth: even a command that slipped past submit() cannot make the output non-finite."""
    cfg = SafetyConfig()
    f = SafetyFilter(cfg)
    f.submit(TwistCommand(np.array([0.01, 0, 0, 0, 0, 0]), CAM, 10.0, 10.0), 10.0)
    f._command = TwistCommand(np.array([1.79e308, 0, 0, 0, -1.79e308, 0]), CAM, 10.0, 10.0)  # bypass submit
    out = f.step(10.0, _pose([0.3, 0.9, 0.1, 0.2], [0.1, -0.4, 0.4]))
    assert out.stop and not np.any(out.v_b) and "invalid" in out.reason
    assert f.invalid_outputs == 1


@pytest.mark.parametrize("ahead_s", [0.05, 1.0, 3600.0, 2**31 - 1 - 10.0])
def test_repro3_future_stamps_refused(ahead_s) -> None:
    """Issue #17 repro 3: commands stamped in the future (up to sec = 2^31 - 1) were executed."""
    f = SafetyFilter(SafetyConfig())
    with pytest.raises(SafetyViolation, match="future"):
        f.submit(TwistCommand(np.array([0.01, 0, 0, 0, 0, 0]), CAM, 10.0 + ahead_s, 10.0), 10.0)
    # within the clock-skew tolerance it is accepted
    f.submit(TwistCommand(np.array([0.01, 0, 0, 0, 0, 0]), CAM, 10.01, 10.0), 10.0)


@pytest.mark.parametrize("pose", [None, np.full((4, 4), np.nan), np.eye(4) * 2.0, make_pose(t=np.array([1e9, 0, 0]))])
def test_unusable_pose_stops(pose) -> None:
    f = SafetyFilter(SafetyConfig())
    f.submit(TwistCommand(np.array([0.01, 0, 0, 0, 0, 0]), BASE, 10.0, 10.0), 10.0)
    assert pose_problem(pose)
    out = f.step(10.0, pose)
    assert out.stop and not np.any(out.v_b)


@pytest.mark.parametrize("target", [[np.nan, 0, 0, 0, 0, 0], [0, 0, np.inf, 0, 0, 0], [0.0] * 5])
def test_sim_backend_refuses_non_finite_speedl(target) -> None:
    sim = SimBackend()
    sim.open_receive()
    sim.open_control()
    with pytest.raises(RobotFault, match="refused"):
        sim.send_twist(np.asarray(target), 0.5)
    with pytest.raises(RobotFault, match="refused"):
        sim.send_twist(np.zeros(6), float("nan"))
    assert np.all(np.isfinite(sim.read_state().base_T_tcp))
