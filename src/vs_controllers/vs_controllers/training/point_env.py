"""Vectorised synthetic-point environments for CNS training and evaluation (paper §IV, authors' ``PointEnv``).

Each environment is a random 3-D point scene, a goal camera and a current camera. Points are
projected analytically (no rendering) to normalised image coordinates; the goal graph is clustered
once per episode. Non-ideal correspondences are simulated as the authors do: per-step mismatches,
jitter, and missing points driven by a kinetic Monte Carlo (KMC) process whose observation
probabilities follow smooth Perlin random walkers. Supervision is PBVS: ``PBVS_Straight`` (the authors'
short-sequence expert) or the centre-keeping hybrid of their long-sequence data (``expert: centre_straight``).

All environments step together with numpy on padded ``(B, N_max, ...)`` arrays; only the sampling of
a new scene and its clustering run per environment (once per episode, not per step).

Camera convention: OpenCV optical frame (x right, y down, z forward); ``w_T_c`` maps camera to world.
Twists are ``[v, ω]`` in the current camera frame; the environment applies
``w_T_c ← w_T_c · [Rotvec(ω·dt) | v·dt]`` (rotation and translation separately, as the authors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.config import check_choice, check_range, describe

from vs_controllers.core.cns.graph import (
    GoalGraph,
    GraphConfig,
    NodeGraph,
    build_correspondence_graph,
    build_goal_graph,
)

__all__ = ["EXPERTS", "EnvConfig", "PointEnvBatch", "look_at_pose", "pbvs_centre_straight", "pbvs_straight",
           "sample_camera_pose", "sample_points", "sample_table_points"]

EXPERTS = ("straight", "centre_straight")

# Default intrinsics of the authors' training: 640x480, f = 540, c = (320, 240) → image bounds in
# normalised coordinates, used for mismatched (random) observations.
_X_HALF, _Y_HALF = 320.0 / 540.0, 240.0 / 540.0


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


# ------------------------------------------------------------------------------------------ sampling
def sample_table_points(n: int, rng: np.random.Generator, radius: float) -> np.ndarray:
    """Table-top scene points (n, 3): a flat disc at z = 0 plus 3-10 boxes standing on it.

    20-60 % of the points lie on the boxes (4-12 cm footprints, 3-12 cm tall, 70 % on the top faces,
    30 % on the sides), the rest uniform on the disc of ``radius``; the boxes stand within 0.6·radius.
    """
    n_obj = int(round(rng.uniform(0.2, 0.6) * n))
    r = radius * np.sqrt(rng.uniform(size=n - n_obj))
    a = rng.uniform(-np.pi, np.pi, size=n - n_obj)
    parts = [np.stack([r * np.cos(a), r * np.sin(a), np.zeros(n - n_obj)], axis=1)]
    k = int(rng.integers(3, 11))
    owner = rng.integers(0, k, size=n_obj)
    for j in range(k):
        m = int((owner == j).sum())
        if m == 0:
            continue
        cr, ca = 0.6 * radius * np.sqrt(rng.uniform()), rng.uniform(-np.pi, np.pi)
        sx, sy, h = rng.uniform(0.04, 0.12), rng.uniform(0.04, 0.12), rng.uniform(0.03, 0.12)
        local = rng.uniform(-0.5, 0.5, size=(m, 3)) * [sx, sy, 0.0]
        local[:, 2] = h
        side = rng.uniform(size=m) < 0.3  # on a side face: pin one horizontal coordinate to the edge
        axis = rng.integers(0, 2, size=m)
        edge = np.where(rng.uniform(size=m) < 0.5, -0.5, 0.5) * np.where(axis == 0, sx, sy)
        local[side, axis[side]] = edge[side]
        local[side, 2] = rng.uniform(0.0, h, size=int(side.sum()))
        rot = Rotation.from_euler("z", rng.uniform(-180, 180), degrees=True)
        parts.append(rot.apply(local) + [cr * np.cos(ca), cr * np.sin(ca), 0.0])
    return np.concatenate(parts)


def sample_points(n: int, rng: np.random.Generator, radius: float = 0.2, height: float = 0.1) -> np.ndarray:
    """Scene points (n, 3): uniform in a cylinder, or (p = 0.5, n ≥ 20) 80 % in elliptic-disc clusters.

    Clusters (paper §IV-A): K ~ U{3..⌊log2 n⌋−1} discs of radius ``max_r = radius/log2(K)·1.5`` split in
    axes a ~ U(0.2, 0.8)·max_r, b = max_r − a, thickness 0.2·height, randomly tilted (±180° yaw,
    ±45° pitch/roll) around a uniform centre. Small uniform sets are redrawn until they span the disc
    (a degenerate, near-collinear set gives an ill-posed goal).
    """

    def uniform(m: int) -> np.ndarray:
        r = radius * np.sqrt(rng.uniform(size=m))
        a = rng.uniform(-np.pi, np.pi, size=m)
        return np.stack([r * np.cos(a), r * np.sin(a), rng.uniform(-height / 2, height / 2, size=m)], axis=1)

    if n >= 20 and rng.uniform() < 0.5:
        k = int(rng.integers(3, max(4, int(np.log2(n)))))
        n_uni = int(round(0.2 * n))
        sizes = np.ones(k, dtype=int) + np.bincount(rng.integers(0, k, size=n - n_uni - k), minlength=k)
        centres = uniform(k)
        max_r = radius / np.log2(k) * 1.5
        parts = [uniform(n_uni)]
        for c, m in zip(centres, sizes):
            a = rng.uniform(0.2, 0.8) * max_r
            b = max_r - a
            rr = np.sqrt(rng.uniform(size=m))
            ang = rng.uniform(-np.pi, np.pi, size=m)
            local = np.stack([a * rr * np.cos(ang), b * rr * np.sin(ang),
                              rng.uniform(-0.1 * height, 0.1 * height, size=m)], axis=1)
            rot = Rotation.from_euler("ZYX", [rng.uniform(-180, 180), rng.uniform(-45, 45), rng.uniform(-45, 45)],
                                      degrees=True)
            parts.append(rot.apply(local) + c)
        return np.concatenate(parts)
    for _ in range(100):
        p = uniform(n)
        if n >= 32:
            return p
        s = np.linalg.svd(p[:, :2] - p[:, :2].mean(0), compute_uv=False) / np.sqrt(n)
        if s[-1] > 0.15 * radius:
            return p
    return p


def look_at_pose(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose (4, 4) at ``eye`` with the optical axis (z) towards ``target``.

    The image x axis is horizontal (perpendicular to world z); straight-down views use world x.
    """
    z = target - eye
    z = z / np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.999 else np.array([1.0, 0.0, 0.0])
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T


