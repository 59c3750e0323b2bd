"""Metric depth from the rectified IR pair with OpenCV's semi-global block matching (Hirschmüller 2008).

The D435's infra1 / infra2 images are already rectified (realsense-ros publishes them as
``image_rect_raw``), so disparity d (px) along rows gives depth Z = fx·B / d, with fx the infra1 focal
length (px) and B the baseline (m, infra2's P[0, 3] = -fx·B). Turn the IR emitter off for matching
only when the scene has texture of its own; with it on, the projected dots help SGBM.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, InputError

MODES = {"sgbm": cv2.STEREO_SGBM_MODE_SGBM, "hh": cv2.STEREO_SGBM_MODE_HH,
         "sgbm_3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY}


@dataclass(frozen=True)
class StereoDepthConfig:
    """StereoSGBM parameters (names as in cv2.StereoSGBM_create)."""

    min_disparity: int = describe("Smallest disparity searched (px).", default=0)
    num_disparities: int = describe("Disparity range (px), a positive multiple of 16; bounds the nearest depth "
                                    "to fx·B / (min_disparity + num_disparities).", default=64)
    block_size: int = describe("Matched block size (odd, px).", default=5)
    uniqueness_ratio: int = describe("Margin (%) by which the best cost must beat the second best.", default=10)
    speckle_window_size: int = describe("Largest speckle (px) to invalidate; 0 disables the filter.", default=100)
    speckle_range: int = describe("Disparity variation allowed inside a connected component (px).", default=2)
    disp12_max_diff: int = describe("Left-right consistency tolerance (px); -1 disables the check.", default=1)
    mode: str = describe("SGBM variant: 'sgbm' (5 directions), 'hh' (8, full DP), 'sgbm_3way'.", default="sgbm")

    def __post_init__(self) -> None:
        if self.num_disparities <= 0 or self.num_disparities % 16:
            raise ConfigError(f"num_disparities={self.num_disparities} must be a positive multiple of 16")
        if self.block_size < 1 or self.block_size % 2 == 0:
            raise ConfigError(f"block_size={self.block_size} must be odd and >= 1")
        check_range("uniqueness_ratio", self.uniqueness_ratio, 0, 100)
        check_choice("mode", self.mode, MODES)


def disparity_to_depth(disparity_px: np.ndarray, fx: float, baseline_m: float) -> np.ndarray:
    """Z = fx·B / d (m) for d > 0, NaN elsewhere. Shapes: (H, W) → (H, W) float32."""
    if fx <= 0 or baseline_m <= 0:
        raise InputError(f"need fx > 0 and baseline > 0, got fx={fx}, baseline={baseline_m}")
    d = np.asarray(disparity_px, dtype=np.float32)
    z = np.full(d.shape, np.nan, np.float32)
    ok = np.isfinite(d) & (d > 0)
    z[ok] = fx * baseline_m / d[ok]
    return z


class StereoDepthEstimator:
    """Rectified mono8 pair → disparity (px) and metric depth (m) with cv2.StereoSGBM."""

    def __init__(self, config: StereoDepthConfig | None = None) -> None:
        self.config = c = config or StereoDepthConfig()
        channels = 1
        self._sgbm = cv2.StereoSGBM_create(
            minDisparity=c.min_disparity, numDisparities=c.num_disparities, blockSize=c.block_size,
            # OpenCV's recommended smoothness penalties, scaled by the block area.
            P1=8 * channels * c.block_size ** 2, P2=32 * channels * c.block_size ** 2,
            disp12MaxDiff=c.disp12_max_diff, uniquenessRatio=c.uniqueness_ratio,
            speckleWindowSize=c.speckle_window_size, speckleRange=c.speckle_range, mode=MODES[c.mode])

    def disparity(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Disparity of the left image (px, float32), NaN where SGBM found no match.

        Shapes: left, right (H, W) uint8 (infra1, infra2) → (H, W).
        """
        left, right = np.asarray(left), np.asarray(right)
        for name, im in (("left", left), ("right", right)):
            if im.ndim != 2 or im.dtype != np.uint8:
                raise InputError(f"{name} image must be (H, W) uint8 mono8, got {im.shape} {im.dtype}")
            if im.size == 0 or int(im.max()) == 0:
                raise InputError(f"{name} image is empty or all black")
        if left.shape != right.shape:
            raise InputError(f"stereo pair sizes differ: {left.shape} vs {right.shape}")
        raw = self._sgbm.compute(left, right)  # int16, disparity × 16
        disp = raw.astype(np.float32) / 16.0
        disp[raw <= (self.config.min_disparity - 1) * 16] = np.nan
        return disp

    def depth(self, left: np.ndarray, right: np.ndarray, fx: float, baseline_m: float) -> np.ndarray:
        """Metric depth (m, NaN = unknown) in the left (infra1) optical frame. Shapes: (H, W)."""
        return disparity_to_depth(self.disparity(left, right), fx, baseline_m)


