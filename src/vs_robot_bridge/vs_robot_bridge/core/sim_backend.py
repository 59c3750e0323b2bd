"""A kinematic stand-in for the arm: the TCP pose integrates the commanded base-frame twist.

It mimics the ur_rtde behaviours the bridge relies on, so the safety layer can be tested with fault
injection: ``speedL`` semantics (the TCP follows the last target with an acceleration limit until a new
one, ``speedStop`` or a watchdog trip), an on-robot watchdog that stops the program when not kicked,
protective stops / e-stops / disconnects that refuse commands until cleared and reset.

Time comes from an injectable clock (``clock()`` → s), so tests can step it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from vs_common.core.errors import InputError, RobotFault, SafetyViolation
from vs_common.core.se3 import integrate_twist, pose_from_xyz_quat

from vs_robot_bridge.core.config import SimBackendConfig
from vs_robot_bridge.core.safety import clamp_acceleration, pose_problem
from vs_robot_bridge.core.types import (
    RUNTIME_PLAYING,
    SAFETY_NORMAL,
    SAFETY_PROTECTIVE_STOP,
    SAFETY_ROBOT_EMERGENCY_STOP,
    RobotState,
)


class SimBackend:
    """Kinematic TCP ``base_T_tcp`` moved by speedL-like commands; see the module docstring."""

    name = "sim"

    def __init__(self, config: SimBackendConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or SimBackendConfig()
        self._clock = clock
        self.base_T_tcp = pose_from_xyz_quat(self.config.initial_xyz, self.config.initial_quat_xyzw)
        self._v = np.zeros(6)  # actual TCP twist, base frame
        self._target = np.zeros(6)
        self._accel = (self.config.max_accel, self.config.max_angular_accel)
        self._t = clock()
        self._receive_open = False
        self._control_open = False
        self._program_running = False
        self._watchdog_armed = False
        self._watchdog_ok = True
        self._last_kick = self._t
        self._link_up = True
        self.protective_stop = False
        self.emergency_stop = False
        self.calls: list[str] = []  # what the bridge asked, for tests and the latency benchmark
        self.on_command: Callable[[str, np.ndarray], None] | None = None

    # --- fault injection -------------------------------------------------------------------------
    def inject_protective_stop(self) -> None:
        self._advance()
        self.protective_stop = True
        self._halt_program()

    def inject_emergency_stop(self) -> None:
        self._advance()
        self.emergency_stop = True
        self._halt_program()

    def inject_disconnect(self) -> None:
        self._advance()
        self._link_up = False
        self._receive_open = False  # like a dropped RTDE socket: only reconnect() reopens it
        self._halt_program()

    def clear_stops(self) -> None:
        """What a human does on the pendant (unlock protective stop, release the e-stop)."""
        self.protective_stop = False
        self.emergency_stop = False

    def restore_link(self) -> None:
        self._link_up = True

    # --- simulation only -------------------------------------------------------------------------
    def teleport(self, base_T_tcp: np.ndarray) -> None:
        """Put the TCP at ``base_T_tcp``, at rest (``/vs/sim/orbit``); refused while the arm moves.

        Raises:
            SafetyViolation: a commanded or residual motion (a servo run is moving the arm).
            InputError: not a pose the safety filter would move from (:func:`~vs_robot_bridge.core.safety.pose_problem`:
                a finite (4, 4) rigid transform within 100 m of the base).
        """
        self._advance()
        if np.linalg.norm(self._target) > 1e-9 or np.linalg.norm(self._v) > 1e-9:
            raise SafetyViolation("the arm is moving (a servo command is active): cancel the servo run, then retry")
        if problem := pose_problem(base_T_tcp):
            raise InputError(f"teleport refused: {problem}")
        self.base_T_tcp = np.array(base_T_tcp, dtype=np.float64)

    # --- RobotBackend ----------------------------------------------------------------------------
    @property
    def control_open(self) -> bool:
        return self._control_open

    def open_receive(self) -> None:
        self._require_link()
        self._receive_open = True

    def open_control(self) -> None:
        self._require_link()
        self._control_open = True
        self._program_running = not (self.protective_stop or self.emergency_stop)
        self._watchdog_armed = True
        self._watchdog_ok = True
        self._last_kick = self._clock()

    def close_control(self, deceleration: float = 1.0) -> None:
        self._advance()
        self._halt_program()
        self._control_open = False
        self._watchdog_armed = False

    def disconnect(self) -> None:
        self.close_control()
        self._receive_open = False

    def read_state(self) -> RobotState:
        self._advance()
        connected = self._link_up and self._receive_open
        safety = SAFETY_NORMAL
        if self.protective_stop:
            safety = SAFETY_PROTECTIVE_STOP
        if self.emergency_stop:
            safety = SAFETY_ROBOT_EMERGENCY_STOP
        text = ""
        if not self._watchdog_ok:
            text = "watchdog tripped: the control program stopped"
        return RobotState(
            connected=connected,
            base_T_tcp=self.base_T_tcp.copy() if connected else None,
            tcp_twist_b=self._v.copy(),
            robot_mode=7 if connected else -1,
            safety_mode=safety,
            protective_stop=self.protective_stop,
            emergency_stop=self.emergency_stop,
            program_running=self._program_running,
            runtime_state=RUNTIME_PLAYING if self._program_running else 1,
            watchdog_ok=self._watchdog_ok,
            fault_text=text,
        )

    def send_twist(self, v_b: np.ndarray, acceleration: float) -> None:
        self._advance()
        self._require_link()
        if not self._program_running:
            # speedL returns False when the program is stopped or the robot is stopped (ur_rtde #55).
            raise RobotFault("speedL refused: control program not running")
        target = np.asarray(v_b, dtype=np.float64).reshape(-1)
        if target.shape != (6,) or not np.all(np.isfinite(target)) or not np.isfinite(acceleration) \
                or acceleration <= 0:
            # A second check behind the safety filter: a non-finite target would corrupt the integrated pose.
            raise RobotFault(f"speedL refused: non-finite or malformed target {target.tolist()[:6]} "
                             f"(a = {acceleration!r})")
        self._target = target.copy()
        self._accel = (min(float(acceleration), self.config.max_accel), self.config.max_angular_accel)
        self._record("speedL", self._target)

    def stop(self, deceleration: float) -> None:
        self._advance()
        self._target = np.zeros(6)
        decel = float(deceleration) if np.isfinite(deceleration) and deceleration > 0 else self.config.max_accel
        self._accel = (decel, self.config.max_angular_accel)
        self._record("speedStop", self._target)

    def kick_watchdog(self) -> None:
        self._advance()
        if self._link_up and self._control_open:
            self._last_kick = self._clock()

    def reconnect(self) -> bool:
        if not self._link_up:
            return False
        self._receive_open = True
        return True

    def reset_fault(self) -> None:
        self._require_link()
        if self.protective_stop or self.emergency_stop:
            raise RobotFault("the robot is still stopped; clear the stop on the pendant first")
        if self._control_open:
            # As reuploadScript(): the program restarts and the watchdog is re-armed.
            self._program_running = True
            self._watchdog_ok = True
            self._last_kick = self._clock()

    # --- internals -------------------------------------------------------------------------------
    def _record(self, what: str, v: np.ndarray) -> None:
        self.calls.append(what)
        if self.on_command is not None:
            self.on_command(what, v)

    def _require_link(self) -> None:
        if not self._link_up:
            raise RobotFault("robot not reachable (link down)")

    def _halt_program(self) -> None:
        self._program_running = False
        self._target = np.zeros(6)
        self._v = np.zeros(6)  # a stop category 2 / link loss: treat as an immediate halt

    def _advance(self) -> None:
        """Integrate the TCP from the last call to now, following the target with the acceleration limit."""
        now = self._clock()
        if self._watchdog_armed and self._program_running and \
                now - self._last_kick > 1.0 / self.config.watchdog_min_frequency_hz:
            self._watchdog_ok = False
            self._halt_program()
        remaining = now - self._t
        self._t = now
        h = self.config.substep_s
        while remaining > 1e-9:
            dt = min(h, remaining)
            remaining -= dt
            self._v = clamp_acceleration(self._target, self._v, dt, *self._accel)
            if not np.any(self._v):
                continue
            # speedL gives the TCP point's velocity and ω in base axes; integrate_twist wants a body twist.
            R = self.base_T_tcp[:3, :3]
            v_body = np.concatenate([R.T @ self._v[:3], R.T @ self._v[3:]])
            pose = integrate_twist(self.base_T_tcp, v_body, dt)
            if not np.all(np.isfinite(pose)):  # never let the simulated arm leave the reals
                self._halt_program()
                return
            self.base_T_tcp = pose
