"""Depth-PC training scenes: object point clouds, clustered scenes and hidden-point removal (paper §III-A).

The paper samples 21 YCB-Video objects' point clouds; this project has its own procedural objects (the
render cell's boxes, cylinders and spheres, :data:`vs_sim.core.scenes.SHAPES`, 4–12 cm a side as
:func:`vs_sim.core.scenes.generate_render_scenes` sizes them), so the clouds are sampled from their
surfaces instead.

- :func:`object_surface_points`: area-uniform points on one object's surface (the cell's geometry:
  a box of size (sx, sy, sz); a cylinder of radius sx/2 and length sz; a sphere of radius sx/2).
- :func:`voxel_downsample`: Eq. 1, ``P' = V(P)``, one point (the centroid) per occupied voxel (open3d's
  ``voxel_down_sample``, which the authors use with 1 cm voxels).
- :func:`sample_object_scene`: the authors' ``gen_virtual_points`` (notes §2.4): below 20 points a
  uniform cylinder; otherwise 20 % uniform points plus ``K ~ U{3..⌊log2 N⌋}`` object clusters, each a
  random object's down-sampled cloud, randomly rotated (yaw ±180°, pitch and roll ±45°) about its
  centre, placed at a uniform point of the cylinder, contributing ``n_k`` of its points with
  ``Σ n_k = N − N_uniform`` (Eq. 2; the authors' code takes a fixed 21 points per cluster and ignores
  the count it computes, so their N is not the N they drew).
- :func:`hidden_point_removal`: Katz et al.'s operator, Eqs. 3–4: spherical flip about the camera and
  the convex hull of the flipped points plus the camera centre; the hull's vertices are visible.

Convention: world points (N, 3); camera positions (3,) in the world.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation
from vs_sim.core.scenes import SHAPES

from vs_controllers.training.scenes import sample_points

__all__ = ["ObjectLibrary", "hidden_point_removal", "object_surface_points", "sample_object_scene",
           "voxel_downsample"]


def object_surface_points(shape: str, size: tuple[float, float, float], n: int,
                          rng: np.random.Generator) -> np.ndarray:
    """``n`` area-uniform points (n, 3) on a procedural object's surface, centred on the origin (m)."""
    sx, sy, sz = size
    if shape == "sphere":
        d = rng.normal(size=(n, 3))
        return d / np.linalg.norm(d, axis=1, keepdims=True) * (sx / 2)
    if shape == "cylinder":
        r, h = sx / 2, sz
        areas = np.array([2 * np.pi * r * h, np.pi * r * r, np.pi * r * r])
        part = rng.choice(3, size=n, p=areas / areas.sum())
        a = rng.uniform(-np.pi, np.pi, n)
        rad = np.where(part == 0, r, r * np.sqrt(rng.uniform(size=n)))
        z = np.where(part == 0, rng.uniform(-h / 2, h / 2, n), np.where(part == 1, h / 2, -h / 2))
        return np.stack([rad * np.cos(a), rad * np.sin(a), z], axis=1)
    if shape == "box":
        half = np.array([sx, sy, sz]) / 2
        faces = np.array([sy * sz, sy * sz, sx * sz, sx * sz, sx * sy, sx * sy])
        face = rng.choice(6, size=n, p=faces / faces.sum())
        p = rng.uniform(-1, 1, size=(n, 3)) * half
        axis = face // 2
        p[np.arange(n), axis] = np.where(face % 2 == 0, -1.0, 1.0) * half[axis]
        return p
    raise ValueError(f"unknown shape {shape!r}; the cell builds {list(SHAPES)}")


