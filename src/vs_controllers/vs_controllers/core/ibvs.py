"""Classic image-based visual servoing (IBVS) with point features.

Reference: F. Chaumette, S. Hutchinson, "Visual servo control, Part I: basic approaches", IEEE RAM
2006 (eqs. 1–11). For a normalised image point x = (x, y) of a static 3-D point at depth Z in the
camera frame, and the camera twist v_c = (v, ω) in the camera frame, ẋ = L_x v_c with (eq. 11)

    L_x = [ -1/Z    0    x/Z    x y     -(1 + x²)    y ]
          [   0   -1/Z   y/Z   1 + y²     -x y      -x ]

Stacking N points gives e = x − x* ∈ R²ᴺ (interleaved x₀, y₀, x₁, y₁, …) and L ∈ R²ᴺˣ⁶; the control
law is v_c = −λ L̂⁺ e (eq. 5), where L̂ is the interaction matrix at the desired pose (L*), at the
current pose (L), or their mean ½(L + L*) (Malis' choice, eq. 11 discussion), with depth from the
goal depth map, the current depth map, or a constant prior. The controller returns −L̂⁺ e (λ = 1); the
servo loop (:mod:`vs_controllers.core.loop`) applies λ, constant or ViSP's adaptive gain on ‖e‖∞ (reported
as ``gain_error``), and the speed limits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from vs_common.core.camera import median_depth_m
from vs_common.core.config import check_choice, check_range, describe, from_mapping
from vs_common.core.errors import InputError
from vs_perception.core.types import Correspondences

from vs_controllers.core.protocol import ControlOutput

__all__ = ["IBVSConfig", "IBVSController", "ibvs_twist", "interaction_matrix"]

INTERACTIONS = ("desired", "current", "mean")
DEPTH_SOURCES = ("goal_depth", "current_depth", "prior")


def interaction_matrix(x: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Point-feature interaction matrix (Chaumette & Hutchinson 2006, eq. 11).

    Args:
        x: (N, 2) normalised image coordinates (x, y) = ((u − cx)/fx, (v − cy)/fy).
        Z: (N,) depths in the camera frame (m), > 0.

    Returns:
        L: (2N, 6), rows 2i and 2i+1 belong to point i; columns act on v_c = (vx, vy, vz, ωx, ωy, ωz).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 2)
    Z = np.asarray(Z, dtype=np.float64).reshape(-1)
    if len(Z) != len(x):
        raise InputError(f"interaction_matrix: {len(x)} points but {len(Z)} depths")
    xs, ys = x[:, 0], x[:, 1]
    iz = 1.0 / Z
    zero = np.zeros_like(xs)
    Lx = np.stack([-iz, zero, xs * iz, xs * ys, -(1.0 + xs**2), ys], axis=1)
    Ly = np.stack([zero, -iz, ys * iz, 1.0 + ys**2, -xs * ys, -xs], axis=1)
    return np.stack([Lx, Ly], axis=1).reshape(-1, 6)


def ibvs_twist(e: np.ndarray, L: np.ndarray) -> np.ndarray:
    """The IBVS law v_c = −λ L⁺ e (Chaumette & Hutchinson 2006, eq. 5) at unit gain, λ = 1: the servo loop
    applies λ (``core.loop.gain_of``), as for every controller.

    Args:
        e: (2N,) feature error x − x*, interleaved like the rows of ``L``.
        L: (2N, 6) interaction-matrix estimate.

    Returns:
        (6,) camera twist (m/s, rad/s) in the camera frame, per unit gain.
    """
    return -(np.linalg.pinv(L) @ np.asarray(e, dtype=np.float64).reshape(-1))


@dataclass(frozen=True)
class IBVSConfig:
    """IBVS controller settings."""

    interaction: str = describe(
        "Interaction matrix: desired (L* at the goal), current (L at the current points) or mean (½(L + L*)).",
        default="mean")
    depth_source: str = describe(
        "Depth in L: goal_depth (goal depth map for every point), current_depth (current depth map, goal "
        "depth where unknown) or prior (the constant depth_prior_m). L* always uses the goal depth unless prior.",
        default="goal_depth")
    depth_prior_m: float = describe(
        "Constant depth (m) for depth_source=prior and for points with no depth; a goal's "
        "info['distance_prior_m'] overrides it.", default=0.7)
    min_points: int = describe("Fewest valid correspondences to compute a twist (≥ 3 for 6 DOF).", default=4)

    def __post_init__(self) -> None:
        check_choice("interaction", self.interaction, INTERACTIONS)
        check_choice("depth_source", self.depth_source, DEPTH_SOURCES)
        check_range("depth_prior_m", self.depth_prior_m, 0.0, lo_open=True)
        check_range("min_points", self.min_points, 3)


def _fill_depth(Z: np.ndarray | None, fallback: np.ndarray | float) -> np.ndarray | float:
    """Depths with unknown (NaN, ≤ 0) entries replaced by ``fallback`` (array or scalar)."""
    if Z is None:
        return fallback
    Z = np.asarray(Z, dtype=np.float64)
    ok = np.isfinite(Z) & (Z > 0)
    return np.where(ok, Z, fallback)


class IBVSController:
    """IBVS with a cached L* (see module docstring); implements the Controller protocol.

    ``error`` is the mean ‖x − x*‖ over valid points in normalised image units (≈ pixels / f).
    """

    name = "ibvs"

    def __init__(self, config: IBVSConfig | None = None) -> None:
        self.config = config or IBVSConfig()
        self._goal: Correspondences | None = None
        self._x_star: np.ndarray | None = None
        self._Z_star: np.ndarray | None = None
        self._L_star: np.ndarray | None = None
        self._prior = self.config.depth_prior_m

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None) -> IBVSController:
        """Build from a config mapping (YAML keys = :class:`IBVSConfig` field names)."""
        return cls(from_mapping(IBVSConfig, values))

    def set_goal(self, goal: Correspondences) -> None:
        """Cache x*, Z* and L* of the goal keypoints.

        Args:
            goal: the observer's goal (goal with itself). ``goal.goal_depth`` gives Z* (unknown entries
                take the median known goal depth, or the prior); ``goal.info["distance_prior_m"]``,
                when present, replaces ``depth_prior_m``.

        Raises:
            InputError: ``goal`` is not a Correspondences or has no keypoints.
        """
        if not isinstance(goal, Correspondences) or len(goal) == 0:
            raise InputError("IBVS goal must be a non-empty Correspondences")
        prior = float(goal.info.get("distance_prior_m", self.config.depth_prior_m))
        if not np.isfinite(prior) or prior <= 0:
            raise InputError(f"goal distance_prior_m must be a positive number of metres, got {prior}")
        self._prior = prior
        x_star = goal.camera.normalize(goal.goal_uv)
        if self.config.depth_source == "prior" or goal.goal_depth is None:
            Z_star = np.full(len(goal), self._prior)
        else:
            fallback = median_depth_m(goal.goal_depth) or self._prior
            Z_star = np.asarray(_fill_depth(goal.goal_depth, fallback), dtype=np.float64)
        self._goal, self._x_star, self._Z_star = goal, x_star, Z_star
        self._L_star = interaction_matrix(x_star, Z_star)

    def reset(self) -> None:
        """IBVS is memoryless; nothing to forget."""

    def _current_depth(self, obs: Correspondences, idx: np.ndarray) -> np.ndarray:
        src = self.config.depth_source
        assert self._Z_star is not None  # set with the goal
        if src == "prior":
            return np.full(len(idx), self._prior)
        if src == "current_depth" and obs.current_depth is not None:
            return np.asarray(_fill_depth(obs.current_depth[idx], self._Z_star[idx]))
        return self._Z_star[idx]

    def compute(self, obs: Correspondences) -> ControlOutput:
        """One IBVS step. Never raises for bad observations: returns ``ControlOutput.zero(reason)``."""
        t0 = time.perf_counter()
        if self._goal is None:
            return ControlOutput.zero("no goal set")
        assert self._x_star is not None and self._L_star is not None  # set with the goal
        if not isinstance(obs, Correspondences):
            return ControlOutput.zero(f"observation must be Correspondences, got {type(obs).__name__}")
        if len(obs) != len(self._goal):
            return ControlOutput.zero(f"observation has {len(obs)} rows but the goal has {len(self._goal)}")
        idx = np.flatnonzero(obs.valid)
        if len(idx) < self.config.min_points:
            return ControlOutput.zero(f"{len(idx)} valid correspondences, need {self.config.min_points}")
        x = obs.camera.normalize(obs.current_uv[idx])
        d = x - self._x_star[idx]
        e = d.reshape(-1)
        error = float(np.mean(np.linalg.norm(d, axis=1)))
        L_star = self._L_star.reshape(-1, 2, 6)[idx].reshape(-1, 6)
        c = self.config
        if c.interaction == "desired":
            L = L_star
        else:
            L_cur = interaction_matrix(x, self._current_depth(obs, idx))
            L = L_cur if c.interaction == "current" else 0.5 * (L_cur + L_star)
        e_inf = float(np.max(np.abs(e)))
        try:
            v_c = ibvs_twist(e, L)
        except np.linalg.LinAlgError as err:
            return ControlOutput.zero(f"interaction matrix pseudo-inverse failed: {err}", error)
        if not np.all(np.isfinite(v_c)):
            return ControlOutput.zero("non-finite twist (degenerate interaction matrix)", error)
        return ControlOutput(
            v_c=v_c, error=error, gain_error=e_inf,
            info={"num_points": len(idx), "e_inf": e_inf, "controller_ms": 1e3 * (time.perf_counter() - t0)})
