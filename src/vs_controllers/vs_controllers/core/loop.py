"""The servo loop every pipeline shares: controller twist → gain schedule → speed limits, stop policy, lost input.

A controller returns its own twist at unit gain and the error it minimises (:class:`ControlOutput`); this
loop turns that into the command, the same way for every pipeline and every harness — the controller node
(through :class:`~vs_controllers.core.session.ServoSession`, which the demo drives), and the benchmark
(:func:`~vs_controllers.benchmark.episode.run_episode`). Per observation ``obs`` at time ``t``:

1. lost input: no observation, or fewer than ``min_valid`` usable rows (``observation_size``), counts as a
   lost frame: no controller call, zero twist; ``lost_patience`` lost frames in a row give up;
2. otherwise the controller computes ``v₁`` (unit gain) and reports ``gain_error`` (default: its error);
3. gain schedule: ``λ = gain`` (constant), or ViSP's adaptive gain
   ``λ(x) = (λ₀ − λ∞) exp(−λ'₀ x / (λ₀ − λ∞)) + λ∞`` (``vpAdaptiveGain``) on ``x = gain_error``;
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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError

from vs_controllers.core.protocol import Controller, ControlOutput

__all__ = ["GAIN_MODES", "LoopConfig", "LoopStep", "ServoLoop", "StopPolicy", "adaptive_gain", "clip_twist",
           "gain_of", "valid_rows"]

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

    def __post_init__(self) -> None:
        check_choice("gain_mode", self.gain_mode, GAIN_MODES)
        for name in ("gain", "gain_zero", "gain_inf"):
            check_range(name, getattr(self, name), 0.0, lo_open=True)
        check_range("gain_slope", self.gain_slope, 0.0)
        if self.gain_inf > self.gain_zero:
            raise ConfigError(f"gain_inf={self.gain_inf} must not exceed gain_zero={self.gain_zero}")
        check_range("max_linear_mps", self.max_linear_mps, 0.0)
        check_range("max_angular_rps", self.max_angular_rps, 0.0)


def gain_of(config: LoopConfig, error: float) -> float:
    """The gain λ the schedule of ``config`` gives for ``error`` (the controller's ``gain_error``)."""
    if config.gain_mode == "constant":
        return config.gain
    return adaptive_gain(error, config.gain_zero, config.gain_inf, config.gain_slope)


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
    """

    v_c: np.ndarray
    output: ControlOutput | None = None
    lost: bool = False
    give_up: bool = False
    stop: bool = False
    gain: float = float("nan")
    clip_scale: float = 1.0
    controller_ms: float = 0.0
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
    """

    def __init__(self, controller: Controller, config: LoopConfig | None = None, *,
                 stop_policy: StopPolicy | None = None, min_valid: int = 0, lost_patience: int = 1 << 30,
                 observation_size: Callable[[Any], int] = valid_rows) -> None:
        self.controller = controller
        self.config = config or LoopConfig()
        self.stop_policy = stop_policy
        self.min_valid = int(min_valid)
        self.lost_patience = int(lost_patience)
        self.observation_size = observation_size
        self.lost_count = 0

    def set_goal(self, goal: Any) -> None:
        """Give the controller its goal (resets its state) and restart the stop policy."""
        self.controller.set_goal(goal)
        self.reset()

    def reset(self, controller: bool = False) -> None:
        """Restart the stop policy and the lost count (and the controller's recurrent state if asked)."""
        if controller:
            self.controller.reset()
        if self.stop_policy is not None:
            self.stop_policy.reset()
        self.lost_count = 0

    def command(self, out: ControlOutput) -> tuple[np.ndarray, float, float]:
        """The command of a controller step: (v_c with gain and limits, gain, clip scale); zeros if not ok."""
        if not out.ok:
            return np.zeros(6), float("nan"), 1.0
        x = out.error if out.gain_error is None else out.gain_error
        lam = gain_of(self.config, x)
        v_c, scale = clip_twist(lam * np.asarray(out.v_c, dtype=np.float64), self.config.max_linear_mps,
                                self.config.max_angular_rps)
        return v_c, lam, scale

    def step(self, obs: Any | None, t: float | None = None) -> LoopStep:
        """Feed one observation (None = nothing observed this frame) at time ``t`` (s)."""
        n = 0 if obs is None else self.observation_size(obs)
        if obs is None or n < self.min_valid:
            self.lost_count += 1
            res = LoopStep(v_c=np.zeros(6), lost=True)
        else:
            self.lost_count = 0
            t0 = time.perf_counter()
            out = self.controller.compute(obs)
            ms = 1e3 * (time.perf_counter() - t0)
            if out.ok and not np.all(np.isfinite(out.v_c)):
                out = ControlOutput.zero(out.reason or "controller produced a non-finite twist", out.error)
            v_c, lam, scale = self.command(out)
            if not np.all(np.isfinite(v_c)):
                out = ControlOutput.zero("non-finite twist after the gain schedule", out.error)
                v_c = np.zeros(6)
            res = LoopStep(v_c=v_c, output=out, gain=lam, clip_scale=scale, controller_ms=ms,
                           info={**out.info, "gain": lam, "clip_scale": scale})
        res.give_up = self.lost_count >= self.lost_patience
        if self.stop_policy is not None and obs is not None and n > 0:
            res.stop = bool(self.stop_policy.update(obs, t))
        return res