def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Eq. 1: the centroid of the points in each occupied voxel of edge ``voxel`` (m), (M, 3), M ≤ N."""
    keys = np.floor(points / voxel).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, points)
    return sums / counts[:, None]


class ObjectLibrary:
    """A fixed set of procedural objects' down-sampled clouds (the paper's ``P^o``, Eq. 1).

    Args:
        rng: generator for the objects' shapes, sizes and surface samples.
        num_objects: how many objects (the paper: 21 YCB objects).
        voxel: voxel edge of the down-sampling (m); the authors' 1 cm on objects half their size.
        dense_points: surface samples per object before down-sampling.
        size_range: object size range (m), the render cell's.
    """

    def __init__(self, rng: np.random.Generator, num_objects: int = 21, voxel: float = 0.005,
                 dense_points: int = 4000, size_range: tuple[float, float] = (0.04, 0.12)) -> None:
        self.clouds: list[np.ndarray] = []
        self.shapes: list[str] = []
        for k in range(num_objects):
            shape = SHAPES[k % len(SHAPES)]
            size = tuple(float(v) for v in rng.uniform(*size_range, 3))
            dense = object_surface_points(shape, size, dense_points, rng)  # type: ignore[arg-type]
            self.clouds.append(voxel_downsample(dense, voxel))
            self.shapes.append(shape)

    def __len__(self) -> int:
        return len(self.clouds)


def sample_object_scene(n: int, rng: np.random.Generator, library: ObjectLibrary, radius: float = 0.2,
                        height: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Scene points (n, 3) and their object label (n,) (−1: uniform background points).

    Module docstring, ``sample_object_scene``; clouds smaller than their share give all their points
    and the remainder goes to the uniform part, so the scene always has ``n`` points.
    """
    if n < 20:
        return sample_points(n, rng, radius, height), np.full(n, -1, dtype=np.int64)
    k = int(rng.integers(3, max(4, int(np.log2(n)) + 1)))
    n_obj = n - int(round(0.2 * n))
    shares = np.ones(k, dtype=int) + np.bincount(rng.integers(0, k, size=n_obj - k), minlength=k)
    centres = sample_points(k, rng, radius, height)
    parts, labels = [], []
    for c, (centre, m) in enumerate(zip(centres, shares)):
        cloud = library.clouds[int(rng.integers(len(library)))]
        take = cloud[rng.permutation(len(cloud))[: min(m, len(cloud))]]
        rot = Rotation.from_euler("ZYX", [rng.uniform(-180, 180), rng.uniform(-45, 45), rng.uniform(-45, 45)],
                                  degrees=True)
        parts.append(rot.apply(take) + centre)
        labels.append(np.full(len(take), c, dtype=np.int64))
    n_uni = n - sum(len(p) for p in parts)
    parts.append(sample_points(n_uni, rng, radius, height))
    labels.append(np.full(n_uni, -1, dtype=np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def hidden_point_removal(points: np.ndarray, camera: np.ndarray, radius_factor: float = 100.0) -> np.ndarray:
    """Katz et al.'s hidden-point removal (paper Eqs. 3–4): which points the camera sees.

    With ``p_i`` the points relative to the camera and ``R = radius_factor · max‖p_i‖``, the spherical
    flip ``p̂_i = p_i + 2 (R − ‖p_i‖) p_i/‖p_i‖`` (Eq. 3) maps near points far out; a point is visible
    iff its flip is a vertex of the convex hull of the flipped points and the camera centre (Eq. 4).
    Larger ``radius_factor`` keeps more points (the authors: 100 × the bounding-box diagonal).

    Args:
        points: (N, 3) world points.
        camera: (3,) camera centre in the world.
        radius_factor: R relative to the farthest point's distance.

    Returns:
        (N,) bool visible; all True when the hull is degenerate (fewer than 4 points, coplanar).
    """
    p = np.asarray(points, dtype=np.float64) - np.asarray(camera, dtype=np.float64)
    visible = np.ones(len(p), dtype=bool)
    norm = np.linalg.norm(p, axis=1, keepdims=True)
    if len(p) < 4 or np.any(norm <= 0):
        return visible
    R = radius_factor * float(norm.max())
    flipped = p + 2.0 * (R - norm) * p / norm
    try:
        hull = ConvexHull(np.vstack([flipped, np.zeros((1, 3))]))
    except QhullError:
        return visible
    visible[:] = False
    vertices = hull.vertices[hull.vertices < len(p)]
    visible[vertices] = True
    return visible
