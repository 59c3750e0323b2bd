"""The ur_rtde backend against stand-ins of RTDEControlInterface / RTDEReceiveInterface.

The fakes implement ur_rtde 1.6's Python API at its boundary (same method names, arguments and return
conventions: speedL returns False when the program is stopped or the robot is stopped; the script stops
when the watchdog is not kicked), record every call, and let tests inject disconnects, protective stops
and watchdog trips.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from vs_common.core.errors import NotReadyError, RobotFault
from vs_robot_bridge.core import ur_rtde_backend
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig, UrRtdeConfig
from vs_robot_bridge.core.types import BridgeState
from vs_robot_bridge.core.ur_rtde_backend import UrRtdeBackend, pose_matrix_to_vector, pose_vector_to_matrix

DT = 0.008


class FakeArm:
    """The controller both interfaces talk to."""

    def __init__(self) -> None:
        self.t = 50.0
        self.link_up = True
        self.protective = False
        self.estop = False
        self.program_running = False
        self.watchdog_hz: float | None = None
        self.last_kick = self.t
        self.pose = [0.1, -0.4, 0.4, 3.14159, 0.0, 0.0]
        self.calls: list[tuple] = []

    def check_watchdog(self) -> None:
        if self.program_running and self.watchdog_hz and self.t - self.last_kick > 1.0 / self.watchdog_hz:
            self.program_running = False  # rtde_set_watchdog(..., "stop")


class FakeControl:
    def __init__(self, arm: FakeArm, host: str, frequency: float, flags: int) -> None:
        if not arm.link_up:
            raise RuntimeError("One of the RTDE input registers are already in use!")  # any ctor failure
        self.arm = arm
        self.connected = True
        arm.program_running = not (arm.protective or arm.estop)
        arm.calls.append(("RTDEControlInterface", host, frequency, flags))

    def _up(self) -> bool:
        self.arm.check_watchdog()
        return self.connected and self.arm.link_up

    def setWatchdog(self, min_frequency: float = 10.0) -> bool:  # noqa: N802 — ur_rtde's names
        self.arm.calls.append(("setWatchdog", min_frequency))
        self.arm.watchdog_hz = min_frequency
        self.arm.last_kick = self.arm.t
        return True

    def kickWatchdog(self) -> bool:  # noqa: N802
        if not self._up():
            return False
        self.arm.last_kick = self.arm.t
        return True

    def speedL(self, xd: list[float], acceleration: float = 0.25, time: float = 0.0) -> bool:  # noqa: N802
        if not self._up():
            raise RuntimeError("RTDE control script is not running!")
        self.arm.calls.append(("speedL", tuple(xd), acceleration, time))
        return self.arm.program_running and not (self.arm.protective or self.arm.estop)

    def speedStop(self, a: float = 10.0) -> bool:  # noqa: N802
        self.arm.calls.append(("speedStop", a))
        return True

    def stopScript(self) -> None:  # noqa: N802
        self.arm.calls.append(("stopScript",))
        self.arm.program_running = False

    def disconnect(self) -> None:
        self.arm.calls.append(("disconnect_control",))
        self.connected = False

    def isConnected(self) -> bool:  # noqa: N802
        return self._up()

    def isProgramRunning(self) -> bool:  # noqa: N802
        self.arm.check_watchdog()
        return self.arm.program_running

    def reconnect(self) -> bool:
        self.arm.calls.append(("reconnect_control",))
        if not self.arm.link_up:
            return False
        self.connected = True
        return True

    def reuploadScript(self) -> bool:  # noqa: N802
        self.arm.calls.append(("reuploadScript",))
        self.arm.program_running = True
        self.arm.last_kick = self.arm.t
        return True


class FakeReceive:
    def __init__(self, arm: FakeArm, host: str, frequency: float) -> None:
        if not arm.link_up:
            raise RuntimeError("Failed to connect")
        self.arm = arm
        self.connected = True

    def isConnected(self) -> bool:  # noqa: N802
        return self.connected and self.arm.link_up

    def reconnect(self) -> bool:
        self.arm.calls.append(("reconnect_receive",))
        return self.arm.link_up

    def disconnect(self) -> None:
        self.connected = False

    def getActualTCPPose(self) -> list[float]:  # noqa: N802
        return list(self.arm.pose)

    def getActualTCPSpeed(self) -> list[float]:  # noqa: N802
        return [0.0] * 6

    def getActualQ(self) -> list[float]:  # noqa: N802
        return [0.0, -1.57, 1.57, -1.57, -1.57, 0.0]

    def getActualQd(self) -> list[float]:  # noqa: N802
        return [0.0] * 6

    def getRobotMode(self) -> int:  # noqa: N802
        return 7

    def getSafetyMode(self) -> int:  # noqa: N802
        return 7 if self.arm.estop else 3 if self.arm.protective else 1

    def isProtectiveStopped(self) -> bool:  # noqa: N802
        return self.arm.protective

    def isEmergencyStopped(self) -> bool:  # noqa: N802
        return self.arm.estop

    def getRuntimeState(self) -> int:  # noqa: N802
        self.arm.check_watchdog()
        return 2 if self.arm.program_running else 1


def _bridge() -> tuple[RobotBridge, FakeArm]:
    arm = FakeArm()
    backend = UrRtdeBackend(UrRtdeConfig(robot_ip="10.0.0.2"),
                            control_factory=lambda h, f, fl: FakeControl(arm, h, f, fl),
                            receive_factory=lambda h, f: FakeReceive(arm, h, f))
    bridge = RobotBridge(BridgeConfig(backend="ur_rtde"), SafetyConfig(), backend)
    bridge.configure()
    bridge.activate()
    return bridge, arm


def _run(bridge: RobotBridge, arm: FakeArm, seconds: float, twist=None, frame: str = "base") -> None:
    for _ in range(int(round(seconds / DT))):
        arm.t += DT
        if twist is not None:
            bridge.submit(np.asarray(twist, float), frame, arm.t, arm.t)
        bridge.tick(arm.t)


def _names(arm: FakeArm) -> list[str]:
    return [c[0] for c in arm.calls]


def test_pose_vector_roundtrip():
    v = [0.1, -0.2, 0.3, 0.5, -1.0, 2.0]
    np.testing.assert_allclose(pose_matrix_to_vector(pose_vector_to_matrix(v)), v, atol=1e-12)


def test_activate_arms_watchdog_and_streams_speedl_in_base():
    bridge, arm = _bridge()
    assert ("setWatchdog", 10.0) in arm.calls
    _run(bridge, arm, 0.5, [0.05, -0.02, 0.01, 0.0, 0.0, 0.1])
    speedl = [c for c in arm.calls if c[0] == "speedL"]
    assert len(speedl) > 50
    _, xd, acc, t = speedl[-1]
    np.testing.assert_allclose(xd, [0.05, -0.02, 0.01, 0.0, 0.0, 0.1], atol=1e-9)
    assert acc == SafetyConfig().max_linear_accel and t == 0.0
    assert bridge.status().robot.joint_positions is not None


def test_silence_sends_one_gentle_speedstop():
    bridge, arm = _bridge()
    _run(bridge, arm, 0.3, [0.05, 0, 0, 0, 0, 0])
    _run(bridge, arm, 0.5)
    stops = [c for c in arm.calls if c[0] == "speedStop"]
    assert stops == [("speedStop", 1.0)]  # once, with the gentle deceleration
    assert bridge.state == BridgeState.IDLE


def test_huge_twist_clamped_before_speedl():
    bridge, arm = _bridge()
    _run(bridge, arm, 1.0, [50.0, 0, 0, 0, 0, 40.0])
    xd = np.array([c for c in arm.calls if c[0] == "speedL"][-1][1])
    assert np.linalg.norm(xd[:3]) <= 0.1 + 1e-9 and np.linalg.norm(xd[3:]) <= 0.5 + 1e-9


def test_protective_stop_latches_and_reset_reuploads_script():
    bridge, arm = _bridge()
    _run(bridge, arm, 0.2, [0.05, 0, 0, 0, 0, 0])
    arm.protective = True
    arm.program_running = False
    _run(bridge, arm, 0.2, [0.05, 0, 0, 0, 0, 0])
    assert bridge.faulted and "protective" in bridge.status().fault_text
    n = _names(arm).count("speedL")
    _run(bridge, arm, 0.2, [0.05, 0, 0, 0, 0, 0])
    assert _names(arm).count("speedL") == n  # nothing sent while latched
    assert not bridge.reset_fault(arm.t)[0]
    arm.protective = False  # a human unlocked it on the pendant
    ok, msg = bridge.reset_fault(arm.t)
    assert ok, msg
    assert _names(arm)[-1] == "setWatchdog" and "reuploadScript" in _names(arm)
    _run(bridge, arm, 0.1, [0.05, 0, 0, 0, 0, 0])
    assert bridge.state == BridgeState.MOVING


def test_speedl_refusal_latches():
    bridge, arm = _bridge()
    _run(bridge, arm, 0.1, [0.05, 0, 0, 0, 0, 0])
    arm.estop = True  # reported by speedL first (returns False), by the receive side next tick
    _run(bridge, arm, DT, [0.05, 0, 0, 0, 0, 0])
    assert bridge.faulted
    assert _names(arm)[-1] == "speedStop"


def test_watchdog_trip_detected():
    bridge, arm = _bridge()
    _run(bridge, arm, 0.1, [0.05, 0, 0, 0, 0, 0])
    arm.t += 0.25  # loop stalled past the 10 Hz watchdog
    bridge.tick(arm.t)
    assert bridge.faulted and "not running" in bridge.status().fault_text


def test_disconnect_reconnect_backoff_never_resumes():
    bridge, arm = _bridge()
    _run(bridge, arm, 0.1, [0.05, 0, 0, 0, 0, 0])
    arm.link_up = False
    _run(bridge, arm, 4.0, [0.05, 0, 0, 0, 0, 0])
    assert bridge.faulted and "disconnected" in bridge.status().fault_text
    attempts = _names(arm).count("reconnect_receive")
    assert 2 <= attempts <= 5  # 0.5, 1, 2 s backoff over 4 s, not every tick
    arm.link_up = True
    n = _names(arm).count("speedL")
    _run(bridge, arm, 8.0, [0.05, 0, 0, 0, 0, 0])
    assert _names(arm).count("speedL") == n and bridge.faulted
    assert bridge.reset_fault(arm.t)[0]
    _run(bridge, arm, 0.1, [0.05, 0, 0, 0, 0, 0])
    assert _names(arm).count("speedL") > n


def test_deactivate_stops_before_disconnect():
    bridge, arm = _bridge()
    _run(bridge, arm, 0.1, [0.05, 0, 0, 0, 0, 0])
    bridge.deactivate()
    tail = _names(arm)[-4:]
    assert tail == ["speedStop", "speedStop", "stopScript", "disconnect_control"]
    bridge.cleanup()


def test_missing_ur_rtde_gives_clear_error(monkeypatch):
    real = importlib.import_module

    def fake_import(name, *a, **kw):
        if name in ("rtde_control", "rtde_receive"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(ur_rtde_backend.importlib, "import_module", fake_import)
    with pytest.raises(NotReadyError, match="pip install ur-rtde"):
        UrRtdeBackend(UrRtdeConfig())


def test_control_open_failure_is_a_fault():
    arm = FakeArm()
    backend = UrRtdeBackend(UrRtdeConfig(), control_factory=lambda h, f, fl: FakeControl(arm, h, f, fl),
                            receive_factory=lambda h, f: FakeReceive(arm, h, f))
    arm.link_up = False
    from vs_common.core.errors import RobotFault
    with pytest.raises(RobotFault, match="receive"):
        backend.open_receive()


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0, 0, 0], [0, 0, 0, -np.inf, 0, 0], [0.0] * 5])
def test_non_finite_speedl_refused_locally(bad):
    """Second check behind the safety filter (issue #17): a NaN target never reaches the controller."""
    bridge, arm = _bridge()
    n = _names(arm).count("speedL")
    with pytest.raises(RobotFault, match="refused locally"):
        bridge.backend.send_twist(np.asarray(bad), 0.5)
    with pytest.raises(RobotFault, match="refused locally"):
        bridge.backend.send_twist(np.zeros(6), float("nan"))
    assert _names(arm).count("speedL") == n
