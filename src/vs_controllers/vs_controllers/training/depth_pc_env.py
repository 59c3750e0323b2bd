"""Depth-PC training environments: CNS's point environments with object scenes, occlusion and depth.

:class:`DepthPCEnvBatch` is :class:`~vs_controllers.training.point_env.PointEnvBatch` (poses, PBVS
supervision, the augmentations — mismatched points, KMC area dropout, jitter — and the dynamics) with
the paper's data processing (§III-A) added:

- scenes: with probability ``object_scenes`` the object-cluster scenes of
  :func:`~vs_controllers.training.depth_pc_scenes.sample_object_scene` (procedural objects'
  down-sampled clouds), otherwise CNS's scenes (:meth:`PointEnvBatch.sample_scene`);
- hidden-point removal from the goal and the initial camera at episode start, keeping the points both
  see (the authors' rule: not repeated per step);
- per node the camera-frame depth ``Z`` of its point in the current and in the goal camera, passed
  through the depth-error model (:mod:`vs_controllers.core.depth_pc.depth_error`; the goal's once per
  episode, the current one every step) and min–max normalised per frame by the graph
  (:func:`~vs_controllers.core.depth_pc.graph.add_depth`). Mismatched points keep their own depth when
  moved anywhere in the image (the authors' short-sequence data) and swap depths with their positions
  when held (the long-sequence data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vs_common.core.config import check_choice, check_range, describe

from vs_controllers.core.cns.graph import GraphConfig
from vs_controllers.core.depth_pc.depth_error import (
    BlendedWarp,
    DepthErrorConfig,
    Warp,
    apply_depth_error,
    sample_warp,
)
from vs_controllers.core.depth_pc.graph import ATTENTION_SCOPES, DEPTH_NORMS, DepthNodeGraph, add_depth
from vs_controllers.training.depth_pc_scenes import ObjectLibrary, hidden_point_removal, sample_object_scene
from vs_controllers.training.point_env import EnvConfig, PointEnvBatch

__all__ = ["DepthEnvConfig", "DepthPCEnvBatch"]

# The training intrinsics (PointEnv's): f = 540 px, c = (320, 240); pixels for the edge blur.
_F, _CX, _CY = 540.0, 320.0, 240.0


@dataclass(frozen=True)
class DepthEnvConfig:
    """Depth-PC's additions to the CNS environment (YAML section ``depth_env``)."""

    object_scenes: float = describe(
        "Share of object-cluster scenes (the authors: 0.5); the rest are the CNS env's scenes.", default=0.5)
    num_objects: int = describe("Procedural objects in the library (the paper: 21 YCB objects).", default=21)
    voxel_m: float = describe("Voxel edge of the objects' down-sampling (m).", default=0.005)
    library_seed: int = describe("Seed of the object library (fixed objects across a run).", default=0)
    hpr: bool = describe("Hidden-point removal from the goal and initial cameras at episode start.", default=True)
    hpr_radius_factor: float = describe("HPR flip radius relative to the farthest point's distance.",
                                        default=100.0)
    depth_error: bool = describe("Apply the depth-error model (section depth_error) to every frame.", default=True)
    attention_scope: str = describe("Attention pairs of the fusion module: cluster (paper) or graph.",
                                    default="cluster")
    warp_coherence_deg: float = describe(
        "0: every frame's depth error draws its own monotone warp (the benchmark's render_error). > 0: an episode "
        "draws the goal's warp and a second one, and a frame's warp blends them with beta = 1 - exp(-(angle/this)^2), "
        "angle the median over the points of the angle between their rays to the goal and to the current camera: "
        "a view close to the goal's gets an estimate close to the goal's, as an estimator does on nearly the same "
        "image (deg; not in the paper).", default=0.0)
    depth_norm: str = describe("Which keypoints set each frame's depth min-max: frame (each frame's own, the "
                               "authors') or common (those observed in both frames; not in the paper).",
                               default="frame")

    def __post_init__(self) -> None:
        check_range("object_scenes", self.object_scenes, 0.0, 1.0)
        check_range("num_objects", self.num_objects, 1)
        check_range("voxel_m", self.voxel_m, 0.0, lo_open=True)
        check_range("hpr_radius_factor", self.hpr_radius_factor, 1.0, lo_open=True)
        check_choice("attention_scope", self.attention_scope, ATTENTION_SCOPES)
        check_choice("depth_norm", self.depth_norm, DEPTH_NORMS)
        check_range("warp_coherence_deg", self.warp_coherence_deg, 0.0)


