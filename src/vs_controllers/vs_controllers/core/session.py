"""A servo session: one controller, its goal, the stop policy and the servo state machine (ROS-free).

The controller node only wires messages to this object, so the behaviour a user sees — when a twist is
non-zero, when the run counts as converged or failed, why — is decided and tested here.

States (mirroring ``vs_msgs/ServoStatus``): IDLE → SERVOING (after :meth:`ServoSession.start`) →
CONVERGED (stop policy fired, or the error fell below the requested tolerance) or FAILED (the
controller could not compute for ``max_failures`` steps in a row, or the input went silent);
PAUSED keeps the goal and outputs zero. Outside SERVOING the twist is always zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from vs_common.core.config import check_range, describe
from vs_common.core.errors import VisualServoError
from vs_perception.core.types import Correspondences

from vs_controllers.core.protocol import Controller
from vs_controllers.core.stop_policy import PixelStopPolicy, StopPolicyConfig


class ServoState(IntEnum):
    IDLE = 0
    SERVOING = 1
    CONVERGED = 2
    FAILED = 3
    PAUSED = 4


@dataclass(frozen=True)
class SessionConfig:
    """Servo session settings."""

    waiting_time_s: float = describe("Stop once the error has plateaued below the threshold for this long (s).",
                                     default=0.5)
    threshold: float = describe("Stop-policy error threshold (normalised image units).", default=0.005)
    max_failures: int = describe("Consecutive steps the controller may fail before the run is FAILED.", default=25)
    input_timeout_s: float = describe("FAILED when no observation arrives for this long while servoing (s).",
                                      default=2.0)

    def __post_init__(self) -> None:
        check_range("waiting_time_s", self.waiting_time_s, 0.0)
        check_range("threshold", self.threshold, 0.0, lo_open=True)
        check_range("max_failures", self.max_failures, 1)
        check_range("input_timeout_s", self.input_timeout_s, 0.0, lo_open=True)


@dataclass
class StepResult:
    """What one observation produced (all the node publishes)."""

    v_c: np.ndarray
    state: ServoState
    error: float
    num_valid: int = 0
    num_total: int = 0
    step: int = 0
    controller_ms: float = 0.0
    reason: str = ""
    info: dict = field(default_factory=dict)


def goal_from_observation(obs: Correspondences) -> Correspondences:
    """The goal as a controller wants it: the goal keypoints matched with themselves."""
    return Correspondences(camera=obs.camera, goal_uv=obs.goal_uv, current_uv=obs.goal_uv.copy(),
                           valid=np.ones(len(obs), bool), goal_ids=obs.goal_ids, goal_depth=obs.goal_depth,
                           goal_relative_depth=obs.goal_relative_depth, goal_id=obs.goal_id,
                           frame_id=obs.frame_id, info=dict(obs.info))


class ServoSession:
    """Drives one controller toward the goal of the observations it is fed."""

    def __init__(self, controller: Controller, config: SessionConfig | None = None) -> None:
        self.controller = controller
        self.config = config or SessionConfig()
        self.state = ServoState.IDLE
        self.goal_id: str | None = None
        self.reason = "no goal yet"
        self.step_count = 0
        self.error = float("nan")
        self._stop = PixelStopPolicy(StopPolicyConfig(waiting_time_s=self.config.waiting_time_s,
                                                      threshold=self.config.threshold))
        self._tolerance = 0.0
        self._failures = 0
        self._last_obs_t: float | None = None

    # -- commands -------------------------------------------------------------------------------------
    def start(self, tolerance: float = 0.0, now: float | None = None) -> None:
        """Begin servoing to the current goal (a new goal may still arrive with the next observation)."""
        self.state = ServoState.SERVOING
        self._tolerance = max(float(tolerance), 0.0)
        self._failures = 0
        self.step_count = 0
        self._stop.reset()
        self.controller.reset()
        self._last_obs_t = time.monotonic() if now is None else now
        self.reason = ""

    def pause(self, reason: str = "paused") -> None:
        if self.state == ServoState.SERVOING:
            self.state, self.reason = ServoState.PAUSED, reason

    def stop(self, reason: str = "stopped") -> None:
        """End the run without converging (cancel)."""
        self.state, self.reason = ServoState.IDLE, reason

    # -- per observation ------------------------------------------------------------------------------
    def _maybe_new_goal(self, obs: Correspondences) -> None:
        if obs.goal_id == self.goal_id:
            return
        self.controller.set_goal(goal_from_observation(obs))
        self.goal_id = obs.goal_id
        self._stop.reset()
        self.step_count = 0
        if self.state in (ServoState.CONVERGED, ServoState.FAILED):
            self.state = ServoState.IDLE
        if self.state == ServoState.IDLE:
            self.reason = "goal set; waiting for a servo request"

    def step(self, obs: Correspondences, now: float | None = None) -> StepResult:
        """Feed one observation; returns the twist to publish (zero unless SERVOING and computable)."""
        now = time.monotonic() if now is None else now
        self._last_obs_t = now
        zero = np.zeros(6)
        try:
            self._maybe_new_goal(obs)
        except VisualServoError as err:
            self.reason = f"cannot use goal {obs.goal_id!r}: {err}"
            return self._result(zero, obs, 0.0)
        if self.state != ServoState.SERVOING:
            return self._result(zero, obs, 0.0)
        t0 = time.perf_counter()
        out = self.controller.compute(obs)
        ms = (time.perf_counter() - t0) * 1e3
        self.step_count += 1
        self.error = out.error
        if not out.ok or not np.all(np.isfinite(out.v_c)):
            self._failures += 1
            self.reason = out.reason or "controller produced a non-finite twist"
            if self._failures >= self.config.max_failures:
                self.state = ServoState.FAILED
                self.reason = f"{self._failures} failed steps in a row: {self.reason}"
            return self._result(zero, obs, ms, out.info)
        self._failures = 0
        self.reason = ""
        stop = self._stop.update(obs, t=now)
        if stop or (self._tolerance > 0 and np.isfinite(out.error) and out.error < self._tolerance):
            self.state = ServoState.CONVERGED
            self.reason = f"converged: error {out.error:.5f}"
            return self._result(zero, obs, ms, out.info)
        return self._result(np.asarray(out.v_c, float), obs, ms, out.info)

    def check_input(self, now: float | None = None) -> bool:
        """Watchdog for the node's timer: False (and FAILED) when observations stopped while servoing."""
        now = time.monotonic() if now is None else now
        if self.state != ServoState.SERVOING or self._last_obs_t is None:
            return True
        silence = now - self._last_obs_t
        if silence > self.config.input_timeout_s:
            self.state = ServoState.FAILED
            self.reason = f"no correspondences for {silence:.1f} s"
            return False
        return True

    def _result(self, v_c: np.ndarray, obs: Correspondences, ms: float, info: dict | None = None) -> StepResult:
        return StepResult(v_c=v_c, state=self.state, error=self.error, num_valid=obs.num_valid, num_total=len(obs),
                          step=self.step_count, controller_ms=ms, reason=self.reason, info=dict(info or {}))