def depth_to_other_camera(z_src: np.ndarray, K_src: np.ndarray, K_dst: np.ndarray, dst_size: tuple[int, int],
                          dst_t_src: np.ndarray | None = None) -> np.ndarray:
    """Depth of a source camera (infra1) resampled into the pixel grid of a parallel camera (colour).

    The cameras share their orientation; ``dst_t_src`` (3,) is the source's optical centre in the
    destination frame (m; zero in the simulated cell, a D435's infra1 sits ~15 mm from its colour camera).
    Each destination pixel p is looked up in the source at ``K_src K_dst⁻¹ p`` (exact without a
    translation), then once more shifted by the parallax ``K_src (−t) / Z`` of the depth found there
    (Z changes by ``t_z``). Nearest-pixel lookups, so no depth is blended across an edge.

    Shapes: z_src (H_s, W_s) m, NaN unknown; K (3, 3); dst_size (width, height) → (H_d, W_d) m in the
    destination frame, NaN where the source saw nothing.
    """
    z_src = np.asarray(z_src, dtype=np.float32)
    w, h = int(dst_size[0]), int(dst_size[1])
    t = np.zeros(3) if dst_t_src is None else np.asarray(dst_t_src, dtype=np.float64).reshape(3)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    rays = np.linalg.inv(np.asarray(K_dst, dtype=np.float64)) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    K_src = np.asarray(K_src, dtype=np.float64)

    def lookup(points: np.ndarray) -> np.ndarray:  # (3, n) points (or rays) in the source frame
        p = K_src @ points
        with np.errstate(divide="ignore", invalid="ignore"):
            mx, my = (p[0] / p[2]).reshape(h, w), (p[1] / p[2]).reshape(h, w)
        bad = ~(np.isfinite(mx) & np.isfinite(my) & (p[2].reshape(h, w) > 0))
        mx[bad], my[bad] = -1e6, -1e6  # outside: NaN
        return cv2.remap(z_src, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)

    z = lookup(rays)
    if np.any(t):
        z0 = z.ravel().astype(np.float64)
        z = lookup(rays * z0 - t[:, None]) + np.float32(t[2])  # destination Z = source Z + t_z
    return z.astype(np.float32)


def stereo_depth_in_color(estimator: StereoDepthEstimator, left: np.ndarray, right: np.ndarray, K_ir: np.ndarray,
                          baseline_m: float, K_color: np.ndarray, color_size: tuple[int, int],
                          color_t_ir: np.ndarray | None = None) -> np.ndarray:
    """SGBM depth of the IR pair (infra1 = ``left``) in the colour camera's pixel grid (m, NaN unknown).

    Shapes: left, right (H_ir, W_ir) uint8; color_size (width, height) → (H, W) float32.
    """
    z_ir = estimator.depth(left, right, float(K_ir[0, 0]), baseline_m)
    return depth_to_other_camera(z_ir, K_ir, K_color, color_size, color_t_ir)
