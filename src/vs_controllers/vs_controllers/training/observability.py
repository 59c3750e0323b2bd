"""Which goal keypoints a simulated observer sees: the kinetic Monte Carlo (KMC) process of CNS training.

Paper Eq. 5 and §IV-B (authors' ``ObservationSampler``): smooth Perlin random walkers over the goal image
set each point's observation probability; each point toggles between observed and missing after
exponential dwell times that follow it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KMCObservability"]


class _Perlin1d:
    """Vectorised 1-D gradient noise: random phase, gradients U(−1, 1) per integer cell, quintic fade."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], cells: int = 64) -> None:
        self.phase = rng.uniform(0, 1, size=shape)
        self.grad = rng.uniform(-1, 1, size=(*shape, cells))
        self.cells = cells

    def __call__(self, t: np.ndarray) -> np.ndarray:
        s = t + self.phase
        i = np.floor(s).astype(np.int64)
        w = s - i
        g0 = np.take_along_axis(self.grad, (i % self.cells)[..., None], -1)[..., 0]
        g1 = np.take_along_axis(self.grad, ((i + 1) % self.cells)[..., None], -1)[..., 0]
        fade = w ** 3 * (w * (w * 6 - 15) + 10)
        return g0 * w + fade * (g1 * (w - 1) - g0 * w)


class KMCObservability:
    """Which goal keypoints are observed: a two-state kinetic Monte Carlo process per point.

    Three smooth random walkers (Perlin noise, amplitude = the goal points' extent) move over the goal
    image as the camera moves; a point near a walker is likely observable, ``p = max_w exp(−d²/2σ²)``
    with ``σ = 0.15 · bbox diagonal``. A point stays observed for an exponential time of mean ``τ·p``
    and missing for mean ``τ·(1−p)``, ``τ ~ U(2.5, 5)`` s (paper Eq. 5 and §IV-B).

    Args:
        goal_xy: (N, 2) goal keypoints in normalised image coordinates.
        rng: the environment's generator (the process draws from it).
        num_walkers: number of random walkers.
    """

    def __init__(self, goal_xy: np.ndarray, rng: np.random.Generator, num_walkers: int = 3) -> None:
        self.rng = rng
        lo, hi = goal_xy.min(0), goal_xy.max(0)
        self.amp = np.maximum(hi - lo, 1e-3)
        self.centre = np.median(goal_xy, 0) + rng.uniform(-0.3, 0.3, size=(num_walkers, 2)) * self.amp
        self.noise = _Perlin1d(rng, (num_walkers, 2))
        self.sigma = 0.15 * np.linalg.norm(hi - lo) + 1e-6
        self.goal_xy = goal_xy
        n = len(goal_xy)
        self.observed = rng.uniform(size=n) < 0.5
        self.tau = rng.uniform(2.5, 5.0, size=n)
        self.t_next = np.zeros(n)
        self.walk_t = 0.0
        self._p = self._prob()
        self._draw(np.ones(n, dtype=bool), 0.0)

    def _prob(self) -> np.ndarray:
        walkers = self.centre + self.noise(np.full((len(self.centre), 2), self.walk_t)) * self.amp
        d2 = ((self.goal_xy[:, None, :] - walkers[None]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * self.sigma ** 2)).max(1)

    def _draw(self, which: np.ndarray, t: float) -> None:
        mean = self.tau * np.where(self.observed, self._p, 1.0 - self._p)
        self.t_next[which] = t + (mean * -np.log(self.rng.uniform(1e-9, 1.0, size=len(mean))))[which]

    def step(self, t: float, motion: float) -> np.ndarray:
        """Advance to time ``t`` (s) after a camera motion ``motion`` (walker time units); returns (N,) observed.

        The walkers' time is the accumulated camera motion (paper Eq. 6); the caller converts rotation and
        translation into it.
        """
        self.walk_t += motion
        self._p = self._prob()
        flip = t >= self.t_next
        self.observed[flip] = ~self.observed[flip]
        self._draw(flip, t)
        return self.observed.copy()
