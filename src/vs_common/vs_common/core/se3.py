"""Rigid-body motion on SE(3): exponential map, twist integration, poses and pose errors (no ROS here).

Notation: ``a_T_b`` (4, 4) maps points from frame b to frame a. A camera twist ``v_c`` = (v, ω) is
expressed in the camera frame c (body twist), so integrating it for ``dt`` seconds gives
``w_T_c(t+dt) = w_T_c(t) · exp([v_c] dt)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation


def skew(w: np.ndarray) -> np.ndarray:
    """(3,) → (3, 3) cross-product matrix [w]×."""
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def exp_se3(xi: np.ndarray) -> np.ndarray:
    """Exponential of a twist ξ = (ρ, φ) ∈ R⁶ (translation part first) → (4, 4) transform.

    Uses the closed form T = [[R, V ρ], [0, 1]] with R = exp([φ]×) and
    V = I + (1 - cos θ)/θ² [φ]× + (θ - sin θ)/θ³ [φ]×², θ = ‖φ‖ (Taylor series near θ = 0).
    """
    xi = np.asarray(xi, dtype=np.float64).reshape(6)
    rho, phi = xi[:3], xi[3:]
    theta = float(np.linalg.norm(phi))
    Phi = skew(phi)
    if theta < 1e-8:
        R = np.eye(3) + Phi
        V = np.eye(3) + 0.5 * Phi
    else:
        R = Rotation.from_rotvec(phi).as_matrix()
        a = (1.0 - np.cos(theta)) / theta**2
        b = (theta - np.sin(theta)) / theta**3
        V = np.eye(3) + a * Phi + b * Phi @ Phi
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = V @ rho
    return T


def log_se3(T: np.ndarray) -> np.ndarray:
    """Inverse of :func:`exp_se3`: (4, 4) transform → twist (ρ, φ) ∈ R⁶."""
    R = T[:3, :3]
    phi = Rotation.from_matrix(R).as_rotvec()
    theta = float(np.linalg.norm(phi))
    Phi = skew(phi)
    if theta < 1e-8:
        V_inv = np.eye(3) - 0.5 * Phi
    else:
        c = (1.0 / theta**2) * (1.0 - (theta * np.sin(theta)) / (2.0 * (1.0 - np.cos(theta))))
        V_inv = np.eye(3) - 0.5 * Phi + c * Phi @ Phi
    return np.concatenate([V_inv @ T[:3, 3], phi])


def integrate_twist(w_T_c: np.ndarray, v_c: np.ndarray, dt: float) -> np.ndarray:
    """Move frame c by the body twist ``v_c`` (m/s, rad/s, expressed in c) for ``dt`` seconds."""
    return w_T_c @ exp_se3(np.asarray(v_c, dtype=np.float64) * dt)


def make_pose(R: np.ndarray | None = None, t: np.ndarray | None = None) -> np.ndarray:
    """(3, 3) rotation and (3,) translation → (4, 4) homogeneous transform."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if t is not None:
        T[:3, 3] = t
    return T


def pose_from_xyz_quat(xyz: ArrayLike, quat_xyzw: ArrayLike) -> np.ndarray:
    """(3,) position (m) and (4,) quaternion (x, y, z, w, as ROS and the configs spell it) → (4, 4) transform."""
    return make_pose(Rotation.from_quat(np.asarray(quat_xyzw, float)).as_matrix(), np.asarray(xyz, float))


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform without a general matrix inverse."""
    Ti = np.eye(4)
    Ti[:3, :3] = T[:3, :3].T
    Ti[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return Ti


def pose_error(w_T_a: np.ndarray, w_T_b: np.ndarray) -> tuple[float, float]:
    """Translation error (m) and rotation error (deg) between two poses of the same frame."""
    a_T_b = invert(w_T_a) @ w_T_b
    te = float(np.linalg.norm(a_T_b[:3, 3]))
    re = float(np.degrees(np.linalg.norm(Rotation.from_matrix(a_T_b[:3, :3]).as_rotvec())))
    return te, re


def pose_errors(w_T_a: np.ndarray, w_T_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pose_error` over stacks of poses (B, 4, 4): translation (m) and rotation (deg) errors, (B,) each."""
    R_a, t_a = w_T_a[:, :3, :3], w_T_a[:, :3, 3]
    a_R_b = np.einsum("bji,bjk->bik", R_a, w_T_b[:, :3, :3])
    a_t_b = np.einsum("bji,bj->bi", R_a, w_T_b[:, :3, 3] - t_a)
    te = np.linalg.norm(a_t_b, axis=1)
    re = np.degrees(np.linalg.norm(Rotation.from_matrix(a_R_b).as_rotvec(), axis=1))
    return te, re


def offset_pose(w_T: np.ndarray, trans_m: float, rot_deg: float, rng: np.random.Generator) -> np.ndarray:
    """``w_T`` (4, 4) moved by exactly ``trans_m`` (m) and ``rot_deg`` (deg), in random directions.

    The translation is along a uniformly random world direction; the rotation is about a uniformly random axis of
    the pose's own frame, so the pose error to ``w_T`` is (``trans_m``, ``rot_deg``) (:func:`pose_error`).
    Draws two 3-vectors from ``rng`` (translation direction first).
    """
    t_dir, r_dir = rng.normal(size=3), rng.normal(size=3)
    T = np.array(w_T, dtype=float)
    T[:3, :3] = T[:3, :3] @ Rotation.from_rotvec(r_dir / np.linalg.norm(r_dir) * np.radians(rot_deg)).as_matrix()
    T[:3, 3] = T[:3, 3] + t_dir / np.linalg.norm(t_dir) * trans_m
    return T


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """Camera pose ``w_T_c`` (optical frame: z forward, x right, y down) at ``eye`` looking at ``target``."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, float)
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:  # looking along `up`: any perpendicular x will do
        x = np.cross(z, np.array([1.0, 0.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return make_pose(np.stack([x, y, z], axis=1), np.asarray(eye, float))
