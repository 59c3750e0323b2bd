"""Vectorised synthetic-point environments for CNS training and evaluation (paper §IV, authors' ``PointEnv``).

Each environment is a random 3-D point scene, a goal camera and a current camera. Points are
projected analytically (no rendering) to normalised image coordinates; the goal graph is clustered
once per episode. Non-ideal correspondences are simulated as the authors do: per-step mismatches,
jitter, and missing points driven by a kinetic Monte Carlo (KMC) process whose observation
probabilities follow smooth Perlin random walkers. Supervision is PBVS: ``PBVS_Straight`` (the authors'
short-sequence expert) or the centre-keeping hybrid of their long-sequence data (``expert: centre_straight``).

All environments step together with numpy on padded ``(B, N_max, ...)`` arrays; only the sampling of
a new scene and its clustering run per environment (once per episode, not per step). The pieces live
beside this module: scene and camera sampling in :mod:`.scenes`, the PBVS experts in :mod:`.experts`,
the KMC observability process in :mod:`.observability`; pose errors are :mod:`vs_common.core.se3`'s.

Camera convention: OpenCV optical frame (x right, y down, z forward); ``w_T_c`` maps camera to world.
Twists are ``[v, ω]`` in the current camera frame; the environment applies
``w_T_c ← w_T_c · [Rotvec(ω·dt) | v·dt]`` (rotation and translation separately, as the authors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.se3 import offset_pose, pose_error, pose_errors

from vs_controllers.core.cns.graph import (
    GoalGraph,
    GraphConfig,
    NodeGraph,
    build_correspondence_graph,
    build_goal_graph,
)
from vs_controllers.training.experts import EXPERTS, pbvs_centre_straight, pbvs_straight
from vs_controllers.training.observability import KMCObservability
from vs_controllers.training.scenes import sample_camera_pose, sample_points, sample_table_points

__all__ = ["EnvConfig", "PointEnvBatch"]

# Default intrinsics of the authors' training: 640x480, f = 540, c = (320, 240) → image bounds in
# normalised coordinates, used for mismatched (random) observations.
_X_HALF, _Y_HALF = 320.0 / 540.0, 240.0 / 540.0


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One draw, uniform in log between ``bounds`` (both > 0)."""
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _in_image(xy: np.ndarray) -> np.ndarray:
    """(N,) bool: normalised coordinates (N, 2) inside the default image."""
    return (np.abs(xy[:, 0]) <= _X_HALF) & (np.abs(xy[:, 1]) <= _Y_HALF)


