"""The servo loop every pipeline shares: controller twist → gain schedule → speed limits, stop policy, lost input.

A controller returns its own twist at unit gain and the error it minimises (:class:`ControlOutput`); this
loop turns that into the command, the same way for every pipeline and every harness — the controller node
(through :class:`~vs_controllers.core.session.ServoSession`, which the demo drives), and the benchmark
(:func:`~vs_controllers.benchmark.episode.run_episode`). Per observation ``obs`` at time ``t``:

1. lost input: no observation, or fewer than ``min_valid`` usable rows (``observation_size``), counts as a
   lost frame: no controller call, zero twist; ``lost_patience`` lost frames in a row give up;
1b. the pipeline's input stages (:class:`ObservationStage`, built from its spec's inputs by
   :func:`vs_controllers.core.inputs.make_inputs`) complete the goal and the observation, e.g. with the
   keypoints' relative depth; with stages, the controller is given its goal on the first step the goal is
   complete (a Depth-PC goal graph needs the goal's depth); until then, or while a stage cannot complete
   the observation, the step is a zero twist with the stage's reason;
2. otherwise the controller computes ``v₁`` (unit gain) and reports ``gain_error`` (default: its error);
3. gain schedule: ``λ = gain`` (constant), or ViSP's adaptive gain
   ``λ(x) = (λ₀ − λ∞) exp(−λ'₀ x / (λ₀ − λ∞)) + λ∞`` (``vpAdaptiveGain``) on ``x = gain_error``, then
   capped by the measured loop delay: ``λ ≤ gain_delay_cap / (T + τ)`` (:func:`delay_gain_cap`);
4. speed limits: ``v = λ v₁`` scaled down as a whole (direction kept) so ‖v‖ ≤ ``max_linear_mps`` and
   ‖ω‖ ≤ ``max_angular_rps``;
5. stop policy: fed every observation with a valid row, whether or not the controller could compute (it
   measures the image error, not the controller); it decides when the run has converged.

The loop is generic over the observation type: ``observation_size`` and the stop policy are the only parts
that look inside an observation (valid correspondences and the pixel stop policy by default; a stereo pair
for KOVIS brings its own).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, VisualServoError

from vs_controllers.core.protocol import Controller, ControlOutput

__all__ = ["GAIN_MODES", "LoopConfig", "LoopStep", "ObservationStage", "ServoLoop", "StopPolicy", "adaptive_gain",
           "clip_twist", "delay_gain_cap", "gain_of", "valid_rows"]

GAIN_MODES = ("constant", "adaptive")


def adaptive_gain(e_norm: float, lambda_0: float, lambda_inf: float, slope_0: float) -> float:
    """ViSP's adaptive gain λ(x) = (λ₀ − λ∞) exp(−λ'₀ x / (λ₀ − λ∞)) + λ∞.

    Args:
        e_norm: error norm x ≥ 0 (ViSP uses the infinity norm of e).
        lambda_0: gain at x = 0. lambda_inf: gain as x → ∞. slope_0: λ'₀, the slope −dλ/dx at x = 0.
    """
    span = lambda_0 - lambda_inf
    if span <= 0.0:
        return lambda_inf
    return span * math.exp(-slope_0 * e_norm / span) + lambda_inf


def clip_twist(v_c: np.ndarray, max_linear: float, max_angular: float) -> tuple[np.ndarray, float]:
    """Scale the whole twist down (keeping its direction) so ‖v‖ ≤ max_linear and ‖ω‖ ≤ max_angular.

    Returns:
        The clipped (6,) twist and the scale applied (1.0 when nothing was clipped).
    """
    nv, nw = float(np.linalg.norm(v_c[:3])), float(np.linalg.norm(v_c[3:]))
    scale = 1.0
    if max_linear > 0 and nv > max_linear:
        scale = min(scale, max_linear / nv)
    if max_angular > 0 and nw > max_angular:
        scale = min(scale, max_angular / nw)
    return v_c * scale, scale


@dataclass(frozen=True)
class LoopConfig:
    """Servo-loop settings every pipeline shares (the ``loop`` section of ``config/<pipeline>.yaml``)."""

    gain_mode: str = describe("constant (gain) or adaptive (ViSP λ(x) from gain_zero, gain_inf, gain_slope on the "
                              "error the controller reports for it).", default="constant")
    gain: float = describe("Constant gain λ (1/s): v_c = λ · the controller's unit-gain twist.", default=1.0)
    gain_zero: float = describe("Adaptive gain at zero error λ₀ (1/s).", default=2.0)
    gain_inf: float = describe("Adaptive gain at large error λ∞ (1/s).", default=1.0)
    gain_slope: float = describe("Adaptive gain slope at zero error λ'₀ (1/s per unit of error).", default=100.0)
    max_linear_mps: float = describe("Scale the twist down so ‖v‖ ≤ this (m/s); 0 = no limit.", default=0.0)
    max_angular_rps: float = describe("Scale the twist down so ‖ω‖ ≤ this (rad/s); 0 = no limit.", default=0.0)
    gain_delay_cap: float = describe(
        "Cap the gain at this / (T + τ): T the measured observation period, τ the measured image-to-command "
        "delay (s); 1/e keeps a loop whose unit twist gives ė = −e free of oscillation (delay_gain_cap), 0.2 "
        "one whose unit twist moves the camera up to 1.8x faster (IBVS in the demo); 0 = no cap.",
        default=0.2)

    def __post_init__(self) -> None:
        check_choice("gain_mode", self.gain_mode, GAIN_MODES)
        for name in ("gain", "gain_zero", "gain_inf"):
            check_range(name, getattr(self, name), 0.0, lo_open=True)
        check_range("gain_slope", self.gain_slope, 0.0)
        if self.gain_inf > self.gain_zero:
            raise ConfigError(f"gain_inf={self.gain_inf} must not exceed gain_zero={self.gain_zero}")
        check_range("max_linear_mps", self.max_linear_mps, 0.0)
        check_range("max_angular_rps", self.max_angular_rps, 0.0)
        check_range("gain_delay_cap", self.gain_delay_cap, 0.0, 2.0)


def gain_of(config: LoopConfig, error: float) -> float:
    """The gain λ the schedule of ``config`` gives for ``error`` (the controller's ``gain_error``)."""
    if config.gain_mode == "constant":
        return config.gain
    return adaptive_gain(error, config.gain_zero, config.gain_inf, config.gain_slope)


def delay_gain_cap(cap: float, loop_delay_s: float | None) -> float:
    """The largest gain λ a loop with period + delay ``T + τ = loop_delay_s`` keeps free of oscillation.

    Model: near the goal a controller's unit-gain twist makes the error decay as ``ė = −e`` (IBVS with its
    interaction matrix; CNS is trained to). The command computed from the image of time ``t_k`` reaches the
    robot ``τ`` later and is held for one period ``T``, so with ``τ = d·T`` the error at the images obeys

        e_{k+1} = e_k − g · e_{k−d},     g = λ·T.

    Its solutions all oscillate iff ``g > dᵈ / (d+1)ᵈ⁺¹`` (the sharp oscillation condition of delay difference
    equations; Győri & Ladas, *Oscillation Theory of Delay Differential Equations*, 1991), and it is stable iff
    ``g < 2 sin(π / (2(2d+1)))`` (Levin & May, 1976). In terms of ``λ·(T + τ) = g·(d+1)``:

    - no oscillation iff ``λ·(T + τ) ≤ (d / (d+1))ᵈ``, which falls from 1 (``d = 0``) to ``1/e ≈ 0.37``
      (``d → ∞``, the continuous ``ė = −λ e(t − τ)``); so ``λ·(T + τ) ≤ 1/e`` is monotone for every delay;
    - stability iff ``λ·(T + τ) < 2(d+1) sin(π / (2(2d+1)))``, between ``π/2`` and 2: the cap ``1/e`` keeps
      a margin of at least 4 on the gain.

    Without the cap, the IBVS default (adaptive, 2.5 /s at the goal) at a 0.1 s period and 0.15 s delay has
    ``λ·(T + τ) = 0.63``: stable but ringing, and with the speed limits and the bridge's acceleration ramp a
    limit cycle. The benchmark (T = 0.04 s, τ = 0) has ``λ·T ≤ 0.1``: the cap never binds there.

    The model's ``ė = −e`` is an assumption about the controller. In the demo's bags (IBVS, 7–8 Hz, 0.19 s
    image → robot) the commanded rotation rate was 1.7–1.9x ``λ`` times the camera's rotation error at the
    image's time, so the real ``λ·(T + τ)`` was that much above the cap: with the cap at 1/e every quiet run
    overshot the goal by 3–10 mm and rang; ``LoopConfig``'s default 0.2 (= 1/e / 1.8) keeps those runs
    monotone within 0.1 mm, for ~5 s more servo time (``docs/results/demo_latency.md``).

    Args:
        cap: the bound on ``λ·(T + τ)`` (``LoopConfig.gain_delay_cap``); 0 = no cap.
        loop_delay_s: ``T + τ`` (s); None or ≤ 0 = not measured yet (no cap).

    Returns:
        The largest gain allowed (1/s); ``inf`` when there is no cap.
    """
    if cap <= 0.0 or loop_delay_s is None or not loop_delay_s > 0.0:
        return math.inf
    return cap / loop_delay_s


class ObservationStage(Protocol):
    """Completes an observation before the controller sees it (:mod:`vs_controllers.core.inputs`)."""

    def set_goal(self, goal: Any) -> None: ...

    def prepare_goal(self, goal: Any) -> tuple[Any, str]:
        """(the completed goal, "") or (``goal``, why it cannot be completed yet)."""
        ...

    def prepare(self, obs: Any) -> tuple[Any, str]:
        """(the completed observation, "") or (``obs``, why the controller cannot run on it yet)."""
        ...


class StopPolicy(Protocol):
    """When a run has converged, from the stream of observations (e.g. :class:`PixelStopPolicy`)."""

    def reset(self) -> None: ...

    def update(self, obs: Any, t: float | None = None) -> bool: ...


def valid_rows(obs: Any) -> int:
    """Usable rows of a keypoint observation (``Correspondences.num_valid``)."""
    return int(obs.num_valid)


@dataclass
class LoopStep:
    """What one observation gave.

    Attributes:
        v_c: (6,) command, camera frame (m/s, rad/s): gain and limits applied; zeros without a twist.
        output: the controller's step (unit-gain twist), None when the frame was lost.
        lost: this frame was lost (no observation or fewer than ``min_valid`` usable rows).
        give_up: ``lost_patience`` frames in a row were lost.
        stop: the stop policy says the run has converged.
        gain, clip_scale: the gain applied and the speed-limit scale (1 = not limited).
        controller_ms: wall time of ``controller.compute`` (ms).
        loop_delay_s: the loop's ``T + τ`` estimate the gain cap used (None until measured).
        waiting: an input stage could not complete this observation: the step is a zero twist with the stage's
            reason (:attr:`reason`), and the controller did not run.
    """

    v_c: np.ndarray
    output: ControlOutput | None = None
    lost: bool = False
    give_up: bool = False
    stop: bool = False
    gain: float = float("nan")
    clip_scale: float = 1.0
    controller_ms: float = 0.0
    loop_delay_s: float | None = None
    waiting: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The controller computed a finite command this step."""
        return self.output is not None and self.output.ok

    @property
    def error(self) -> float:
        """The controller's error this step (NaN when lost)."""
        return float("nan") if self.output is None else float(self.output.error)

    @property
    def reason(self) -> str:
        if self.output is None:
            return "lost input: too few valid correspondences"
        return self.output.reason


class ServoLoop:
    """One controller, its gain schedule, speed limits, stop policy and lost-input rule (module docstring).

    Args:
        controller: implements :class:`~vs_controllers.core.protocol.Controller` (unit-gain twist).
        config: gain schedule and speed limits; may be replaced at run time (``loop.config = ...``).
        stop_policy: converged decision; None = never stops by itself.
        min_valid: fewer usable rows than this (``observation_size``) is a lost frame.
        lost_patience: lost frames in a row before ``give_up``.
        observation_size: usable rows of an observation (default :func:`valid_rows`).
        inputs: the pipeline's input stages, in order (:func:`vs_controllers.core.inputs.make_inputs`).

    The loop's ``T + τ`` (:attr:`loop_delay_s`) is the median of the last :attr:`TIMING_WINDOW` steps' period
    (between the ``t`` of successive steps) plus delay (``delay_s`` given to :meth:`step`, plus the
    controller's own compute time; 0 when the caller gives none, as the benchmark, whose world waits).
    """

    #: Steps the ``T + τ`` estimate is the median of (a stalled frame does not swing the gain).
    TIMING_WINDOW = 15

    def __init__(self, controller: Controller, config: LoopConfig | None = None, *,
                 stop_policy: StopPolicy | None = None, min_valid: int = 0, lost_patience: int = 1 << 30,
                 observation_size: Callable[[Any], int] = valid_rows,
                 inputs: Sequence[ObservationStage] = ()) -> None:
        self.controller = controller
        self.config = config or LoopConfig()
        self.stop_policy = stop_policy
        self.min_valid = int(min_valid)
        self.lost_patience = int(lost_patience)
        self.observation_size = observation_size
        self.inputs = tuple(inputs)
        self._pending_goal: Any | None = None  # a goal the input stages have not completed yet
        self.lost_count = 0
        self._timing: deque[float] = deque(maxlen=self.TIMING_WINDOW)
        self._last_t: float | None = None

    def set_goal(self, goal: Any) -> None:
        """Give the controller its goal (resets its state) and restart the stop policy.

        With input stages the controller gets the goal the stages complete, on the first step they can
        (module docstring, 1b); a controller's error on that goal is then that step's zero-twist reason.
        """
        self._pending_goal = None
        for stage in self.inputs:
            stage.set_goal(goal)
        if self.inputs:
            self._pending_goal = goal
        else:
            self.controller.set_goal(goal)
        self.reset()

    def reset(self, controller: bool = False) -> None:
        """Restart the stop policy and the lost count (and the controller's recurrent state if asked)."""
        if controller:
            self.controller.reset()
        if self.stop_policy is not None:
            self.stop_policy.reset()
        self.lost_count = 0
        self._timing.clear()
        self._last_t = None

    @property
    def loop_delay_s(self) -> float | None:
        """The measured ``T + τ`` (s) the gain cap uses; None until a period has been seen."""
        return statistics.median(self._timing) if self._timing else None

    def command(self, out: ControlOutput) -> tuple[np.ndarray, float, float]:
        """The command of a controller step: (v_c with gain and limits, gain, clip scale); zeros if not ok."""
        if not out.ok:
            return np.zeros(6), float("nan"), 1.0
        x = out.error if out.gain_error is None else out.gain_error
        lam = min(gain_of(self.config, x), delay_gain_cap(self.config.gain_delay_cap, self.loop_delay_s))
        v_c, scale = clip_twist(lam * np.asarray(out.v_c, dtype=np.float64), self.config.max_linear_mps,
                                self.config.max_angular_rps)
        return v_c, lam, scale

    def step(self, obs: Any | None, t: float | None = None, delay_s: float | None = None) -> LoopStep:
        """Feed one observation (None = nothing observed this frame) at time ``t`` (s).

        Args:
            obs: the observation, or None.
            t: the time of this step (s; any clock, one per run): the stop policy's and the period's.
            delay_s: how old the observation's image is as the step begins (s), when real time passes while
                the loop computes (the node); the controller's compute time is added to it. None = 0.
        """
        period = None if t is None or self._last_t is None else float(t) - self._last_t
        self._last_t = None if t is None else float(t)
        n = 0 if obs is None else self.observation_size(obs)
        if obs is None or n < self.min_valid:
            self.lost_count += 1
            res = LoopStep(v_c=np.zeros(6), lost=True)
            self._add_timing(period, 0.0 if delay_s is None else delay_s)
        else:
            self.lost_count = 0
            t0 = time.perf_counter()
            obs, waiting = self._prepare(obs)
            out = ControlOutput.zero(waiting) if waiting else self.controller.compute(obs)
            ms = 1e3 * (time.perf_counter() - t0)
            self._add_timing(period, None if delay_s is None else delay_s + ms * 1e-3)
            if out.ok and not np.all(np.isfinite(out.v_c)):
                out = ControlOutput.zero(out.reason or "controller produced a non-finite twist", out.error)
            v_c, lam, scale = self.command(out)
            if not np.all(np.isfinite(v_c)):
                out = ControlOutput.zero("non-finite twist after the gain schedule", out.error)
                v_c = np.zeros(6)
            res = LoopStep(v_c=v_c, output=out, gain=lam, clip_scale=scale, controller_ms=ms,
                           loop_delay_s=self.loop_delay_s, waiting=bool(waiting), info=dict(out.info))
        res.give_up = self.lost_count >= self.lost_patience
        if self.stop_policy is not None and obs is not None and n > 0:
            res.stop = bool(self.stop_policy.update(obs, t))
        return res

    def _prepare(self, obs: Any) -> tuple[Any, str]:
        """``obs`` through the input stages: (completed observation, "") or (obs, the first stage's reason);
        a goal still pending is completed and given to the controller first."""
        if self._pending_goal is not None:
            goal = self._pending_goal
            for stage in self.inputs:
                goal, reason = stage.prepare_goal(goal)
                if reason:
                    return obs, reason
            try:
                self.controller.set_goal(goal)
            except VisualServoError as err:
                return obs, f"cannot use the goal: {err}"
            self._pending_goal = None
        for stage in self.inputs:
            obs, reason = stage.prepare(obs)
            if reason:
                return obs, reason
        return obs, ""

    def _add_timing(self, period: float | None, delay: float | None) -> None:
        """One sample of ``T + τ``: this step's period plus its delay (0 when not given)."""
        if period is not None and math.isfinite(period) and period > 0.0:
            d = 0.0 if delay is None or not math.isfinite(delay) else max(float(delay), 0.0)
            self._timing.append(period + d)
