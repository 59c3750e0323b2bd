"""A kinematic eye-in-hand TCP: integrates commanded camera twists (no dynamics)."""

from __future__ import annotations

import numpy as np
from vs_common.core.errors import InputError
from vs_common.core.se3 import integrate_twist, invert


class KinematicTcp:
    """Holds ``w_T_tcp`` and the hand-eye ``tcp_T_cam``; applies camera-frame twists exactly (SE(3) exp).

    Args:
        w_T_tcp: (4, 4) initial TCP pose in the world (= robot base) frame.
        tcp_T_cam: (4, 4) camera optical frame in the TCP frame (identity: the camera is the TCP).
    """

    def __init__(self, w_T_tcp: np.ndarray, tcp_T_cam: np.ndarray | None = None) -> None:
        self.tcp_T_cam = np.eye(4) if tcp_T_cam is None else np.asarray(tcp_T_cam, float)
        self.w_T_tcp = np.asarray(w_T_tcp, float).copy()

    @classmethod
    def from_camera_pose(cls, w_T_cam: np.ndarray, tcp_T_cam: np.ndarray | None = None) -> KinematicTcp:
        tcp_T_cam = np.eye(4) if tcp_T_cam is None else np.asarray(tcp_T_cam, float)
        return cls(np.asarray(w_T_cam, float) @ invert(tcp_T_cam), tcp_T_cam)

    @property
    def w_T_cam(self) -> np.ndarray:
        return self.w_T_tcp @ self.tcp_T_cam

    def apply_camera_twist(self, v_c: np.ndarray, dt: float) -> np.ndarray:
        """Move by the camera twist ``v_c`` (m/s, rad/s in the camera frame) for ``dt`` s; returns w_T_cam."""
        v_c = np.asarray(v_c, float).reshape(-1)
        if v_c.shape != (6,) or not np.all(np.isfinite(v_c)) or not np.isfinite(dt) or dt < 0:
            raise InputError(f"need a finite (6,) twist and dt >= 0, got {v_c} and {dt}")
        w_T_cam = integrate_twist(self.w_T_cam, v_c, dt)
        self.w_T_tcp = w_T_cam @ invert(self.tcp_T_cam)
        return w_T_cam
