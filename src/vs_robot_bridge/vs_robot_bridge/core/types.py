"""Plain data exchanged between the bridge's core parts (no ROS types).

Frames: ``base`` is the robot controller's Base frame (ur_rtde ``speedL`` / ``getActualTCPPose``; ROS
``base`` = ``base_link`` rotated π about z). A base-frame TCP twist ``v_b = (vx, vy, vz, wx, wy, wz)``
is the linear velocity of the TCP point and the angular velocity, both expressed in ``base`` (m/s, rad/s),
exactly what ``speedL`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class BridgeState(StrEnum):
    """What the bridge is doing; published verbatim in ``RobotStatus.state``."""

    UNCONFIGURED = "UNCONFIGURED"  # no backend link
    INACTIVE = "INACTIVE"  # receive side open, no control
    IDLE = "IDLE"  # active, no valid command: velocity held at zero
    MOVING = "MOVING"  # active, forwarding a filtered twist
    FAULT = "FAULT"  # latched fault: zero velocity until an explicit reset


@dataclass(frozen=True)
class TwistCommand:
    """One incoming velocity command.

    Attributes:
        twist: (6,) (vx, vy, vz, wx, wy, wz) in ``frame_id`` (m/s, rad/s), about that frame's origin.
        frame_id: frame the twist is expressed in (must be one the safety filter knows).
        stamp_s: header stamp (s, on the node clock) — staleness is judged from it.
        received_s: when the bridge received it (s, node clock) — silence is judged from it.
    """

    twist: np.ndarray
    frame_id: str
    stamp_s: float
    received_s: float


@dataclass
class RobotState:
    """A snapshot of the robot read by a backend.

    Attributes:
        connected: the backend's link (both interfaces that are open) is up.
        base_T_tcp: (4, 4) TCP pose in the base frame, or None when unknown.
        tcp_twist_b: (6,) measured TCP twist in the base frame (m/s, rad/s).
        joint_names / joint_positions / joint_velocities: (J,) when the backend reports joints.
        robot_mode: UR robot mode (−1 NO_CONTROLLER … 7 RUNNING); 7 for the simulator.
        safety_mode: UR safety mode (1 NORMAL, 3 PROTECTIVE_STOP, 6/7 emergency stop, …).
        protective_stop / emergency_stop: the robot reports these stops.
        program_running: the on-robot control script runs (ur_rtde); a stopped script takes no commands.
        runtime_state: UR runtime state (2 PLAYING).
        watchdog_ok: False once the on-robot watchdog has tripped (or is known to have).
        fault_text: backend's explanation when something is wrong, else "".
    """

    connected: bool = False
    base_T_tcp: np.ndarray | None = None
    tcp_twist_b: np.ndarray = field(default_factory=lambda: np.zeros(6))
    joint_names: tuple[str, ...] = ()
    joint_positions: np.ndarray | None = None
    joint_velocities: np.ndarray | None = None
    robot_mode: int = -1
    safety_mode: int = 0
    protective_stop: bool = False
    emergency_stop: bool = False
    program_running: bool = False
    runtime_state: int = 0
    watchdog_ok: bool = True
    fault_text: str = ""


# UR enums used for fault detection (ur_dashboard_msgs SafetyMode / RobotMode / RuntimeState).
SAFETY_NORMAL = 1
SAFETY_REDUCED = 2
SAFETY_PROTECTIVE_STOP = 3
SAFETY_SYSTEM_EMERGENCY_STOP = 6
SAFETY_ROBOT_EMERGENCY_STOP = 7
ROBOT_MODE_RUNNING = 7
RUNTIME_PLAYING = 2
