"""Message ↔ array conversions of the robot bridge (the one module here that touches messages).

Poses and twists are :mod:`vs_common.ros.geometry`'s (shared with the sim camera and the demo).
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from vs_common.ros.geometry import array_to_twist

from vs_msgs.msg import RobotStatus
from vs_robot_bridge.core.bridge import BridgeStatus
from vs_robot_bridge.core.types import BridgeState

# RobotStatus.state is lifecycle-like (see the .msg): IDLE and MOVING are both "active".
_STATE_LABEL = {
    BridgeState.UNCONFIGURED: "unconfigured",
    BridgeState.INACTIVE: "inactive",
    BridgeState.IDLE: "active",
    BridgeState.MOVING: "active",
    BridgeState.FAULT: "fault",
}


def joint_state_msg(names: tuple[str, ...], q: np.ndarray, qd: np.ndarray | None, stamp: Time) -> JointState:
    """Joint names, positions (rad) and velocities (rad/s) → JointState."""
    return JointState(header=Header(stamp=stamp), name=list(names), position=[float(x) for x in q],
                      velocity=[] if qd is None else [float(x) for x in qd])


def status_to_msg(status: BridgeStatus, stamp: Time, frame_id: str) -> RobotStatus:
    """Bridge status → vs_msgs/RobotStatus (``last_command`` is the base-frame twist last sent)."""
    r = status.robot
    age = status.command_age_s
    return RobotStatus(
        header=Header(stamp=stamp, frame_id=frame_id), backend=status.backend, state=_STATE_LABEL[status.state],
        connected=r.connected, robot_mode=int(r.robot_mode), safety_mode=int(r.safety_mode),
        protective_stop=r.protective_stop, emergency_stop=r.emergency_stop, fault=status.fault,
        fault_text=status.fault_text, watchdog_ok=r.watchdog_ok,
        command_age_s=float(age) if math.isfinite(age) else float("nan"),
        last_command=array_to_twist(status.last_command_b),
        last_command_note=status.last_rejection or status.note)


def status_to_diagnostics(status: BridgeStatus, name: str, stamp: Time) -> DiagnosticArray:
    """Bridge status → /diagnostics (ERROR on a fault or lost link, WARN when rejecting commands)."""
    r = status.robot
    if status.fault or (status.state != BridgeState.UNCONFIGURED and not r.connected):
        level, message = DiagnosticStatus.ERROR, status.fault_text or "robot not connected"
    elif status.note and status.state == BridgeState.MOVING:
        level, message = DiagnosticStatus.WARN, status.note
    else:
        level, message = DiagnosticStatus.OK, status.state.value.lower()
    values = {
        "backend": status.backend, "state": status.state.value, "connected": r.connected,
        "robot_mode": r.robot_mode, "safety_mode": r.safety_mode, "protective_stop": r.protective_stop,
        "emergency_stop": r.emergency_stop, "program_running": r.program_running, "watchdog_ok": r.watchdog_ok,
        "command_age_s": f"{status.command_age_s:.3f}", "rejected_commands": status.rejected,
        "last_rejection": status.last_rejection, "invalid_outputs": status.invalid_outputs,
        **status.latency,  # image stamp → bridge / robot, min / median / p95 (core.latency)
    }
    diag = DiagnosticStatus(level=level, name=name, message=message, hardware_id=status.backend,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[diag])