@dataclass(frozen=True)
class EnvConfig:
    """Scene, pose and noise settings (defaults: the authors' short-sequence training data)."""

    num_points_min: int = describe("Fewest scene points per episode.", default=4)
    num_points_max: int = describe("Most scene points per episode (authors 512; bounded for CPU cost).", default=256)
    scene_radius: float = describe("Radius of the point cylinder (m).", default=0.2)
    scene_height: float = describe("Height of the point cylinder (m).", default=0.1)
    table_scenes: float = describe(
        "Share of table-top scenes (not in the authors' data): points on a flat disc (the table) plus 3-10 "
        "box-shaped objects, like the rendered cell and real bench scenes; the rest are the paper's cylinders.",
        default=0.0)
    table_radius: tuple[float, float] = describe("Table disc radius range (m) of table-top scenes.",
                                                 default=(0.25, 0.5))
    goal_r: tuple[float, float] = describe("Goal camera distance to the scene centre (m).", default=(0.5, 0.9))
    goal_elev_deg: tuple[float, float] = describe("Goal camera elevation (deg).", default=(70.0, 90.0))
    goal_perturb_deg: tuple[float, float, float] = describe("Goal local perturbation (rz, ry, rx) (deg).",
                                                            default=(15.0, 5.0, 5.0))
    init_r: tuple[float, float] = describe("Initial camera distance (m).", default=(0.5, 0.9))
    init_elev_deg: tuple[float, float] = describe("Initial camera elevation (deg).", default=(30.0, 90.0))
    init_perturb_deg: tuple[float, float, float] = describe("Initial local perturbation (rz, ry, rx) (deg).",
                                                            default=(60.0, 10.0, 10.0))
    init_azimuth_deg: float = describe("Initial azimuth offset from the goal's, ±this (180 = independent).",
                                       default=180.0)
    dt: float = describe("Environment time step (s); the action is gain·twist.", default=0.02)
    gain: float = describe("Action gain applied to the twist (authors 2, i.e. twist·0.04 s per step).", default=2.0)
    max_steps: int = describe("Episode length cap (steps).", default=200)
    mismatch_ratio: float = describe("Fraction of mismatched points (N ≥ 10); how they are drawn: mismatch_hold_s.",
                                     default=0.1)
    mismatch_hold_s: float = describe(
        "0: a fresh set of mismatched points each step, placed anywhere in the image (short-sequence data). "
        "> 0: a set is held for an exponential interval of this mean (s) and its points swap coordinates "
        "(the authors' long-sequence ObservationMismatcher, tau = 2).", default=0.0)
    jitter: float = describe("Uniform jitter on current coordinates, ± (normalised units).", default=0.002)
    missing: bool = describe("Simulate missing points with the KMC observability process (N ≥ 64).", default=True)
    max_missing_ratio: float = describe("At most this fraction of points is missing.", default=0.8)
    noise: bool = describe("Master switch for mismatch, jitter and missing points (False: ideal).", default=True)
    reset_on_goal: bool = describe(
        "End an episode once the goal is reached (< 2 mm, < 1 deg), as the authors' short-sequence data. "
        "False: run every episode to max_steps, so the policy also learns to hold the goal (precision stage).",
        default=True)
    fov_mask: bool = describe(
        "Keep only the points inside the goal image and treat points outside the current image as missing "
        "(default intrinsics' field of view). False: the authors' data, where every point in front of the "
        "camera is observed wherever it projects, even far outside the image.", default=False)
    view_sigma_deg: tuple[float, float] = describe(
        "Viewpoint-dependent matching (0, 0 = off): a point can be matched only while the angle between the "
        "rays from it to the goal and to the current camera is small. Each point draws a fixed threshold "
        "u ~ U(0, 1) and is matchable while u < m·exp(-(angle/σ)²), with σ ~ U(this range) (deg) and "
        "m ~ U(0.6, 1) per episode: few matches after large viewpoint changes, more as the camera closes in "
        "(what descriptor matching does on real images; not in the authors' data).", default=(0.0, 0.0))
    near_goal_starts: float = describe(
        "Fraction of episodes that start near the goal instead of at an initial pose drawn as above: the goal pose "
        "moved by a log-uniform translation in near_goal_trans_m and a log-uniform rotation in near_goal_rot_deg, "
        "random directions (the settling regime the benchmark's stop policy measures; not in the authors' data). "
        "0 draws nothing extra, so runs without it reproduce.", default=0.0)
    large_turn_starts: float = describe(
        "Fraction of the far starts (those not near the goal) whose azimuth offset from the goal's is drawn "
        "uniform in large_turn_deg..180 deg, either sign, instead of within ±init_azimuth_deg: more of the "
        "large turns about the scene (rolls about the optical axis from above) where features leave the view "
        "(not in the authors' data). 0 draws nothing extra, so runs without it reproduce.", default=0.0)
    large_turn_deg: float = describe("Smallest azimuth offset of a large-turn start (deg).", default=120.0)
    near_goal_trans_m: tuple[float, float] = describe("Translation range of near-goal starts (m, log-uniform).",
                                                      default=(0.0005, 0.03))
    near_goal_rot_deg: tuple[float, float] = describe("Rotation range of near-goal starts (deg, log-uniform).",
                                                      default=(0.05, 3.0))
    expert: str = describe(
        "Supervising PBVS law. straight: shortest path in position and rotation (authors' short-sequence data). "
        "centre_straight: once the roll about the optical axis exceeds ~30 deg, blend in a law that keeps the "
        "scene centre in the middle of the image while translating straight (authors' long-sequence data).",
        default="straight")

    def __post_init__(self) -> None:
        check_choice("expert", self.expert, EXPERTS)
        check_range("table_scenes", self.table_scenes, 0.0, 1.0)
        check_range("table_radius[0]", self.table_radius[0], 0.0, lo_open=True)
        check_range("table_radius[1]", self.table_radius[1], self.table_radius[0])
        check_range("near_goal_starts", self.near_goal_starts, 0.0, 1.0)
        check_range("large_turn_starts", self.large_turn_starts, 0.0, 1.0)
        check_range("large_turn_deg", self.large_turn_deg, 0.0, 180.0)
        for name in ("near_goal_trans_m", "near_goal_rot_deg"):
            lo, hi = getattr(self, name)
            check_range(f"{name}[0]", lo, 0.0, lo_open=True)
            check_range(f"{name}[1]", hi, lo)
        check_range("view_sigma_deg[0]", self.view_sigma_deg[0], 0.0)
        check_range("view_sigma_deg[1]", self.view_sigma_deg[1], self.view_sigma_deg[0])
        check_range("num_points_min", self.num_points_min, 3)
        check_range("num_points_max", self.num_points_max, self.num_points_min)
        check_range("dt", self.dt, 0.0, lo_open=True)
        check_range("max_steps", self.max_steps, 1)
        check_range("mismatch_ratio", self.mismatch_ratio, 0.0, 1.0)
        check_range("mismatch_hold_s", self.mismatch_hold_s, 0.0)
        check_range("max_missing_ratio", self.max_missing_ratio, 0.0, 1.0)
        check_range("init_azimuth_deg", self.init_azimuth_deg, 0.0, 180.0)


