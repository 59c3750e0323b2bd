"""Fault injection against the simulated backend, through the ROS-free bridge loop."""

from __future__ import annotations

import numpy as np
import pytest
from vs_common.core.errors import RobotFault
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig, SimBackendConfig
from vs_robot_bridge.core.sim_backend import SimBackend
from vs_robot_bridge.core.types import BridgeState

DT = 0.008  # 125 Hz
CAM = "camera_color_optical_frame"


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _bridge(**safety) -> tuple[RobotBridge, SimBackend, Clock]:
    clock = Clock()
    sim = SimBackend(SimBackendConfig(), clock=clock)
    bridge = RobotBridge(BridgeConfig(), SafetyConfig(**safety), sim)
    bridge.configure()
    bridge.activate()
    return bridge, sim, clock


def _run(bridge: RobotBridge, clock: Clock, seconds: float, twist=None, frame: str = "base") -> list[str]:
    """Stream ``twist`` at 125 Hz (every tick, fresh stamp) or stay silent when None; returns rejections."""
    rejections = []
    for _ in range(int(round(seconds / DT))):
        clock.t += DT
        if twist is not None:
            r = bridge.submit(np.asarray(twist, float), frame, clock.t, clock.t)
            if r:
                rejections.append(r)
        bridge.tick(clock.t)
    return rejections


def test_moves_with_clamped_speed_and_stops_on_silence():
    bridge, sim, clock = _bridge()
    p0 = sim.base_T_tcp[:3, 3].copy()
    _run(bridge, clock, 1.0, [0.5, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.MOVING
    assert np.linalg.norm(sim.read_state().tcp_twist_b[:3]) == pytest.approx(0.10, abs=1e-6)
    assert sim.base_T_tcp[0, 3] - p0[0] > 0.05
    _run(bridge, clock, 0.5)  # silence
    assert bridge.state == BridgeState.IDLE
    assert sim.calls[-1] == "speedStop"
    assert not np.any(sim.read_state().tcp_twist_b)


def test_camera_z_twist_moves_camera_along_its_optical_axis():
    """The URSim check from the notes: a pure camera-z twist moves the camera along its own z in base."""
    bridge, sim, clock = _bridge(hand_eye_xyz=(0.0, 0.05, 0.1))
    tcp_T_cam = bridge.filter.tcp_T_cam
    cam0 = sim.base_T_tcp @ tcp_T_cam
    _run(bridge, clock, 0.6, [0, 0, 0.05, 0, 0, 0], frame=CAM)
    cam1 = sim.base_T_tcp @ tcp_T_cam
    d = cam1[:3, 3] - cam0[:3, 3]
    assert np.dot(d / np.linalg.norm(d), cam0[:3, 2]) > 0.999
    np.testing.assert_allclose(cam1[:3, :3], cam0[:3, :3], atol=1e-9)


def test_rotation_about_camera_keeps_camera_origin_fixed():
    bridge, sim, clock = _bridge(hand_eye_xyz=(0.02, 0.05, 0.1))
    tcp_T_cam = bridge.filter.tcp_T_cam
    cam0 = sim.base_T_tcp @ tcp_T_cam
    _run(bridge, clock, 0.8, [0, 0, 0, 0.0, 0.3, 0.0], frame=CAM)
    cam1 = sim.base_T_tcp @ tcp_T_cam
    assert np.linalg.norm(cam1[:3, 3] - cam0[:3, 3]) < 2e-4
    assert np.linalg.norm(sim.base_T_tcp[:3, 3] - (cam0 @ np.linalg.inv(tcp_T_cam))[:3, 3]) > 0.005


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0, 0, 0], [0, 0, np.inf, 0, 0, 0]])
def test_nan_inf_stop_at_once(bad):
    bridge, sim, clock = _bridge()
    _run(bridge, clock, 0.5, [0.05, 0, 0, 0, 0, 0])
    rejected = _run(bridge, clock, DT, bad)
    assert rejected and "non-finite" in rejected[0]
    assert sim.calls[-1] == "speedStop" and bridge.state == BridgeState.IDLE


