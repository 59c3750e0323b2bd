"""D435-like camera models and the optical-frame ↔ OpenGL (PyBullet) conversions.

Optical frame (REP-103): z forward, x right, y down; pixel (u, v) with v down, (0, 0) at the centre of
the top-left pixel. OpenGL camera frame: x right, y up, looking along −z, so ``gl = diag(1, −1, −1)·optical``.
"""

from __future__ import annotations

import numpy as np
from vs_common.core.camera import CameraModel

#: D435 colour stream at 640×480 (typical factory intrinsics: ~69°×42° HFOV is for 1920×1080 crop;
#: at 640×480 the colour sensor reports fx ≈ fy ≈ 615 px).
D435_COLOR = CameraModel(K=np.array([[615.0, 0.0, 320.0], [0.0, 615.0, 240.0], [0.0, 0.0, 1.0]]), width=640, height=480)
#: D435 infrared imagers at 640×480 (fx ≈ fy ≈ 385 px), 50 mm baseline between infra1 and infra2.
D435_IR = CameraModel(K=np.array([[385.0, 0.0, 320.0], [0.0, 385.0, 240.0], [0.0, 0.0, 1.0]]), width=640, height=480)
D435_BASELINE_M = 0.050
NEAR_M, FAR_M = 0.01, 4.0

_OPTICAL_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def gl_projection(cam: CameraModel, near: float = NEAR_M, far: float = FAR_M) -> np.ndarray:
    """(4, 4) OpenGL projection whose rasterisation reproduces ``cam``'s pinhole model.

    PyBullet's TinyRenderer samples image pixel (u, v) at screen position (u, H − 1 − v) (measured: a
    marker rendered with pixel-centre offsets of ½ landed half a pixel off), so x_ndc = 2u/W − 1 and
    y_ndc = 1 − 2(v + 1)/H, which gives P[0,0] = 2fx/W, P[0,2] = 1 − 2cx/W, P[1,1] = 2fy/H,
    P[1,2] = 2(cy + 1)/H − 1.
    """
    W, H = cam.width, cam.height
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * cam.fx / W
    P[0, 2] = 1.0 - 2.0 * cam.cx / W
    P[1, 1] = 2.0 * cam.fy / H
    P[1, 2] = 2.0 * (cam.cy + 1.0) / H - 1.0
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = -1.0
    return P


def gl_view(w_T_c: np.ndarray) -> np.ndarray:
    """(4, 4) OpenGL view matrix (world → GL camera) for an optical-frame pose ``w_T_c``."""
    return np.linalg.inv(w_T_c @ _OPTICAL_TO_GL)


def depth_from_buffer(zbuf: np.ndarray, near: float = NEAR_M, far: float = FAR_M) -> np.ndarray:
    """OpenGL depth buffer in [0, 1] → metric Z (m) along the optical axis; NaN at the far plane."""
    z = far * near / (far - (far - near) * np.asarray(zbuf, np.float64))
    z[np.asarray(zbuf) >= 1.0 - 1e-7] = np.nan
    return z.astype(np.float32)


def project(cam: CameraModel, c_P: np.ndarray) -> np.ndarray:
    """Points in the optical frame (N, 3) → pixels (N, 2)."""
    c_P = np.asarray(c_P, float)
    return np.stack([cam.fx * c_P[:, 0] / c_P[:, 2] + cam.cx, cam.fy * c_P[:, 1] / c_P[:, 2] + cam.cy], axis=1)