# ------------------------------------------------------------------------------------------ batch
@dataclass
class _Episode:
    points: np.ndarray  # (N, 3) world
    goal: GoalGraph
    dist: float  # distance prior: goal camera to scene centroid (m)
    kmc: KMCObservability | None
    mismatched: np.ndarray  # (N,) bool: the held mismatch set (mismatch_hold_s > 0)
    mismatch_until: float = -1.0  # episode time (s) at which the held set is redrawn
    centre: np.ndarray | None = None  # (3,) scene centroid (world): the centre-keeping expert's target
    match_u: np.ndarray | None = None  # (N,) per-point matching thresholds (view_sigma_deg)
    match_sigma_deg: float = 0.0
    match_max: float = 1.0


class PointEnvBatch:
    """B synthetic-point servo environments stepped together.

    Args:
        cfg: scene / pose / noise settings.
        batch_size: B.
        seed: RNG seed (every episode draws from it, so a run is reproducible).
        graph_cfg: goal clustering settings.
    """

    def __init__(self, cfg: EnvConfig, batch_size: int, seed: int = 0, graph_cfg: GraphConfig | None = None) -> None:
        self.cfg, self.B = cfg, batch_size
        self.rng = np.random.default_rng(seed)
        self.graph_cfg = graph_cfg or GraphConfig()
        self.w_T_c = np.tile(np.eye(4), (batch_size, 1, 1))
        self.w_T_t = np.tile(np.eye(4), (batch_size, 1, 1))
        self.w_T_c0 = self.w_T_c.copy()
        self.steps = np.zeros(batch_size, dtype=np.int64)
        self.visible = np.full(batch_size, np.iinfo(np.int64).max)  # points in view at the last observe()
        self.episodes: list[_Episode] = [None] * batch_size  # type: ignore[list-item]
        for b in range(batch_size):
            self.reset_env(b)

    # ---------------------------------------------------------------- episodes
    def reset_env(self, b: int) -> None:
        """New scene, goal and initial pose for environment ``b`` (clusters its goal once)."""
        c, rng = self.cfg, self.rng
        n = int(rng.integers(c.num_points_min, c.num_points_max + 1))
        all_pts = self.sample_scene(n)
        near = c.near_goal_starts > 0 and rng.uniform() < c.near_goal_starts
        turn = not near and c.large_turn_starts > 0 and rng.uniform() < c.large_turn_starts
        for _ in range(100):
            w_T_t = sample_camera_pose(rng, c.goal_r, c.goal_elev_deg, c.goal_perturb_deg)
            if near:
                te0, re0 = _log_uniform(rng, c.near_goal_trans_m), _log_uniform(rng, c.near_goal_rot_deg)
                w_T_c = offset_pose(w_T_t, te0, re0, rng)
            else:
                az_t = np.arctan2(w_T_t[1, 3], w_T_t[0, 3])
                off = (rng.uniform(c.large_turn_deg, 180.0) * rng.choice((-1.0, 1.0)) if turn
                       else rng.uniform(-c.init_azimuth_deg, c.init_azimuth_deg))
                az = az_t + np.radians(off)
                w_T_c = sample_camera_pose(rng, c.init_r, c.init_elev_deg, c.init_perturb_deg, azimuth=az)
            pts = self.visible_points(all_pts, w_T_t, w_T_c)
            n = len(pts)
            te, re = pose_error(w_T_t, w_T_c)
            far_enough = near or te > 0.002 or re > 1.0  # a far start must not begin at the goal already
            goal_xy, ok_t = self._project(w_T_t, pts)
            if c.fov_mask:
                ok_t = ok_t & _in_image(goal_xy)
                if far_enough and ok_t.sum() >= 3:  # the goal image's points only
                    pts, goal_xy, n = pts[ok_t], goal_xy[ok_t], int(ok_t.sum())
                    break
            elif far_enough and ok_t.all() and ok_t.sum() >= 3:
                break
        centre = pts.mean(0)
        centroid_t = (np.linalg.inv(w_T_t) @ np.append(centre, 1.0))[:3]
        goal = build_goal_graph(goal_xy, cfg=self.graph_cfg, rng=rng)
        kmc = KMCObservability(goal_xy, rng) if (c.noise and c.missing and n >= 64) else None
        self.episodes[b] = ep = _Episode(pts, goal, float(np.linalg.norm(centroid_t)), kmc, np.zeros(n, dtype=bool),
                                         centre=centre)
        if c.view_sigma_deg[1] > 0:
            ep.match_u = rng.uniform(size=n)
            ep.match_sigma_deg = float(rng.uniform(*c.view_sigma_deg))
            ep.match_max = float(rng.uniform(0.6, 1.0))
        self.w_T_t[b], self.w_T_c[b], self.w_T_c0[b] = w_T_t, w_T_c, w_T_c
        self.steps[b] = 0

    def sample_scene(self, n: int) -> np.ndarray:
        """A new episode's scene points (n, 3) in the world: a table top or the paper's cylinder."""
        c, rng = self.cfg, self.rng
        if c.table_scenes > 0 and rng.uniform() < c.table_scenes:
            return sample_table_points(n, rng, float(rng.uniform(*c.table_radius)))
        return sample_points(n, rng, c.scene_radius, c.scene_height)

    def visible_points(self, pts: np.ndarray, w_T_t: np.ndarray, w_T_c: np.ndarray) -> np.ndarray:
        """The scene points an episode keeps for its goal and initial cameras (CNS: all of them)."""
        return pts

    @staticmethod
    def _project(w_T_c: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised coordinates (N, 2) and in-front mask (N,) of world points seen from ``w_T_c``."""
        c_T_w = np.linalg.inv(w_T_c)
        p = pts @ c_T_w[:3, :3].T + c_T_w[:3, 3]
        front = p[:, 2] > 1e-3
        z = np.where(front, p[:, 2], 1.0)
        return p[:, :2] / z[:, None], front

    def _view_angle_deg(self, b: int) -> np.ndarray:
        """(N,) angle (deg) at every point of env ``b`` between its rays to the goal and current cameras."""
        pts = self.episodes[b].points
        a = self.w_T_t[b, :3, 3] - pts
        c = self.w_T_c[b, :3, 3] - pts
        cos = np.einsum("ni,ni->n", a, c) / (np.linalg.norm(a, axis=1) * np.linalg.norm(c, axis=1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    # ---------------------------------------------------------------- observation
    def observe(self) -> list[NodeGraph]:
        """This step's correspondence graph of every environment (with the configured noise)."""
        c, rng = self.cfg, self.rng
        graphs = []
        for b, ep in enumerate(self.episodes):
            xy, valid = self._project(self.w_T_c[b], ep.points)
            n = len(xy)
            if c.fov_mask:
                valid = valid & _in_image(xy)
            if ep.match_u is not None:
                chance = ep.match_max * np.exp(-((self._view_angle_deg(b) / ep.match_sigma_deg) ** 2))
                valid = valid & (ep.match_u < chance)
            self.visible[b] = int(valid.sum())
            if c.noise:
                xy = xy + rng.uniform(-c.jitter, c.jitter, size=xy.shape)
                if n >= 10 and c.mismatch_ratio > 0 and c.mismatch_hold_s > 0:
                    t = float(self.steps[b]) * c.dt
                    if t >= ep.mismatch_until:
                        ep.mismatched = np.zeros(n, dtype=bool)
                        ep.mismatched[rng.permutation(n)[: max(2, int(round(c.mismatch_ratio * n)))]] = True
                        ep.mismatch_until = t + rng.exponential(c.mismatch_hold_s)
                    idx = np.flatnonzero(ep.mismatched)
                    xy[idx] = xy[np.roll(idx, 1)]  # held mismatches: those points take each other's positions
                elif n >= 10 and c.mismatch_ratio > 0:
                    m = rng.uniform(size=n) < c.mismatch_ratio
                    xy[m] = rng.uniform([-_X_HALF, -_Y_HALF], [_X_HALF, _Y_HALF], size=(int(m.sum()), 2))
                    valid = valid | m
                if ep.kmc is not None:
                    obs = ep.kmc.observed.copy()
                    missing = np.flatnonzero(~obs)
                    cap = int(c.max_missing_ratio * n)
                    if len(missing) > cap:
                        obs[rng.permutation(missing)[: len(missing) - cap]] = True
                    valid = valid & obs
            if not valid.any():
                valid[rng.integers(n)] = True
            graphs.append(build_correspondence_graph(ep.goal, xy, valid, ep.dist))
        return graphs

    def expert(self) -> np.ndarray:
        """PBVS twists (B, 6) [v (m/s), ω (rad/s)] in the current camera frame (law: ``cfg.expert``)."""
        if self.cfg.expert == "centre_straight":
            centres = np.stack([ep.centre for ep in self.episodes])
            return pbvs_centre_straight(self.w_T_c, self.w_T_t, centres)
        return pbvs_straight(self.w_T_c, self.w_T_t)

    def dists(self) -> np.ndarray:
        """Distance priors d (B,) (m)."""
        return np.array([ep.dist for ep in self.episodes])

    def errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Translation (m) and rotation (deg) errors to the goal, (B,) each."""
        return pose_errors(self.w_T_t, self.w_T_c)

    def abnormal(self) -> np.ndarray:
        """(B,) bool: the camera left the sane workspace (below the scene, looking up, too far, scene behind,
        or, with ``fov_mask`` / ``view_sigma_deg``, fewer than 3 points observable at the last observation)."""
        c = self.cfg
        z_min = 0.5 * c.init_r[0] * np.sin(np.radians(c.init_elev_deg[0]))
        pos = self.w_T_c[:, :3, 3]
        axis_z = self.w_T_c[:, 2, 2]
        behind = np.einsum("bi,bi->b", -pos, self.w_T_c[:, :3, 2]) <= 0
        out = (pos[:, 2] < z_min) | (axis_z > -0.1) | (np.linalg.norm(pos, axis=1) > 1.8) | behind
        return out | (self.visible < 3) if (c.fov_mask or c.view_sigma_deg[1] > 0) else out

    # ---------------------------------------------------------------- dynamics
    def step(self, v_c: np.ndarray) -> None:
        """Apply twists (B, 6): ``w_T_c ← w_T_c · [Rotvec(gain·ω·dt) | gain·v·dt]``; advance KMC processes."""
        c = self.cfg
        a = np.asarray(v_c, dtype=np.float64) * c.gain * c.dt
        R = self.w_T_c[:, :3, :3]
        dR = Rotation.from_rotvec(a[:, 3:]).as_matrix()
        self.w_T_c[:, :3, 3] = self.w_T_c[:, :3, 3] + np.einsum("bij,bj->bi", R, a[:, :3])
        # Re-orthonormalise through scipy so rounding does not accumulate.
        self.w_T_c[:, :3, :3] = Rotation.from_matrix(R @ dR).as_matrix()
        self.steps += 1
        motion = np.linalg.norm(a[:, 3:], axis=1) / np.pi * 0.2 + np.linalg.norm(a[:, :3], axis=1)
        for b, ep in enumerate(self.episodes):
            if ep.kmc is not None:
                ep.kmc.step(self.steps[b] * c.dt, motion[b])

    def done(self) -> np.ndarray:
        """(B,) bool: episode over (goal reached if ``reset_on_goal``, step cap, or abnormal pose)."""
        over = (self.steps >= self.cfg.max_steps) | self.abnormal()
        if self.cfg.reset_on_goal:
            te, re = self.errors()
            over |= (te < 0.002) & (re < 1.0)
        return over
