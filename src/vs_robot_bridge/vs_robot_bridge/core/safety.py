"""The safety filter every command passes before it reaches a robot backend (DESIGN.md §9).

Pipeline per control tick (``SafetyFilter.step``):

1. **validity** (at arrival, :meth:`SafetyFilter.submit`): non-finite or absurd values (any component
   beyond ``absurd_command_limit``), unknown frames, stale stamps (``now − stamp > max_command_age_s``) and
   stamps from the future (``stamp − now > max_command_future_s``) raise :class:`SafetyViolation` and are
   never stored;
2. **silence**: no valid command for ``command_timeout_s`` (or the stored one aged past
   ``max_command_age_s``) → stop;
3. **frame change** to the base frame with the hand-eye transform (rotation *and* lever arm);
4. **speed clamp** of the linear and angular norms (one common factor, so the screw axis is kept);
5. **acceleration clamp** against the previous output;
6. **workspace**: zero each component that would take the TCP out of the box within the look-ahead
   plus its stopping distance;
7. **output check**: the twist sent is finite and within the speed limits, or the tick is a stop.

Finite and within limits by construction: the input is bounded before any arithmetic (every component
≤ ``absurd_command_limit`` ≤ 1e6, the hand-eye lever arm ≤ 2 m, the TCP pose a finite rigid transform
within 100 m), so every product below stays far from overflow; each transform's result is still checked
for finiteness, and an output that is not finite or exceeds a limit is counted (``invalid_outputs``) and
turned into a stop, never sent.

Twist transform (rigid body, all vectors in base ``b``): a twist ``(v_c, ω_c)`` of the camera frame c,
expressed in c about the camera origin, moves the TCP point with

    ω_b = R_bc ω_c,     v_tcp_b = R_bc v_c + ω_b × (p_tcp − p_cam)_b = R_bc v_c − ω_b × (R_bt · t_tc)

where ``t_tc`` is the camera origin in the TCP frame (hand-eye translation). Base-frame twists are
already TCP twists (speedL semantics); TCP-frame twists are only rotated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from vs_common.core.errors import SafetyViolation
from vs_common.core.se3 import pose_from_xyz_quat

from vs_robot_bridge.core.config import SafetyConfig
from vs_robot_bridge.core.types import TwistCommand


def hand_eye_transform(config: SafetyConfig) -> np.ndarray:
    """``tcp_T_camera`` (4, 4) from the configured translation and quaternion."""
    return pose_from_xyz_quat(config.hand_eye_xyz, config.hand_eye_quat_xyzw)


def camera_twist_to_base(v_c: np.ndarray, base_T_tcp: np.ndarray, tcp_T_cam: np.ndarray) -> np.ndarray:
    """Camera twist (about the camera origin, in camera axes) → TCP twist in the base frame.

    Args:
        v_c: (6,) (v, ω) of the camera frame expressed in the camera frame (m/s, rad/s).
        base_T_tcp: (4, 4) current TCP pose in the base frame.
        tcp_T_cam: (4, 4) hand-eye transform (camera pose in the TCP frame).

    Returns:
        (6,) (v_tcp, ω) in the base frame: the linear velocity of the TCP point and the angular velocity,
        which is what ur_rtde ``speedL`` expects.
    """
    v_c = np.asarray(v_c, dtype=np.float64).reshape(6)
    R_bt = base_T_tcp[:3, :3]
    R_bc = R_bt @ tcp_T_cam[:3, :3]
    w_b = R_bc @ v_c[3:]
    # The TCP sits at −t_tc from the camera origin; a rotation about the camera origin moves it by ω × r.
    r_cam_to_tcp_b = -R_bt @ tcp_T_cam[:3, 3]
    v_b = R_bc @ v_c[:3] + np.cross(w_b, r_cam_to_tcp_b)
    return np.concatenate([v_b, w_b])


def tcp_twist_to_base(v_t: np.ndarray, base_T_tcp: np.ndarray) -> np.ndarray:
    """TCP twist in TCP axes → the same twist in base axes (same reference point, so only a rotation)."""
    v_t = np.asarray(v_t, dtype=np.float64).reshape(6)
    R = base_T_tcp[:3, :3]
    return np.concatenate([R @ v_t[:3], R @ v_t[3:]])


def safe_norm(v: np.ndarray) -> float:
    """Euclidean norm with no intermediate overflow (inf only when the norm itself exceeds the float range).

    ``math.hypot`` scales internally, and on a few components it allocates no array (it runs every tick).
    A non-finite component gives a non-finite norm (inf wins over nan, as IEEE ``hypot``).
    """
    return math.hypot(*np.asarray(v, dtype=np.float64).reshape(-1))


def clamp_norm(v: np.ndarray, limit: float) -> np.ndarray:
    """Scale ``v`` down to norm ``limit`` keeping its direction (unchanged when already within; zeros if non-finite)."""
    n = safe_norm(v)
    if not np.isfinite(n):
        return np.zeros_like(v)
    return v * (limit / n) if n > limit else v


def clamp_speed(v_b: np.ndarray, max_linear: float, max_angular: float) -> np.ndarray:
    """Scale a (6,) twist so that both its linear and angular norms are within limits.

    One common factor for both parts keeps the screw axis: scaling them separately would turn a
    rotation about the camera origin (whose base-frame twist has a lever-arm linear part) into a
    motion about some other point. A non-finite twist has no direction to keep: it becomes zeros.
    """
    n_lin, n_ang = safe_norm(v_b[:3]), safe_norm(v_b[3:])
    if not (np.isfinite(n_lin) and np.isfinite(n_ang)):
        return np.zeros_like(v_b)
    s = min(1.0, max_linear / max(n_lin, 1e-12), max_angular / max(n_ang, 1e-12))
    return v_b * s


def clamp_acceleration(v_target: np.ndarray, v_prev: np.ndarray, dt: float, max_linear_accel: float,
                       max_angular_accel: float) -> np.ndarray:
    """Move from ``v_prev`` towards ``v_target`` by at most ``a·dt`` (one common factor, see :func:`clamp_speed`)."""
    return v_prev + clamp_speed(v_target - v_prev, max_linear_accel * dt, max_angular_accel * dt)


def limit_to_workspace(v_b: np.ndarray, p_tcp_b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       lookahead_s: float, decel: float = np.inf) -> tuple[np.ndarray, list[str]]:
    """Zero the linear components that would carry the TCP out of the box ``[lo, hi]``.

    The predicted position adds the look-ahead travel and the stopping distance ``v²/(2·decel)``, since
    the robot does not stop instantly once a component is zeroed. A component moving back towards the
    box is always allowed, so a TCP that starts outside can return.

    Args:
        v_b: (6,) base-frame TCP twist.
        p_tcp_b: (3,) TCP position in the base frame (m).
        lo, hi: (3,) box corners in the base frame (m).
        lookahead_s: horizon over which the predicted position must stay inside (s).
        decel: deceleration the robot stops with (m/s²); inf ignores the stopping distance.

    Returns:
        The limited twist and the names of the axes that were zeroed.
    """
    out = v_b.copy()
    zeroed = []
    v = v_b[:3]
    predicted = p_tcp_b + v * lookahead_s + v * np.abs(v) / (2.0 * decel)
    for i, axis in enumerate("xyz"):
        if (v[i] > 0.0 and predicted[i] > hi[i]) or (v[i] < 0.0 and predicted[i] < lo[i]):
            out[i] = 0.0
            zeroed.append(axis)
    return out, zeroed


def pose_problem(base_T_tcp: np.ndarray | None, max_distance_m: float = 100.0) -> str:
    """Why a measured TCP pose cannot be used for the frame change ("" when it can).

    A usable pose is a finite (4, 4) rigid transform (orthonormal rotation, last row 0 0 0 1) within
    ``max_distance_m`` of the base.
    """
    if base_T_tcp is None:
        return "TCP pose unknown"
    T = np.asarray(base_T_tcp, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return "TCP pose is not a finite 4x4 transform"
    R = T[:3, :3]
    if np.max(np.abs(R.T @ R - np.eye(3))) > 1e-6 or np.max(np.abs(T[3] - [0, 0, 0, 1])) > 1e-9:
        return "TCP pose is not a rigid transform"
    if np.max(np.abs(T[:3, 3])) > max_distance_m:
        return f"TCP pose is more than {max_distance_m:.0f} m from the base"
    return ""


@dataclass
class FilterOutput:
    """What the filter decided for one tick.

    Attributes:
        v_b: (6,) TCP twist in the base frame to send (zeros when ``stop``).
        stop: True when the robot must be stopped (no valid command); send ``speedStop``, not ``speedL(0)``.
        reason: why the command was stopped or altered ("" when forwarded unchanged).
        command_age_s: age of the current command by its stamp (inf without one).
    """

    v_b: np.ndarray
    stop: bool
    reason: str
    command_age_s: float


class SafetyFilter:
    """Validates, transforms and limits twist commands; holds the last valid command and last output."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.tcp_T_cam = hand_eye_transform(config)
        self._lo = np.asarray(config.workspace_min, float)
        self._hi = np.asarray(config.workspace_max, float)
        self._command: TwistCommand | None = None
        self._v_prev = np.zeros(6)
        self._t_prev: float | None = None
        self.invalid_outputs = 0  # ticks whose computed twist was not finite / within limits (→ stop)

    @property
    def known_frames(self) -> tuple[str, str, str]:
        return (self.config.base_frame, self.config.tcp_frame, self.config.camera_frame)

    @property
    def last_command(self) -> TwistCommand | None:
        return self._command

    @property
    def last_output(self) -> np.ndarray:
        return self._v_prev.copy()

    def submit(self, command: TwistCommand, now_s: float) -> None:
        """Check a command on arrival and keep it as the current one.

        Raises:
            SafetyViolation: non-finite, malformed or absurd values, unknown frame, a stamp older than
                ``max_command_age_s`` or further than ``max_command_future_s`` in the future (the previous
                command is dropped too, so a rejected stream halts the robot at once).
        """
        cfg = self.config
        try:
            try:
                twist = np.asarray(command.twist, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as err:
                raise SafetyViolation(f"malformed twist: {err}") from err
            if twist.shape != (6,) or not np.all(np.isfinite(twist)):
                raise SafetyViolation(f"non-finite or malformed twist {twist.tolist()[:6]}")
            if float(np.max(np.abs(twist))) > cfg.absurd_command_limit:
                raise SafetyViolation(f"absurd twist {twist.tolist()}: a component exceeds "
                                      f"{cfg.absurd_command_limit:g} (m/s or rad/s)")
            if not isinstance(command.frame_id, str) or command.frame_id not in self.known_frames:
                raise SafetyViolation(
                    f"unknown frame {command.frame_id!r}; known frames are {list(self.known_frames)}")
            stamp, now = float(command.stamp_s), float(now_s)
            if not (np.isfinite(stamp) and np.isfinite(now)):
                raise SafetyViolation(f"non-finite stamp {stamp!r} (now {now!r})")
            age = now - stamp
            if age > cfg.max_command_age_s:
                raise SafetyViolation(f"stale command: stamp is {age * 1e3:.0f} ms old "
                                      f"(limit {cfg.max_command_age_s * 1e3:.0f} ms)")
            if -age > cfg.max_command_future_s:
                raise SafetyViolation(f"command from the future: stamp is {-age * 1e3:.0f} ms ahead of the clock "
                                      f"(tolerance {cfg.max_command_future_s * 1e3:.0f} ms)")
        except SafetyViolation:
            self._command = None
            raise
        self._command = TwistCommand(twist.copy(), command.frame_id, stamp, float(command.received_s))

    def clear_command(self) -> None:
        """Forget the current command only: the next tick stops (the output history stays for the ramp)."""
        self._command = None

    def clear(self) -> None:
        """Forget the current command and the output history (after a fault, a reset, a deactivation)."""
        self._command = None
        self._v_prev = np.zeros(6)
        self._t_prev = None

    def to_base(self, command: TwistCommand, base_T_tcp: np.ndarray) -> np.ndarray:
        """Express a validated command as a base-frame TCP twist."""
        if command.frame_id == self.config.base_frame:
            return command.twist.copy()
        if command.frame_id == self.config.tcp_frame:
            return tcp_twist_to_base(command.twist, base_T_tcp)
        return camera_twist_to_base(command.twist, base_T_tcp, self.tcp_T_cam)

    def step(self, now_s: float, base_T_tcp: np.ndarray | None) -> FilterOutput:
        """One control tick: the base-frame twist to send now (finite and within the limits, or a stop).

        Args:
            now_s: node clock (s).
            base_T_tcp: (4, 4) measured TCP pose in the base frame; None when unknown (→ stop).
        """
        cfg = self.config
        now_s = float(now_s)
        # The first tick after a stop has no history: assume a 10 ms tick rather than allowing a jump.
        dt = 0.01 if self._t_prev is None or not np.isfinite(now_s) else min(max(now_s - self._t_prev, 1e-4), 0.1)
        self._t_prev = now_s if np.isfinite(now_s) else None
        cmd = self._command
        age = float("inf") if cmd is None else now_s - cmd.stamp_s
        silence = float("inf") if cmd is None else now_s - cmd.received_s
        reason = ""
        if cmd is None:
            reason = "no command"
        elif not (np.isfinite(age) and np.isfinite(silence)):
            reason = f"clock or stamp not finite (now {now_s!r})"
        elif silence > cfg.command_timeout_s:
            reason = f"command timeout ({silence * 1e3:.0f} ms without a command)"
        elif age > cfg.max_command_age_s:
            reason = f"stale command ({age * 1e3:.0f} ms old)"
        elif -age > cfg.max_command_future_s:
            reason = f"command from the future ({-age * 1e3:.0f} ms ahead)"
        else:
            reason = pose_problem(base_T_tcp)
        if reason:
            return self._stop(reason, age)
        assert cmd is not None and base_T_tcp is not None  # a missing command or pose gave a reason above

        notes = []
        v_b = self.to_base(cmd, base_T_tcp)
        if not (np.all(np.isfinite(v_b)) and np.isfinite(safe_norm(v_b[:3])) and np.isfinite(safe_norm(v_b[3:]))):
            return self._invalid("frame change gave a non-finite twist", age)
        v_clamped = clamp_speed(v_b, cfg.max_linear_speed, cfg.max_angular_speed)
        if not np.allclose(v_clamped, v_b):
            notes.append("speed clamped")
        v_acc = clamp_acceleration(v_clamped, self._v_prev, dt, cfg.max_linear_accel, cfg.max_angular_accel)
        if not np.allclose(v_acc, v_clamped):
            notes.append("acceleration limited")
        v_out, zeroed = limit_to_workspace(v_acc, base_T_tcp[:3, 3], self._lo, self._hi, cfg.workspace_lookahead_s,
                                          cfg.max_linear_accel)
        if zeroed:
            notes.append(f"workspace limit on {''.join(zeroed)}")
        problem = self.output_problem(v_out)
        if problem:
            return self._invalid(problem, age)
        self._v_prev = v_out
        return FilterOutput(v_out, False, ", ".join(notes), age)

    def output_problem(self, v_b: np.ndarray) -> str:
        """Why a twist must not be sent ("" when it is finite and within the speed limits)."""
        cfg = self.config
        v_b = np.asarray(v_b, dtype=np.float64)
        if v_b.shape != (6,) or not np.all(np.isfinite(v_b)):
            return "output twist is not finite"
        tol = 1.0 + 1e-9
        if safe_norm(v_b[:3]) > cfg.max_linear_speed * tol or safe_norm(v_b[3:]) > cfg.max_angular_speed * tol:
            return "output twist exceeds the speed limits"
        return ""

    def _stop(self, reason: str, age: float) -> FilterOutput:
        self._command = None
        self._v_prev = np.zeros(6)
        return FilterOutput(np.zeros(6), True, reason, age)

    def _invalid(self, problem: str, age: float) -> FilterOutput:
        """A computed twist that must not be sent: count it, drop the command, stop."""
        self.invalid_outputs += 1
        return self._stop(f"invalid command dropped: {problem}", age)
