"""Typed, validated configuration of the robot bridge (YAML keys = field names).

One frozen dataclass per component: :class:`SafetyConfig` (the filter every command passes),
:class:`UrRtdeConfig` (the real arm), :class:`SimBackendConfig` (the kinematic stand-in) and
:class:`BridgeConfig` (the loop that ties them together). The defaults are the shipped bridge;
``config/robot_bridge.yaml`` holds what a deployment changes (the hand-eye and the workspace box of its cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError
from vs_common.core.frames import BASE_FRAME, COLOR_OPTICAL_FRAME, TCP_FRAME


def _check_vector(name: str, value: tuple[float, ...], n: int) -> None:
    if len(value) != n or not all(np.isfinite(float(x)) for x in value):
        raise ConfigError(f"{name} must be {n} finite numbers, got {value!r}")


@dataclass(frozen=True)
class SafetyConfig:
    """Limits and frames of the safety filter (SI units; the workspace box is in the base frame)."""

    base_frame: str = describe("Robot base frame: speedL's Base (ROS 'base', = base_link rotated pi about z).",
                               default=BASE_FRAME)
    tcp_frame: str = describe("TCP frame of the robot (UR 'tool0').", default=TCP_FRAME)
    camera_frame: str = describe("Camera frame the servo twists arrive in (REP-103 optical frame).",
                                 default=COLOR_OPTICAL_FRAME)
    hand_eye_xyz: tuple[float, float, float] = describe(
        "Hand-eye translation tcp_T_camera: camera origin in the TCP frame (m). Calibrate it for a real cell (a "
        "wrong lever arm turns camera rotations into TCP translations); the default is a placeholder, the camera "
        "5 cm in front of the flange.", default=(0.0, 0.0, 0.05))
    hand_eye_quat_xyzw: tuple[float, float, float, float] = describe(
        "Hand-eye rotation tcp_T_camera as a unit quaternion (x, y, z, w).", default=(0.0, 0.0, 0.0, 1.0))
    max_command_age_s: float = describe(
        "Reject a command whose header stamp is older than this (s); moveit_servo's incoming_command_timeout.",
        default=0.1)
    max_command_future_s: float = describe(
        "Reject a command whose header stamp is further than this in the future (s): clock skew tolerance.",
        default=0.02)
    command_timeout_s: float = describe(
        "Command silence (s since the last valid command arrived) after which the bridge stops the robot.",
        default=0.08)
    max_linear_speed: float = describe("Clamp on the TCP linear speed norm (m/s).", default=0.10)
    max_angular_speed: float = describe("Clamp on the angular speed norm (rad/s).", default=0.5)
    max_linear_accel: float = describe("Clamp on the TCP linear acceleration norm (m/s^2); also speedL's a.",
                                       default=0.5)
    max_angular_accel: float = describe("Clamp on the angular acceleration norm (rad/s^2).", default=2.0)
    absurd_command_limit: float = describe(
        "A command with any component beyond this (m/s or rad/s) is refused as invalid, not clamped: no arm "
        "moves that fast, and bounding the input keeps every later product finite.", default=1.0e4)
    workspace_min: tuple[float, float, float] = describe(
        "Lower corner of the allowed TCP box in the base frame (m).", default=(-0.7, -0.7, 0.05))
    workspace_max: tuple[float, float, float] = describe(
        "Upper corner of the allowed TCP box in the base frame (m).", default=(0.7, 0.7, 0.9))
    workspace_lookahead_s: float = describe(
        "Zero a velocity component when it would take the TCP out of the box within this time (s).",
        default=0.05)

    def __post_init__(self) -> None:
        for name in ("base_frame", "tcp_frame", "camera_frame"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty frame id")
        if len({self.base_frame, self.tcp_frame, self.camera_frame}) != 3:
            raise ConfigError("base_frame, tcp_frame and camera_frame must be three different frames")
        _check_vector("hand_eye_xyz", self.hand_eye_xyz, 3)
        _check_vector("hand_eye_quat_xyzw", self.hand_eye_quat_xyzw, 4)
        # Bounded geometry keeps the lever-arm products of the frame change bounded (see safety.py).
        check_range("|hand_eye_xyz|", float(np.linalg.norm(self.hand_eye_xyz)), 0.0, 2.0)
        norm = float(np.linalg.norm(self.hand_eye_quat_xyzw))
        if abs(norm - 1.0) > 1e-3:
            raise ConfigError(f"hand_eye_quat_xyzw must be a unit quaternion, its norm is {norm:.4f}")
        check_range("max_command_age_s", self.max_command_age_s, 0.0, 1.0, lo_open=True)
        check_range("max_command_future_s", self.max_command_future_s, 0.0, 0.5)
        check_range("command_timeout_s", self.command_timeout_s, 0.0, 1.0, lo_open=True)
        check_range("max_linear_speed", self.max_linear_speed, 0.0, 1.0, lo_open=True)
        check_range("max_angular_speed", self.max_angular_speed, 0.0, 3.0, lo_open=True)
        check_range("max_linear_accel", self.max_linear_accel, 0.0, 5.0, lo_open=True)
        check_range("max_angular_accel", self.max_angular_accel, 0.0, 20.0, lo_open=True)
        check_range("absurd_command_limit", self.absurd_command_limit,
                    max(self.max_linear_speed, self.max_angular_speed), 1.0e6)
        check_range("workspace_lookahead_s", self.workspace_lookahead_s, 0.0, 1.0)
        _check_vector("workspace_min", self.workspace_min, 3)
        _check_vector("workspace_max", self.workspace_max, 3)
        if max(abs(float(x)) for x in (*self.workspace_min, *self.workspace_max)) > 10.0:
            raise ConfigError("workspace_min / workspace_max must lie within 10 m of the base")
        if not all(lo < hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ConfigError(f"workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max}")


@dataclass(frozen=True)
class UrRtdeConfig:
    """Connection to a UR arm through ur_rtde (RTDE 30004, dashboard 29999, script port 30002/30003)."""

    robot_ip: str = describe("IP address of the UR controller (URSim's default is 192.168.56.101).",
                             default="192.168.56.101")
    frequency_hz: float = describe("RTDE frequency; -1 picks 125 Hz on CB3 and 500 Hz on e-Series.",
                                   default=-1.0)
    watchdog_min_frequency_hz: float = describe(
        "On-robot watchdog: the control script stops if not kicked at least this often (Hz).", default=10.0)
    use_external_control_urcap: bool = describe(
        "Run the control script through the ExternalControl URCap (FLAG_USE_EXT_UR_CAP).", default=False)
    disable_remote_control_check: bool = describe(
        "Skip the PolyScope Remote Control check (FLAG_DISABLE_REMOTE_CONTROL_CHECK); only with good reason.",
        default=False)

    def __post_init__(self) -> None:
        if not self.robot_ip:
            raise ConfigError("robot_ip must be set (e.g. 192.168.56.101 for URSim)")
        if self.frequency_hz != -1.0:
            check_range("frequency_hz", self.frequency_hz, 1.0, 500.0)
        check_range("watchdog_min_frequency_hz", self.watchdog_min_frequency_hz, 1.0, 500.0)


@dataclass(frozen=True)
class SimBackendConfig:
    """The kinematic simulated arm: a TCP pose integrated from the commanded base-frame twist."""

    initial_xyz: tuple[float, float, float] = describe("Initial TCP position in the base frame (m).",
                                                       default=(0.0, -0.4, 0.4))
    initial_quat_xyzw: tuple[float, float, float, float] = describe(
        "Initial TCP orientation in the base frame (x, y, z, w); default: tool z pointing down.",
        default=(1.0, 0.0, 0.0, 0.0))
    max_accel: float = describe("Linear acceleration with which the simulated TCP follows speedL (m/s^2).",
                                default=0.5)
    max_angular_accel: float = describe("Angular acceleration of the simulated TCP (rad/s^2).", default=2.0)
    watchdog_min_frequency_hz: float = describe(
        "Simulated on-robot watchdog: commands stop being obeyed if not kicked this often (Hz). Down to 0.2 Hz "
        "(the UR's own watchdog takes >= 1 Hz) for the one-process demo, where every node shares the GIL.",
        default=10.0)
    substep_s: float = describe("Integration sub-step of the kinematic TCP (s).", default=0.002)

    def __post_init__(self) -> None:
        _check_vector("initial_xyz", self.initial_xyz, 3)
        _check_vector("initial_quat_xyzw", self.initial_quat_xyzw, 4)
        if abs(float(np.linalg.norm(self.initial_quat_xyzw)) - 1.0) > 1e-3:
            raise ConfigError("initial_quat_xyzw must be a unit quaternion")
        check_range("max_accel", self.max_accel, 0.0, 10.0, lo_open=True)
        check_range("max_angular_accel", self.max_angular_accel, 0.0, 50.0, lo_open=True)
        check_range("watchdog_min_frequency_hz", self.watchdog_min_frequency_hz, 0.2, 500.0)
        check_range("substep_s", self.substep_s, 0.0, 0.02, lo_open=True)


BACKENDS = ("sim", "ur_rtde")


@dataclass(frozen=True)
class BridgeConfig:
    """The bridge loop: which backend, how fast, how it stops."""

    backend: str = describe(f"Robot backend, one of {list(BACKENDS)}.", default="sim")
    control_rate_hz: float = describe(
        "Control loop rate (Hz): 125 for a CB3 UR5, up to 500 for e-Series; every tick kicks the watchdog.",
        default=125.0)
    status_rate_hz: float = describe("Rate of /vs/robot/status, tcp_pose, joint_states and /diagnostics (Hz).",
                                     default=20.0)
    stop_deceleration: float = describe("Deceleration used whenever the bridge stops the robot (m/s^2).",
                                        default=1.0)
    reconnect_backoff_initial_s: float = describe("First wait before a reconnect attempt (s).", default=0.5)
    reconnect_backoff_max_s: float = describe("Longest wait between reconnect attempts (s).", default=8.0)

    def __post_init__(self) -> None:
        check_choice("backend", self.backend, BACKENDS)
        check_range("control_rate_hz", self.control_rate_hz, 10.0, 500.0)
        check_range("status_rate_hz", self.status_rate_hz, 0.5, 100.0)
        check_range("stop_deceleration", self.stop_deceleration, 0.1, 10.0)
        check_range("reconnect_backoff_initial_s", self.reconnect_backoff_initial_s, 0.0, 60.0, lo_open=True)
        check_range("reconnect_backoff_max_s", self.reconnect_backoff_max_s, self.reconnect_backoff_initial_s, 600.0)
