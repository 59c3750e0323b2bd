"""Message ↔ array conversions of the robot bridge (the one module here that touches messages)."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped, Twist, TwistStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from vs_common.core.errors import InputError
from vs_common.ros.image import stamp_to_sec

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


def twist_stamped_to_array(msg: TwistStamped) -> tuple[np.ndarray, str, float]:
    """TwistStamped → ((6,) (vx, vy, vz, wx, wy, wz), frame_id, stamp in s). Values are not checked here."""
    t = msg.twist
    v = np.array([t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z], dtype=np.float64)
    return v, msg.header.frame_id, stamp_to_sec(msg.header.stamp)


def array_to_twist(v: np.ndarray) -> Twist:
    """(6,) twist → geometry_msgs/Twist."""
    v = np.asarray(v, dtype=np.float64).reshape(6)
    msg = Twist()
    msg.linear.x, msg.linear.y, msg.linear.z = (float(x) for x in v[:3])
    msg.angular.x, msg.angular.y, msg.angular.z = (float(x) for x in v[3:])
    return msg


def matrix_to_pose_stamped(T: np.ndarray, stamp: Time, frame_id: str) -> PoseStamped:
    """(4, 4) transform → PoseStamped (quaternion x, y, z, w)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"pose must be a finite 4x4 matrix, got shape {T.shape}")
    try:
        q = Rotation.from_matrix(T[:3, :3]).as_quat()
    except ValueError as err:  # a singular "rotation"
        raise InputError(f"pose rotation is not a rotation matrix: {err}") from err
    if not np.all(np.isfinite(q)):
        raise InputError("pose rotation is not a rotation matrix")
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(x) for x in T[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(x) for x in q)
    return PoseStamped(header=Header(stamp=stamp, frame_id=frame_id), pose=pose)


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
    }
    diag = DiagnosticStatus(level=level, name=name, message=message, hardware_id=status.backend,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[diag])
