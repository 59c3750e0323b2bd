"""Synthetic CNS training scenes: 3-D point sets and the goal / initial camera poses around them.

Point sets follow the paper (§IV-A, authors' ``PointEnv``): a cylinder of uniform points or elliptic-disc
clusters; table tops (a flat disc with boxes, like the rendered cell) are ours. Cameras sit on a sphere
band around the origin, look at it, and are perturbed locally.

Camera convention: OpenCV optical frame (x right, y down, z forward); ``w_T_c`` maps camera to world.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.se3 import look_at

__all__ = ["sample_camera_pose", "sample_points", "sample_table_points"]

_UP_Z = np.array([0.0, 0.0, 1.0])
_UP_X = np.array([1.0, 0.0, 0.0])


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


def sample_camera_pose(rng: np.random.Generator, r: tuple[float, float], elev_deg: tuple[float, float],
                       perturb_deg: tuple[float, float, float], azimuth: float | None = None) -> np.ndarray:
    """A camera pose ``w_T_c`` (4, 4) on a sphere around the origin looking at it, then perturbed (Rz·Ry·Rx).

    Elevation is drawn uniform in ``sin φ`` (uniform on the sphere band); azimuth uniform unless given.
    The image x axis is horizontal (perpendicular to world z) except within ~2.6° of straight down, where
    it is taken from world x, so near-vertical views do not spin with the azimuth.
    """
    radius = rng.uniform(*r)
    phi = np.arcsin(rng.uniform(np.sin(np.radians(elev_deg[0])), np.sin(np.radians(elev_deg[1]))))
    theta = rng.uniform(-np.pi, np.pi) if azimuth is None else azimuth
    eye = radius * np.array([np.cos(phi) * np.cos(theta), np.cos(phi) * np.sin(theta), np.sin(phi)])
    axis = -eye / np.linalg.norm(eye)
    T = look_at(eye, np.zeros(3), up=_UP_Z if abs(axis[2]) < 0.999 else _UP_X)
    d = [rng.uniform(-m, m) for m in perturb_deg]
    T[:3, :3] = T[:3, :3] @ Rotation.from_euler("ZYX", d, degrees=True).as_matrix()
    return T
