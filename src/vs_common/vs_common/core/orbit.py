"""The servo-run offset: orbit a camera about the point it looks at (the demo and ``/vs/sim/orbit``).

Notation as :mod:`vs_common.core.se3`: ``w_T_c`` (4, 4) is the camera optical frame (z forward, x right,
y down) in a world frame w; angles in degrees at the interface, metres for distances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from vs_common.core.errors import ConfigError

#: The demo's orbit axis in the camera frame (normalised on use): it both tilts and rolls the view.
DEFAULT_ORBIT_AXIS = (0.6, 0.6, 0.5)
#: Largest orbit angle (deg): beyond it the scene leaves the view of a D435-like camera.
MAX_ORBIT_DEG = 90.0


def orbit_axis(axis_c: Sequence[float] | None) -> np.ndarray:
    """A unit rotation axis (camera frame) from 3 numbers; None or empty = :data:`DEFAULT_ORBIT_AXIS`.

    Raises:
        ConfigError: not 3 finite numbers, or (nearly) zero.
    """
    values = DEFAULT_ORBIT_AXIS if axis_c is None or len(axis_c) == 0 else axis_c
    axis = np.asarray(values, dtype=float).reshape(-1)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or float(np.linalg.norm(axis)) < 1e-6:
        raise ConfigError(f"orbit axis must be 3 finite numbers, not all zero; got {list(values)!r}")
    return axis / np.linalg.norm(axis)


def orbit_offset(w_T_c: np.ndarray, target_distance_m: float, rotation_deg: float,
                 axis_c: Sequence[float] | None = DEFAULT_ORBIT_AXIS) -> np.ndarray:
    """Camera pose rotated by ``rotation_deg`` about ``axis_c`` (camera frame) through the viewed point.

    The point p = ``target_distance_m`` ahead on the optical axis stays fixed, so the scene stays in view
    while the camera both turns and moves (by 2·d·sin(θ/2) for an axis ⟂ to the optical axis):
    w_T_c' = w_T_c · c_T_p · R · p_T_c, i.e. R_c' = R_c R and t_c' = t_c + R_c (p − R p).

    Shapes: ``w_T_c`` (4, 4) → (4, 4).

    Raises:
        ConfigError: a non-finite pose, distance ≤ 0, |angle| > :data:`MAX_ORBIT_DEG`, or a bad axis.
    """
    w_T_c = np.asarray(w_T_c, dtype=float)
    if w_T_c.shape != (4, 4) or not np.all(np.isfinite(w_T_c)):
        raise ConfigError("orbit_offset needs a finite (4, 4) camera pose")
    if not (np.isfinite(target_distance_m) and target_distance_m > 0.0):
        raise ConfigError(f"orbit distance must be > 0 m, got {target_distance_m!r}")
    if not (np.isfinite(rotation_deg) and abs(rotation_deg) <= MAX_ORBIT_DEG):
        raise ConfigError(f"orbit angle must be within ±{MAX_ORBIT_DEG:g} deg, got {rotation_deg!r}")
    R = Rotation.from_rotvec(np.radians(rotation_deg) * orbit_axis(axis_c)).as_matrix()
    p = np.array([0.0, 0.0, float(target_distance_m)])
    out = w_T_c.copy()
    out[:3, :3] = w_T_c[:3, :3] @ R
    out[:3, 3] = w_T_c[:3, 3] + w_T_c[:3, :3] @ (p - R @ p)
    return out
