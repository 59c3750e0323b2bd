"""PBVS experts that supervise CNS training (the authors' ``PBVS_Straight`` and ``PBVS_Center_Straight``).

Both take batched camera poses ``w_T_c`` (B, 4, 4) (OpenCV optical frame, camera to world) and return
twists ``[v, ω]`` (B, 6) in the current camera frame with gain 1 (m/s, rad/s per unit error).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["EXPERTS", "pbvs_centre_straight", "pbvs_straight"]

EXPERTS = ("straight", "centre_straight")


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
