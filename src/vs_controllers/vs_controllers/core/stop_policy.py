"""When to stop servoing: CNS's pixel stop policy, re-done from its description.

The error is a robust, temporally smoothed mean of the point errors ‖x − x*‖ (normalised units):
each goal keypoint carries a weight that follows w ← γ w + observed (γ = 0.95, started at
1/(1 − γ) = 20 the first time the point is seen, so a point that flickers in and out counts less
than one that is always there), and points whose weighted error w·d is at or above the 90th
percentile are dropped (mismatches that RANSAC let through). The episode stops once this error is
below ``threshold`` and has stopped improving. Two rules (``StopPolicyConfig.rule``):

- ``cns``, the CNS protocol (the benchmark): the time spent within 1.1·best + ``band_abs`` (5·10⁻⁴) of its
  best value since the last 10 % improvement exceeds ``waiting_time_s``. An error falling by less than 10 %
  per ``waiting_time_s`` counts as settled there, and so does one that rises and falls inside that band.
- ``settled``, the servo session's (``SessionConfig.stop_rule``): the error has *stopped moving*. It must stay
  for ``waiting_time_s`` inside the range [low, high] it had reached when that time began — no new low, no
  new high — and that range must fit in 1.1·low + ``band_abs`` (else a new range starts from the sample that
  left it). A slow approach keeps making new lows, a drift away new highs, an overshoot leaves the range;
  a settled error's noise stops making records within a few samples. (Under ``cns`` a delay-capped demo loop
  at 5 Hz, its error falling 7 % in 1 s, was accepted at 2.5 mm; an overshoot inside the band at 0.6 mm.)
  A record must beat the range by more than ``resolution``. An error that converges without a noise floor
  (goal-image tracking, ``TrackConfig.goal_lk_px``) makes new lows forever, geometrically smaller ones. The
  rule then stops once the error has moved by less than ``resolution`` in ``waiting_time_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_perception.core.types import Correspondences

__all__ = ["STOP_RULES", "PixelStopPolicy", "StopPolicyConfig", "time_below", "weighted_pixel_error"]

# CNS rule: a new minimum must beat the old one by this factor (so noise does not keep resetting the clock).
_IMPROVEMENT = 0.9
# The plateau band above its low: relative, plus StopPolicyConfig.band_abs (normalised units).
_BAND_REL = 1.1
#: The stop rules of :class:`StopPolicyConfig` (module docstring).
STOP_RULES = ("cns", "settled")


@dataclass(frozen=True)
class StopPolicyConfig:
    """Pixel stop-policy settings; the defaults are the CNS benchmark protocol (0.8 s / 0.01).

    The one definition of the stop policy: the benchmark's protocol (``BenchmarkConfig.stop_*``) takes its
    defaults from here; the servo session (``SessionConfig``) overrides the plateau time and threshold.
    """

    waiting_time_s: float = describe("Stop after the error has plateaued for this long (s).", default=0.8)
    threshold: float = describe("Only stop while the error is below this (normalised image units).", default=0.01)
    forgetting: float = describe("Per-keypoint weight forgetting factor γ in w ← γ w + observed.", default=0.95)
    drop_percentile: float = describe("Drop points whose weighted error is at or above this percentile.",
                                      default=90.0)
    rule: str = describe("cns: the CNS protocol's plateau (below 1.1 x best + band_abs since the last 10 % "
                         "improvement); settled: no new low or high for waiting_time_s, range within the band.",
                         default="cns")
    band_abs: float = describe("Absolute part of the plateau band 1.1 x low + this (normalised image units).",
                               default=5e-4)
    resolution: float = describe("settled rule: a new low or high must pass the range by more than this "
                                 "(normalised image units); 0 = any.", default=0.0)

    def __post_init__(self) -> None:
        check_range("waiting_time_s", self.waiting_time_s, 0.0)
        check_range("threshold", self.threshold, 0.0, lo_open=True)
        check_range("forgetting", self.forgetting, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("drop_percentile", self.drop_percentile, 0.0, 100.0, lo_open=True)
        check_choice("rule", self.rule, STOP_RULES)
        check_range("band_abs", self.band_abs, 0.0)
        check_range("resolution", self.resolution, 0.0)


def weighted_pixel_error(d: np.ndarray, w: np.ndarray, observed: np.ndarray, percentile: float = 90.0) -> float:
    """Weighted mean of point errors over observed points, without the worst weighted ones.

    Args:
        d: (N,) point errors ‖x − x*‖ (NaN allowed where not observed).
        w: (N,) non-negative weights.
        observed: (N,) bool.
        percentile: points with w·d ≥ this percentile (over observed points) are dropped; if that
            would drop all (equal values), all are kept; 100 keeps all.

    Returns:
        The error, NaN when nothing is observed.
    """
    obs = np.asarray(observed, bool) & np.isfinite(d)
    if not obs.any():
        return float("nan")
    d, w = np.asarray(d, float)[obs], np.asarray(w, float)[obs]
    wd = w * d
    keep = wd < np.percentile(wd, percentile) if percentile < 100.0 else np.ones(len(wd), bool)
    if not keep.any() or w[keep].sum() <= 0:
        keep = np.ones_like(keep)
    if w[keep].sum() <= 0:
        return float(np.mean(d[keep]))
    return float(np.sum(wd[keep]) / np.sum(w[keep]))


def time_below(e0: float, e1: float, level: float, dt: float) -> float:
    """Time within [t, t + dt] that a linearly interpolated error from e0 to e1 spends at or below ``level``."""
    if e0 <= level and e1 <= level:
        return dt
    if e0 > level and e1 > level:
        return 0.0
    lo, hi = min(e0, e1), max(e0, e1)
    return dt * (level - lo) / (hi - lo)


class PixelStopPolicy:
    """Stateful stop decision over a stream of correspondences of one goal (see module docstring)."""

    def __init__(self, config: StopPolicyConfig | None = None) -> None:
        self.config = config or StopPolicyConfig()
        self.reset()

    def reset(self) -> None:
        """Forget weights and history (call on a new goal or episode)."""
        self._w: np.ndarray | None = None
        self._seen: np.ndarray | None = None
        self._min = np.inf
        self._max = -np.inf  # settled rule: the current range [_min, _max] and when it last grew
        self._since = 0.0
        self._hold = 0.0
        self._prev: tuple[float, float] | None = None  # (t, error)
        self.error = float("nan")

    @property
    def hold_time(self) -> float:
        """Seconds the error has spent on its current plateau."""
        return self._hold

    def update_error(self, error: float, t: float) -> bool:
        """Feed one smoothed error at time ``t`` (s); True when the episode should stop."""
        c = self.config
        prev, self._prev = self._prev, (t, error)
        self.error = error
        if not np.isfinite(error) or error > c.threshold:
            self._min, self._max, self._hold = np.inf, -np.inf, 0.0
            return False
        if c.rule == "settled":
            return self._settled(error, t)
        if error < _IMPROVEMENT * self._min:
            self._min, self._hold = error, 0.0
            return False
        if prev is not None and np.isfinite(prev[1]):
            level = _BAND_REL * self._min + c.band_abs
            self._hold += time_below(prev[1], error, level, max(t - prev[0], 0.0))
        return self._hold > c.waiting_time_s

    def _settled(self, error: float, t: float) -> bool:
        """The ``settled`` rule: a new low or high restarts the clock; a range wider than the band restarts
        the range at this sample."""
        res = self.config.resolution
        if error < self._min - res or error > self._max + res:
            self._min, self._max = min(self._min, error), max(self._max, error)
            if self._max > _BAND_REL * self._min + self.config.band_abs:
                self._min = self._max = error
            self._since = t
        self._hold = max(t - self._since, 0.0)
        return self._hold > self.config.waiting_time_s

    def update(self, obs: Correspondences, t: float | None = None) -> bool:
        """Update the weights with one observation at time ``t`` (default ``obs.stamp``) and decide.

        Returns:
            True when the error is below the threshold and has plateaued for ``waiting_time_s``.
        """
        c = self.config
        n = len(obs)
        if self._w is None or self._seen is None or len(self._w) != n:
            self._w, self._seen = np.zeros(n), np.zeros(n, bool)
        observed = obs.valid
        first = observed & ~self._seen
        self._w = c.forgetting * self._w + observed
        self._w[first] = 1.0 / (1.0 - c.forgetting)
        self._seen |= observed
        x = obs.camera.normalize(np.where(observed[:, None], obs.current_uv, 0.0))
        d = np.linalg.norm(x - obs.camera.normalize(obs.goal_uv), axis=1)
        err = weighted_pixel_error(d, self._w, observed, c.drop_percentile)
        return self.update_error(err, obs.stamp if t is None else t)
