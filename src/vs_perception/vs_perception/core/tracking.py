"""Frame-to-frame keypoint tracking: pyramidal Lucas–Kanade with a forward–backward check.

Between two detections the observer moves the matched keypoints with the optical flow instead of
detecting and matching again (Bouguet, *Pyramidal implementation of the affine Lucas Kanade feature
tracker*, 2001; OpenCV's ``calcOpticalFlowPyrLK``). A point is kept only if tracking it back from the new
frame lands within ``fb_max_px`` of where it started (Kalal, Mikolajczyk, Matas, *Forward–backward error:
automatic detection of tracking failures*, ICPR 2010): a point that is occluded, leaves the view or
slides along an edge fails that round trip.

Near the goal (``TrackConfig.goal_lk_px``) the observer tracks the goal keypoints from the goal image itself.
There the two images differ by a few pixels, and LK measures that offset directly. Detection measures it only
up to the detector's repeatability: a keypoint found again in a slightly moved image lands a tenth of a pixel
or two off. For a servo loop that offset is an error to correct. The weakly observable motions (a sideways
translation against a rotation about the perpendicular axis) barely change the image, so an error of 0.15-0.25 px
moved the camera 0.2-0.6 mm along them at the goal (``docs/results/demo_latency.md``). LK between the goal image
and an image taken at the goal gives zero displacement, and one close to it the small, smooth displacement.

:func:`track_points` does the work; :class:`TrackConfig` holds the observer's tracking settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from vs_common.core.config import check_range, describe

__all__ = ["TrackConfig", "track_points"]

# LK's per-level iteration stop: 30 iterations or a step below 0.01 px (OpenCV's default criteria).
_LK_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)


@dataclass(frozen=True)
class TrackConfig:
    """Tracking between detections (off by default: the observer then detects and matches every frame)."""

    enabled: bool = describe(
        "Track the matched keypoints frame to frame (pyramidal Lucas-Kanade, forward-backward check) and "
        "detect + match only every redetect_every frames or when too few tracked inliers remain.", default=False)
    redetect_every: int = describe(
        "With tracking enabled: detect and match again on every this-many-th frame (1 = every frame, i.e. no "
        "tracking).",
        default=5)
    min_inliers: int = describe(
        "With tracking enabled: detect and match again when fewer tracked points survive the forward-backward check "
        "and RANSAC.", default=20)
    min_fraction: float = describe(
        "With tracking enabled: detect and match again when the tracked inliers fall below this fraction of the "
        "inliers of the last detection.", default=0.5)
    lk_window_px: int = describe("Lucas-Kanade window side (pixels, odd).", default=21)
    lk_levels: int = describe("Lucas-Kanade pyramid levels above the full image (0 = no pyramid).", default=3)
    fb_max_px: float = describe(
        "Forward-backward check: drop a point whose round trip ends farther than this (pixels) from its start.",
        default=1.0)
    goal_lk_px: float = describe(
        "With tracking enabled: while the last frame's valid points lie within this median distance (pixels) of "
        "their goal positions, track the goal keypoints from the goal image straight into the current one "
        "(same LK and checks) instead of from the last frame or by detection; 0 = off.", default=0.0)

    def __post_init__(self) -> None:
        check_range("redetect_every", self.redetect_every, 1)
        check_range("min_inliers", self.min_inliers, 0)
        check_range("min_fraction", self.min_fraction, 0.0, 1.0)
        check_range("lk_window_px", self.lk_window_px, 3, 101)
        check_range("lk_levels", self.lk_levels, 0, 8)
        check_range("fb_max_px", self.fb_max_px, 0.0, lo_open=True)
        check_range("goal_lk_px", self.goal_lk_px, 0.0, 1e3)


def track_points(prev_gray: np.ndarray, gray: np.ndarray, uv: np.ndarray, window_px: int = 21, levels: int = 3,
                 fb_max_px: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move points from ``prev_gray`` to ``gray`` with pyramidal LK and check them by tracking back.

    Args:
        prev_gray, gray: (H, W) uint8 previous and current images.
        uv: (N, 2) pixel coordinates in ``prev_gray``.
        window_px: LK window side (pixels).
        levels: pyramid levels above the full image.
        fb_max_px: largest accepted forward–backward error (pixels).

    Returns:
        ``uv_new`` (N, 2) positions in ``gray`` (NaN where the point failed), ``ok`` (N,) bool: tracked both
        ways, inside the image and with a round trip within ``fb_max_px``, ``fb_err`` (N,) round-trip error
        in pixels (inf where either direction failed).
    """
    n = len(uv)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0)
    p0 = np.ascontiguousarray(uv, dtype=np.float32).reshape(-1, 1, 2)
    lk = dict(winSize=(window_px, window_px), maxLevel=levels, criteria=_LK_CRITERIA)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, p0, None, **lk)
    p0b, st0, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, p1, None, **lk)
    p1 = p1.reshape(-1, 2).astype(np.float64)
    fb_err = np.linalg.norm(p0b.reshape(-1, 2) - p0.reshape(-1, 2), axis=1).astype(np.float64)
    both = (st1.reshape(-1) == 1) & (st0.reshape(-1) == 1) & np.all(np.isfinite(p1), axis=1)
    fb_err[~both] = np.inf
    h, w = gray.shape[:2]
    inside = (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
    ok = both & inside & (fb_err <= fb_max_px)
    p1[~ok] = np.nan
    return p1, ok, fb_err
