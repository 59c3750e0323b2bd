"""Depth-error model: what a run-time relative-depth estimate does to true keypoint depths.

Depth-PC trains on exact camera-frame depths ``Z`` of simulated points but runs on an estimate
(DepthAnythingV2 in the paper, §III-C), which is only *relatively* right: the right order over most of
the image, an unknown monotone warp of it (an estimator predicts relative inverse depth; the min-max
normalisation of §III-A removes only an affine map), noise, missing values and smearing across object
boundaries. Training applies this model to the depth channel so the policy meets such depths before it
meets the estimator; the benchmark applies the same model to rendered depth. This module is the one
place both read.

Per call (one frame), in this order:

1. **Monotone distortion** ``z' = z_lo + f(t)·(z_hi − z_lo)``, ``t = (z − z_lo)/(z_hi − z_lo)``, with
   ``f(t) = (1 − a)·t^γ + a·PL(t)``: ``γ = exp(U(−distortion, distortion))``, ``PL`` a piecewise-linear
   map through ``knots`` random strictly increasing knots, ``a ~ U(0, distortion)`` clipped to 1. ``f`` is
   strictly increasing with ``f(0) = 0``, ``f(1) = 1``: the order and the range survive.
2. **Edge blur**: a keypoint with a pixel neighbour (within ``edge_radius_px``) whose depth differs by
   more than ``edge_jump`` of the frame's depth range takes, with probability ``edge_blur``, a random
   blend ``(1 − w)·z_i + w·mean(z_neighbourhood)``, ``w ~ U(0, 1)`` (estimators smooth across edges).
3. **Noise** ``z'' = z'·(1 + ε_m) + ε_a·(z_hi − z_lo)``, ``ε_m ~ N(0, mult_noise²)``,
   ``ε_a ~ N(0, add_noise²)``.
4. **Holes**: a fraction ``hole_ratio`` of the keypoints become NaN (no estimate there).

Inputs that are NaN stay NaN. Units follow the input (the output keeps its scale, larger = farther).

The warp of step 1 is drawn afresh per call unless the caller passes one (:func:`sample_warp`,
:class:`BlendedWarp`): the training environment keeps an episode's warps so that views close to the goal get
an estimate close to the goal's, as an estimator does on nearly the same image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from vs_common.core.config import check_range, describe
from vs_common.core.errors import InputError

__all__ = ["BlendedWarp", "DepthErrorConfig", "PowerPLWarp", "Warp", "apply_depth_error", "sample_warp"]

#: A strictly increasing map of [0, 1] onto itself (step 1 of the module docstring).
Warp = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DepthErrorConfig:
    """Strength of each error of :func:`apply_depth_error` (0 turns that error off)."""

    distortion: float = describe(
        "Monotone warp strength: exponent γ = exp(U(±this)) and piecewise-linear share U(0, this) (0 = none).",
        default=0.5)
    knots: int = describe("Interior knots of the random piecewise-linear part of the warp.", default=3)
    mult_noise: float = describe("Std of the multiplicative noise (fraction of the depth).", default=0.005)
    add_noise: float = describe("Std of the additive noise (fraction of the frame's depth range).", default=0.01)
    hole_ratio: float = describe("Fraction of keypoints with no depth (NaN).", default=0.02)
    edge_blur: float = describe(
        "Probability that a keypoint next to a depth discontinuity is blended with its neighbourhood.",
        default=0.5)
    edge_radius_px: float = describe("Pixel radius of a keypoint's neighbourhood for the edge blur.", default=12.0)
    edge_jump: float = describe("Depth step (fraction of the frame's depth range) that counts as an edge.",
                                default=0.1)

    def __post_init__(self) -> None:
        check_range("distortion", self.distortion, 0.0)
        check_range("knots", self.knots, 0)
        check_range("mult_noise", self.mult_noise, 0.0)
        check_range("add_noise", self.add_noise, 0.0)
        check_range("hole_ratio", self.hole_ratio, 0.0, 1.0)
        check_range("edge_blur", self.edge_blur, 0.0, 1.0)
        check_range("edge_radius_px", self.edge_radius_px, 0.0)
        check_range("edge_jump", self.edge_jump, 0.0)


@dataclass(frozen=True)
class PowerPLWarp:
    """``f(t) = (1 − a)·t^γ + a·PL(t)`` (module docstring, step 1); picklable, so journals can hold it."""

    gamma: float
    a: float
    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return (1.0 - self.a) * np.power(t, self.gamma) + self.a * np.interp(t, self.xs, self.ys)


@dataclass(frozen=True)
class BlendedWarp:
    """``(1 − β)·first + β·second``, β in [0, 1]: again strictly increasing from 0 to 1."""

    first: Warp
    second: Warp
    beta: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta <= 1.0:
            raise InputError(f"blend weight {self.beta} is not in [0, 1]")

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return (1.0 - self.beta) * self.first(t) + self.beta * self.second(t)


def sample_warp(rng: np.random.Generator, strength: float, knots: int = 3) -> Warp:
    """A random strictly increasing map of [0, 1] onto itself (any shape in, same shape out); ``strength = 0``
    is the identity."""
    if strength <= 0:
        return PowerPLWarp(1.0, 0.0, (0.0, 1.0), (0.0, 1.0))
    gamma = float(np.exp(rng.uniform(-strength, strength)))
    a = min(1.0, float(rng.uniform(0.0, strength)))
    xs = np.concatenate([[0.0], np.sort(rng.uniform(0, 1, knots)), [1.0]])
    # Dirichlet increments are positive, so the knots' values rise strictly from 0 to 1.
    ys = np.concatenate([[0.0], np.cumsum(rng.dirichlet(np.ones(knots + 1)))])
    ys[-1] = 1.0
    return PowerPLWarp(gamma, a, tuple(map(float, xs)), tuple(map(float, ys)))


def apply_depth_error(uv: np.ndarray, z: np.ndarray, rng: np.random.Generator,
                      cfg: DepthErrorConfig | None = None, warp: Warp | None = None) -> np.ndarray:
    """One frame's keypoint depths as a relative-depth estimator might give them.

    Args:
        uv: (N, 2) keypoint pixels (for the edge blur's neighbourhoods).
        z: (N,) true depths (any positive scale, larger = farther), NaN unknown.
        rng: the caller's generator (same seed → same errors).
        cfg: error strengths (default :class:`DepthErrorConfig`).
        warp: the monotone distortion of this frame (None: a fresh :func:`sample_warp` of ``cfg.distortion``);
            used only when ``cfg.distortion > 0``.

    Returns:
        (N,) float64 erroneous depths, NaN for holes and for unknown inputs.

    Raises:
        InputError: ``uv`` and ``z`` disagree in length.
    """
    cfg = cfg or DepthErrorConfig()
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(z, dtype=np.float64).reshape(-1).copy()
    if len(uv) != len(z):
        raise InputError(f"{len(uv)} keypoints but {len(z)} depths")
    ok = np.isfinite(z) & np.all(np.isfinite(uv), axis=1)
    z[~ok] = np.nan
    if ok.sum() < 2:
        return z
    lo, hi = float(z[ok].min()), float(z[ok].max())
    span = hi - lo
    if span > 0 and cfg.distortion > 0:
        f = warp if warp is not None else sample_warp(rng, cfg.distortion, cfg.knots)
        z[ok] = lo + f((z[ok] - lo) / span) * span
    if cfg.edge_blur > 0 and cfg.edge_radius_px > 0 and span > 0:
        z[ok] = _edge_blur(uv[ok], z[ok], rng, cfg, span)
    if cfg.mult_noise > 0:
        z[ok] *= 1.0 + rng.normal(0.0, cfg.mult_noise, int(ok.sum()))
    if cfg.add_noise > 0:
        z[ok] += rng.normal(0.0, cfg.add_noise, int(ok.sum())) * max(span, 1e-9)
    if cfg.hole_ratio > 0:
        z[rng.uniform(size=len(z)) < cfg.hole_ratio] = np.nan
    return z


def _edge_blur(uv: np.ndarray, z: np.ndarray, rng: np.random.Generator, cfg: DepthErrorConfig,
               span: float) -> np.ndarray:
    """Step 2 of the model on valid keypoints: blend edge keypoints with their pixel neighbourhood."""
    pairs = cKDTree(uv).query_pairs(cfg.edge_radius_px, output_type="ndarray")
    if len(pairs) == 0:
        return z
    i, j = np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])
    n = len(z)
    jump = np.zeros(n)
    np.maximum.at(jump, i, np.abs(z[j] - z[i]))
    # Neighbourhood mean including the keypoint itself.
    mean = (np.bincount(i, weights=z[j], minlength=n) + z) / (np.bincount(i, minlength=n) + 1.0)
    blend = (rng.uniform(size=n) < cfg.edge_blur) & (jump > cfg.edge_jump * span)
    w = rng.uniform(size=n)
    return np.where(blend, (1.0 - w) * z + w * mean, z)
