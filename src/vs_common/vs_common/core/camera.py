"""Pinhole camera model shared by the simulator, perception and controllers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vs_common.core.errors import InputError


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of an undistorted (rectified) image.

    Attributes:
        K: (3, 3) intrinsic matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels.
        width, height: image size in pixels.
    """

    K: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise InputError(f"camera matrix must be a finite 3x3 with fx, fy > 0, got {self.K!r}")
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"image size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "K", K)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def normalize(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) → normalised image coordinates (N, 2): x = (u - cx) / fx, y = (v - cy) / fy."""
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy], axis=1)


def median_depth_m(depth_m: np.ndarray | None) -> float | None:
    """The median of the valid (finite, > 0) depths (m) of a depth image or of per-keypoint depths.

    Returns:
        That median (> 0), or None when ``depth_m`` is None or holds no valid depth (callers write
        ``median_depth_m(z) or fallback``).
    """
    if depth_m is None:
        return None
    d = np.asarray(depth_m, dtype=np.float64)
    valid = d[np.isfinite(d) & (d > 0)]
    return float(np.median(valid)) if valid.size else None
