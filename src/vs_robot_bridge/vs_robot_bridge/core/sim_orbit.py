"""``/vs/sim/orbit`` without ROS: where the simulated TCP goes when the camera orbits the viewed point.

The orbit itself is :func:`vs_common.core.orbit.orbit_offset` (the demo's offset); this module adds the
robot side: camera pose ↔ TCP pose through the hand-eye, the default orbit distance, and the workspace
check (a teleport must not put the TCP where the safety layer would refuse to move it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vs_common.core.camera import median_depth_m
from vs_common.core.errors import NotReadyError, SafetyViolation
from vs_common.core.orbit import orbit_offset
from vs_common.core.se3 import invert


def viewing_distance_m(depth_m: np.ndarray | None) -> float:
    """The orbit's default distance: the median valid depth (m) of the latest depth image, as the demo's.

    Raises:
        NotReadyError: no depth image yet, or none of its pixels is valid.
    """
    if depth_m is None:
        raise NotReadyError("no aligned depth frame received yet; give distance_m > 0")
    distance = median_depth_m(depth_m)
    if distance is None:
        raise NotReadyError("the latest depth frame has no valid pixel; give distance_m > 0")
    return distance


def plan_orbit(base_T_tcp: np.ndarray, tcp_T_cam: np.ndarray, angle_deg: float, axis_c: Sequence[float] | None,
               distance_m: float, workspace_min: Sequence[float],
               workspace_max: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """New TCP and camera poses (base frame) for an orbit of the camera by ``angle_deg`` about ``axis_c``.

    Args:
        base_T_tcp: (4, 4) current TCP pose.
        tcp_T_cam: (4, 4) hand-eye (camera optical frame in the TCP frame).
        angle_deg, axis_c, distance_m: as :func:`orbit_offset` (axis None / empty = the demo's).
        workspace_min, workspace_max: the safety layer's TCP box (base frame, m).

    Returns:
        (base_T_tcp', base_T_cam'), both (4, 4).

    Raises:
        ConfigError: a bad angle, axis or distance (from :func:`orbit_offset`).
        SafetyViolation: the new TCP would be outside the workspace box.
    """
    base_T_cam = orbit_offset(np.asarray(base_T_tcp, float) @ tcp_T_cam, distance_m, angle_deg, axis_c)
    new_tcp = base_T_cam @ invert(tcp_T_cam)
    p, lo, hi = new_tcp[:3, 3], np.asarray(workspace_min, float), np.asarray(workspace_max, float)
    if np.any(p < lo) or np.any(p > hi):
        raise SafetyViolation(f"the orbit would put the TCP at {np.round(p, 3).tolist()} m, outside the workspace "
                              f"box {lo.tolist()} .. {hi.tolist()}; use a smaller angle")
    return new_tcp, base_T_cam