def test_stale_and_unknown_frame_rejected():
    bridge, sim, clock = _bridge()
    clock.t += DT
    assert "stale" in bridge.submit(np.array([0.05, 0, 0, 0, 0, 0]), "base", clock.t - 0.2, clock.t)
    assert "unknown frame" in bridge.submit(np.array([0.05, 0, 0, 0, 0, 0]), "world", clock.t, clock.t)
    bridge.tick(clock.t)
    assert "speedL" not in sim.calls and bridge.status().rejected == 2


def test_workspace_exit_prevented():
    bridge, sim, clock = _bridge(workspace_max=(0.7, 0.7, 0.45))
    _run(bridge, clock, 2.0, [0, 0, 0.1, 0, 0, 0])  # straight up, box top at 0.45 m
    z = sim.base_T_tcp[2, 3]
    assert 0.42 < z <= 0.4501
    assert "workspace" in bridge.status().note


@pytest.mark.parametrize("inject", ["inject_protective_stop", "inject_emergency_stop"])
def test_stop_latches_until_explicit_reset(inject):
    bridge, sim, clock = _bridge()
    _run(bridge, clock, 0.3, [0.05, 0, 0, 0, 0, 0])
    getattr(sim, inject)()
    _run(bridge, clock, 0.1, [0.05, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.FAULT and bridge.faulted
    ok, msg = bridge.reset_fault(clock.t)
    assert not ok and "stop" in msg  # still stopped on the pendant
    sim.clear_stops()
    _run(bridge, clock, 0.3, [0.05, 0, 0, 0, 0, 0])  # cause gone, commands keep coming: still latched
    assert bridge.state == BridgeState.FAULT
    n_speedl = sim.calls.count("speedL")
    ok, msg = bridge.reset_fault(clock.t)
    assert ok, msg
    bridge.tick(clock.t + DT)  # no new command yet: the old stream must not resume
    assert sim.calls.count("speedL") == n_speedl
    _run(bridge, clock, 0.1, [0.05, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.MOVING


def test_disconnect_latches_reconnects_with_backoff_and_needs_reset():
    bridge, sim, clock = _bridge()
    attempts = []
    original = sim.reconnect
    sim.reconnect = lambda: attempts.append(clock.t) or original()  # type: ignore[method-assign]
    _run(bridge, clock, 0.2, [0.05, 0, 0, 0, 0, 0])
    sim.inject_disconnect()
    _run(bridge, clock, 3.0)
    assert bridge.state == BridgeState.FAULT and "disconnected" in bridge.status().fault_text
    gaps = np.diff(attempts)
    assert len(attempts) >= 3 and np.all(gaps[1:] >= gaps[:-1] - 1e-9)  # backoff grows
    sim.restore_link()
    _run(bridge, clock, 5.0, [0.05, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.FAULT  # link back, still latched
    assert "link restored" in bridge.status().fault_text
    assert bridge.reset_fault(clock.t)[0]
    _run(bridge, clock, 0.1, [0.05, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.MOVING


def test_watchdog_trip_latches():
    bridge, sim, clock = _bridge()
    _run(bridge, clock, 0.2, [0.05, 0, 0, 0, 0, 0])
    clock.t += 0.3  # the control loop hangs for 300 ms: the on-robot watchdog stops the program
    bridge.tick(clock.t)
    assert bridge.faulted and "watchdog" in bridge.status().fault_text
    assert not np.any(sim.read_state().tcp_twist_b)
    assert bridge.reset_fault(clock.t)[0]
    _run(bridge, clock, 0.1, [0.05, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.MOVING


def test_inactive_bridge_ignores_commands_and_deactivate_stops():
    bridge, sim, clock = _bridge()
    _run(bridge, clock, 0.2, [0.05, 0, 0, 0, 0, 0])
    bridge.deactivate()
    assert sim.calls[-1] == "speedStop" and not sim.control_open
    assert bridge.submit(np.array([0.05, 0, 0, 0, 0, 0]), "base", clock.t, clock.t) == "bridge not active"
    with pytest.raises(RobotFault):
        sim.send_twist(np.zeros(6), 0.5)  # program is stopped once control is closed
    bridge.cleanup()
    assert bridge.state == BridgeState.UNCONFIGURED
