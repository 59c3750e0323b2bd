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
