"""The bridge loop: backend + safety filter + fault latch, driven by lifecycle calls and a control tick.

This is everything the lifecycle node does, without ROS, so it is tested with fault injection directly.

Rules (DESIGN.md §9, reference/ros2_conventions.md §2):

- Only :meth:`RobotBridge.tick` writes motion to the backend; it runs at the control rate, kicks the
  on-robot watchdog every time, and either forwards the filtered twist (``speedL``) or stops
  (``speedStop``, once per transition) when there is no valid command.
- A disconnect, protective stop, emergency stop, abnormal safety mode, stopped control script, tripped
  watchdog or refused ``speedL`` **latches** a fault: the robot is stopped, commands are ignored, and
  only :meth:`RobotBridge.reset_fault` clears it — after a human cleared the cause. Motion never resumes
  by itself: the reset also forgets the last command, so a new one must arrive.
- A lost link is retried with exponential backoff; reconnecting does not clear the fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from vs_common.core.errors import RobotFault, SafetyViolation

from vs_robot_bridge.core.backend import RobotBackend
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig
from vs_robot_bridge.core.latency import LATENCIES, LatencyWindow, latency_values
from vs_robot_bridge.core.safety import SafetyFilter
from vs_robot_bridge.core.types import (
    SAFETY_NORMAL,
    SAFETY_REDUCED,
    BridgeState,
    RobotState,
    TwistCommand,
)


@dataclass
class BridgeStatus:
    """Everything ``vs_msgs/RobotStatus`` and ``/diagnostics`` report, as plain data."""

    backend: str
    state: BridgeState
    robot: RobotState
    fault: bool
    fault_text: str
    command_age_s: float
    last_command_b: np.ndarray = field(default_factory=lambda: np.zeros(6))
    note: str = ""
    rejected: int = 0
    last_rejection: str = ""
    invalid_outputs: int = 0
    latency: dict[str, str] = field(default_factory=dict)  # core.latency.latency_values: /diagnostics keys


class RobotBridge:
    """Backend + :class:`SafetyFilter` + fault latch. Times are node-clock seconds passed in by the caller."""

    def __init__(self, config: BridgeConfig, safety: SafetyConfig, backend: RobotBackend) -> None:
        self.config = config
        self.filter = SafetyFilter(safety)
        self.backend = backend
        self.state = BridgeState.UNCONFIGURED
        self._active = False
        self._fault_text = ""
        self._stopped = True
        self._robot = RobotState()
        self._last_sent = np.zeros(6)
        self._note = ""
        self._age = float("inf")
        self._rejected = 0
        self._last_rejection = ""
        self._backoff = config.reconnect_backoff_initial_s
        self._next_reconnect = 0.0
        #: Motion-command latencies since activation (core.latency); ``_sent_stamp``: the last one sent.
        self.latency = {name: LatencyWindow() for name, _ in LATENCIES}
        self._sent_stamp: float | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def configure(self) -> None:
        """Open the receive side. Raises RobotFault when the robot is unreachable."""
        self.backend.open_receive()
        self._robot = self.backend.read_state()
        self.state = BridgeState.INACTIVE

    def activate(self) -> None:
        """Open the control side and start accepting commands (a latched fault still blocks motion)."""
        self.backend.open_control()
        self.filter.clear()
        for window in self.latency.values():
            window.clear()
        self._active = True
        self._stopped = True
        self.state = BridgeState.FAULT if self.faulted else BridgeState.IDLE

    def deactivate(self) -> None:
        """Stop the robot and release the control side."""
        self._active = False
        self.filter.clear()
        self.backend.stop(self.config.stop_deceleration)
        self.backend.close_control(self.config.stop_deceleration)
        self._stopped = True
        self._last_sent = np.zeros(6)
        self.state = BridgeState.INACTIVE

    def cleanup(self) -> None:
        """Stop (if still active) and close every link."""
        if self._active:
            self.deactivate()
        self.backend.disconnect()
        self.state = BridgeState.UNCONFIGURED

    # --- commands -------------------------------------------------------------------------------
    @property
    def faulted(self) -> bool:
        return bool(self._fault_text)

    @property
    def active(self) -> bool:
        return self._active

    def submit(self, twist: np.ndarray, frame_id: str, stamp_s: float, now_s: float) -> str:
        """Offer one incoming command. Returns "" when accepted, else why it was ignored or rejected."""
        if not self._active:
            return "bridge not active"
        if self.faulted:
            return f"fault latched: {self._fault_text}"
        try:
            self.filter.submit(TwistCommand(np.asarray(twist, float), frame_id, stamp_s, now_s), now_s)
        except SafetyViolation as err:
            self._rejected += 1
            self._last_rejection = str(err)
            return str(err)
        self._last_rejection = ""  # only the rejections since the last accepted command are news
        if np.any(np.asarray(twist, float)):
            self.latency["image_to_bridge"].add(now_s - stamp_s)
        return ""

    def refuse(self, reason: str) -> str:
        """Count a command that could not even be decoded (bad stamp, bad message) and drop the current one."""
        self.filter.clear_command()
        if not self._active or self.faulted:
            return reason
        self._rejected += 1
        self._last_rejection = reason
        return reason

    def latch_fault(self, text: str) -> None:
        """Latch a fault: stop now, forget the command, keep stopped until :meth:`reset_fault`."""
        if not self.faulted:
            self._fault_text = text
        self.filter.clear()
        self.backend.stop(self.config.stop_deceleration)
        self._stopped = True
        self._last_sent = np.zeros(6)
        self.state = BridgeState.FAULT

    def reset_fault(self, now_s: float) -> tuple[bool, str]:
        """Explicit reset after a human cleared the cause. Returns (success, message)."""
        if not self.faulted:
            return True, "no fault latched"
        robot = self._read(now_s)
        if not robot.connected:
            if not self.backend.reconnect():
                return False, "robot still not reachable"
            robot = self._read(now_s)
        cause = self._fault_of(robot, for_reset=True)
        if cause:
            return False, f"cannot reset: {cause}"
        try:
            self.backend.reset_fault()
        except RobotFault as err:
            return False, f"cannot reset: {err}"
        old = self._fault_text
        self._fault_text = ""
        self.filter.clear()  # a command from before the fault must not resume motion
        self._stopped = True
        self._backoff = self.config.reconnect_backoff_initial_s
        self.state = BridgeState.IDLE if self._active else BridgeState.INACTIVE
        return True, f"fault cleared ({old}); waiting for a new command"

    # --- the control tick -----------------------------------------------------------------------
    def tick(self, now_s: float) -> None:
        """One control cycle; never raises for robot or command problems (they become faults / stops)."""
        if self.state == BridgeState.UNCONFIGURED:
            return
        robot = self._read(now_s)
        cause = self._fault_of(robot)
        if cause and not self.faulted:
            self.latch_fault(cause)
        if self.faulted:
            if not robot.connected:
                self._try_reconnect(now_s)
            self.backend.kick_watchdog()
            self._age = float("inf")
            return
        if not self._active:
            return
        self.backend.kick_watchdog()
        out = self.filter.step(now_s, robot.base_T_tcp)
        self._age, self._note = out.command_age_s, out.reason
        try:
            if out.stop:
                if not self._stopped:
                    self.backend.stop(self.config.stop_deceleration)
                    self._stopped = True
                    self._last_sent = np.zeros(6)
                self.state = BridgeState.IDLE
            else:  # SafetyFilter.step checked it (output_problem): finite and within the limits, or a stop
                self.backend.send_twist(out.v_b, self.filter.config.max_linear_accel)
                self._record_send(now_s)
                self._stopped = False
                self._last_sent = out.v_b
                self.state = BridgeState.MOVING
        except RobotFault as err:
            self.latch_fault(str(err))

    def status(self) -> BridgeStatus:
        return BridgeStatus(backend=self.backend.name, state=self.state, robot=self._robot, fault=self.faulted,
                            fault_text=self._fault_text or self._robot.fault_text, command_age_s=self._age,
                            last_command_b=self._last_sent.copy(), note=self._note, rejected=self._rejected,
                            last_rejection=self._last_rejection, invalid_outputs=self.filter.invalid_outputs,
                            latency=latency_values(self.latency))

    # --- internals ------------------------------------------------------------------------------
    def _record_send(self, now_s: float) -> None:
        """The first tick that sends a (non-zero) command: its image-to-robot latency."""
        cmd = self.filter.last_command
        if cmd is not None and cmd.stamp_s != self._sent_stamp and np.any(cmd.twist):
            self._sent_stamp = cmd.stamp_s
            self.latency["image_to_robot"].add(now_s - cmd.stamp_s)

    def _read(self, now_s: float) -> RobotState:
        try:
            self._robot = self.backend.read_state()
        except Exception as err:  # noqa: BLE001 — any read failure means we cannot see the robot
            self._robot = RobotState(connected=False, fault_text=f"state read failed: {err}")
        return self._robot

    def _fault_of(self, robot: RobotState, for_reset: bool = False) -> str:
        """Why this robot state must stop the bridge ("" when it need not).

        For a reset, a stopped script or tripped watchdog is not a reason to refuse: the reset restarts them.
        """
        if not robot.connected:
            return f"disconnected: {robot.fault_text or 'link lost'}"
        if robot.emergency_stop:
            return "emergency stop"
        if robot.protective_stop:
            return "protective stop"
        if robot.safety_mode not in (SAFETY_NORMAL, SAFETY_REDUCED):
            return f"safety mode {robot.safety_mode} is not NORMAL"
        if for_reset:
            return ""
        if not robot.watchdog_ok:
            return "watchdog tripped"
        if self._active and self.backend.control_open and not robot.program_running:
            return robot.fault_text or "control program not running"
        return ""

    def _try_reconnect(self, now_s: float) -> None:
        if now_s < self._next_reconnect:
            return
        ok = self.backend.reconnect()
        self._next_reconnect = now_s + self._backoff
        self._backoff = min(self._backoff * 2.0, self.config.reconnect_backoff_max_s)
        if ok:
            self._fault_text += " (link restored; reset to resume)"