def sample_camera_pose(rng: np.random.Generator, r: tuple[float, float], elev_deg: tuple[float, float],
                       perturb_deg: tuple[float, float, float], azimuth: float | None = None) -> np.ndarray:
    """A camera on a sphere around the origin looking at it, then locally perturbed (Rz·Ry·Rx).

    Elevation is drawn uniform in ``sin φ`` (uniform on the sphere band); azimuth uniform unless given.
    """
    radius = rng.uniform(*r)
    phi = np.arcsin(rng.uniform(np.sin(np.radians(elev_deg[0])), np.sin(np.radians(elev_deg[1]))))
    theta = rng.uniform(-np.pi, np.pi) if azimuth is None else azimuth
    eye = radius * np.array([np.cos(phi) * np.cos(theta), np.cos(phi) * np.sin(theta), np.sin(phi)])
    T = look_at_pose(eye, np.zeros(3))
    d = [rng.uniform(-m, m) for m in perturb_deg]
    T[:3, :3] = T[:3, :3] @ Rotation.from_euler("ZYX", d, degrees=True).as_matrix()
    return T


def pbvs_straight(w_T_c: np.ndarray, w_T_t: np.ndarray) -> np.ndarray:
    """PBVS supervision with gain 1: ``v = −R^T t``, ``ω = −rotvec(R)`` with ``(R, t) = t_T_c``.

    Args:
        w_T_c: (B, 4, 4) current camera poses; w_T_t: (B, 4, 4) goal camera poses.

    Returns:
        (B, 6) twists in the current camera frame.
    """
    t_T_c = np.linalg.inv(w_T_t) @ w_T_c
    R, t = t_T_c[:, :3, :3], t_T_c[:, :3, 3]
    v = -np.einsum("bji,bj->bi", R, t)
    w = -Rotation.from_matrix(R).as_rotvec()
    return np.concatenate([v, w], axis=1)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B, 3, 3) smallest rotations taking the directions ``a`` (B, 3) onto ``b`` (B, 3) (Rodrigues)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    v = np.cross(a, b)
    c = np.einsum("bi,bi->b", a, b)
    K = np.zeros((len(a), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    K = K - K.transpose(0, 2, 1)
    # Opposite directions never occur here (both cameras look down on the scene); the floor keeps it finite.
    return np.eye(3) + K + K @ K / np.maximum(1.0 + c, 1e-6)[:, None, None]


def pbvs_centre_straight(w_T_c: np.ndarray, w_T_t: np.ndarray, w_p_o: np.ndarray,
                         centre_gain: float = 7.0, roll_mid_deg: float = 30.0, roll_slope: float = 0.4) -> np.ndarray:
    """Centre-keeping PBVS (the authors' ``PBVS_Center_Straight`` expert, re-derived; notes §3).

    For large rolls about the optical axis the straight law swings the scene out of view. This law moves
    the camera straight towards the goal position while its rotation (a) looks at the scene centre
    (weight ``centre_gain``) and (b) follows an *ideal* orientation: the goal camera, re-aimed at the
    centre, swung about the centre onto the current position. It is blended with :func:`pbvs_straight`
    by ``α = logistic(roll_slope·(|roll| − roll_mid_deg))``, where roll is the z component (deg) of the
    rotation from the current to the goal orientation, so near the goal it is the straight law.

    One departure: the authors re-aim a camera by averaging two Gram–Schmidt completions of its x/y axes
    around the new optical axis; here the re-aim is the smallest rotation taking the old axis to the new.

    Args:
        w_T_c, w_T_t: (B, 4, 4) current and goal camera poses.
        w_p_o: (B, 3) scene centres (world).

    Returns:
        (B, 6) twists ``[v, ω]`` in the current camera frame (gain 1).
    """
    Rc, pc = w_T_c[:, :3, :3], w_T_c[:, :3, 3]
    Rt, pt = w_T_t[:, :3, :3], w_T_t[:, :3, 3]
    Rt_aimed = _align(Rt[:, :, 2], w_p_o - pt) @ Rt
    R_ideal = _align(pt - w_p_o, pc - w_p_o) @ Rt_aimed
    R_look = _align(Rc[:, :, 2], w_p_o - pc) @ Rc
    u_look = Rotation.from_matrix(R_look.transpose(0, 2, 1) @ Rc).as_rotvec()
    u_ideal = Rotation.from_matrix(R_ideal.transpose(0, 2, 1) @ Rc).as_rotvec()
    v = np.einsum("bji,bj->bi", Rc, pt - pc)
    centre = np.concatenate([v, -(centre_gain * u_look + u_ideal)], axis=1)
    roll = np.degrees(np.abs(Rotation.from_matrix(Rc.transpose(0, 2, 1) @ Rt).as_rotvec()[:, 2]))
    alpha = 1.0 / (1.0 + np.exp(-roll_slope * (roll - roll_mid_deg)))
    return alpha[:, None] * centre + (1.0 - alpha[:, None]) * pbvs_straight(w_T_c, w_T_t)


def pose_errors(w_T_c: np.ndarray, w_T_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation (m) and rotation (deg) errors between current and goal poses, (B,) each."""
    t_T_c = np.linalg.inv(w_T_t) @ w_T_c
    te = np.linalg.norm(t_T_c[:, :3, 3], axis=1)
    re = np.degrees(np.linalg.norm(Rotation.from_matrix(t_T_c[:, :3, :3]).as_rotvec(), axis=1))
    return te, re


# ------------------------------------------------------------------------------------------ KMC
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
        """Advance to time ``t`` (s) after a camera motion ``motion`` (walker time units); returns (N,) observed."""
        self.walk_t += motion
        self._p = self._prob()
        flip = t >= self.t_next
        self.observed[flip] = ~self.observed[flip]
        self._draw(flip, t)
        return self.observed.copy()


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
        if c.table_scenes > 0 and rng.uniform() < c.table_scenes:
            pts = sample_table_points(n, rng, float(rng.uniform(*c.table_radius)))
        else:
            pts = sample_points(n, rng, c.scene_radius, c.scene_height)
        for _ in range(100):
            w_T_t = sample_camera_pose(rng, c.goal_r, c.goal_elev_deg, c.goal_perturb_deg)
            az_t = np.arctan2(w_T_t[1, 3], w_T_t[0, 3])
            az = az_t + np.radians(rng.uniform(-c.init_azimuth_deg, c.init_azimuth_deg))
            w_T_c = sample_camera_pose(rng, c.init_r, c.init_elev_deg, c.init_perturb_deg, azimuth=az)
            te, re = pose_errors(w_T_c[None], w_T_t[None])
            goal_xy, ok_t = self._project(w_T_t, pts)
            if c.fov_mask:
                ok_t = ok_t & _in_image(goal_xy)
                if (te[0] > 0.002 or re[0] > 1.0) and ok_t.sum() >= 3:  # the goal image's points only
                    pts, goal_xy, n = pts[ok_t], goal_xy[ok_t], int(ok_t.sum())
                    break
            elif (te[0] > 0.002 or re[0] > 1.0) and ok_t.all() and ok_t.sum() >= 3:
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
        return pose_errors(self.w_T_c, self.w_T_t)

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