def _camera_depth(w_T_c: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) and camera-frame depth Z (N,) of world points seen from ``w_T_c`` (NaN behind)."""
    c_T_w = np.linalg.inv(w_T_c)
    p = pts @ c_T_w[:3, :3].T + c_T_w[:3, 3]
    z = np.where(p[:, 2] > 1e-3, p[:, 2], np.nan)
    uv = np.stack([_F * p[:, 0] / z + _CX, _F * p[:, 1] / z + _CY], axis=1)
    return uv, z


class DepthPCEnvBatch(PointEnvBatch):
    """B Depth-PC environments stepped together; :meth:`observe` gives Depth-PC graphs.

    Args:
        cfg: the CNS environment settings (poses, noise, expert).
        depth_cfg: Depth-PC's scene and depth settings.
        error_cfg: the depth-error model.
        batch_size, seed, graph_cfg: as :class:`PointEnvBatch`.
    """

    def __init__(self, cfg: EnvConfig, depth_cfg: DepthEnvConfig, error_cfg: DepthErrorConfig, batch_size: int,
                 seed: int = 0, graph_cfg: GraphConfig | None = None) -> None:
        self.depth_cfg, self.error_cfg = depth_cfg, error_cfg
        self.library = ObjectLibrary(np.random.default_rng(depth_cfg.library_seed), depth_cfg.num_objects,
                                     depth_cfg.voxel_m)
        self.goal_depth: list[np.ndarray] = [np.zeros(0)] * batch_size
        self.warps: list[tuple[Warp, Warp] | None] = [None] * batch_size  # (goal's, far view's), warp_coherence_deg
        super().__init__(cfg, batch_size, seed, graph_cfg)

    # ---------------------------------------------------------------- episodes
    def sample_scene(self, n: int) -> np.ndarray:
        if self.rng.uniform() < self.depth_cfg.object_scenes:
            return sample_object_scene(n, self.rng, self.library, self.cfg.scene_radius, self.cfg.scene_height)[0]
        return super().sample_scene(n)

    def visible_points(self, pts: np.ndarray, w_T_t: np.ndarray, w_T_c: np.ndarray) -> np.ndarray:
        if not self.depth_cfg.hpr:
            return pts
        f = self.depth_cfg.hpr_radius_factor
        keep = hidden_point_removal(pts, w_T_t[:3, 3], f) & hidden_point_removal(pts, w_T_c[:3, 3], f)
        return pts[keep] if keep.sum() >= 3 else pts

    def reset_env(self, b: int) -> None:
        """CNS's episode reset, then the goal keypoints' (erroneous) depth, once per episode."""
        super().reset_env(b)
        e = self.error_cfg
        self.warps[b] = ((sample_warp(self.rng, e.distortion, e.knots), sample_warp(self.rng, e.distortion, e.knots))
                         if self.depth_cfg.warp_coherence_deg > 0 else None)
        self.goal_depth[b] = self._depth(self.w_T_t[b], self.episodes[b].points,
                                         None if self.warps[b] is None else self.warps[b][0])

    def frame_warp(self, b: int) -> Warp | None:
        """The current frame's depth warp of env ``b`` (``warp_coherence_deg``), None for a fresh one."""
        warps = self.warps[b]
        if warps is None:
            return None
        angle = float(np.median(self._view_angle_deg(b)))
        beta = 1.0 - float(np.exp(-((angle / self.depth_cfg.warp_coherence_deg) ** 2)))
        return BlendedWarp(warps[0], warps[1], min(max(beta, 0.0), 1.0))

    def _depth(self, w_T_c: np.ndarray, pts: np.ndarray, warp: Warp | None = None) -> np.ndarray:
        uv, z = _camera_depth(w_T_c, pts)
        return apply_depth_error(uv, z, self.rng, self.error_cfg, warp) if self.depth_cfg.depth_error else z

    # ---------------------------------------------------------------- observation
    def observe(self) -> list[DepthNodeGraph]:  # type: ignore[override]  # Depth-PC graphs are CNS graphs
        """This step's Depth-PC graph of every environment (CNS's noise, plus the depth channel)."""
        graphs = []
        for b, base in enumerate(super().observe()):
            ep = self.episodes[b]
            z = self._depth(self.w_T_c[b], ep.points, self.frame_warp(b))
            if self.cfg.noise and self.cfg.mismatch_hold_s > 0 and ep.mismatched.any():
                idx = np.flatnonzero(ep.mismatched)
                z[idx] = z[np.roll(idx, 1)]  # held mismatches swap depth with position
            graphs.append(add_depth(base, z, self.goal_depth[b], self.depth_cfg.attention_scope,
                                    norm=self.depth_cfg.depth_norm))
        return graphs
