"""The keypoint observer: goal keypoints once, then per-frame correspondences aligned to them.

Pipeline per current frame (the CNS "Classic" frontend, re-done with OpenCV):
detect + describe → match current → goal (ratio test or mutual NN) → keep the best current keypoint
per goal keypoint → RANSAC (essential matrix with K by default) → a :class:`Correspondences` whose
row i is goal keypoint i, so ids stay stable for recurrent controllers.

With ``tracking.enabled`` (:class:`~vs_perception.core.tracking.TrackConfig`), a frame between detections moves
the last frame's valid rows with pyramidal Lucas–Kanade (forward–backward checked) and verifies them with
the same RANSAC; a row keeps its goal id, so tracking never changes which goal keypoint a point is. The
observer detects and matches again every ``tracking.redetect_every`` frames, and at once in a frame whose tracked
inliers fall below ``tracking.min_inliers`` or ``tracking.min_fraction`` of the last detection's.
With ``tracking.goal_lk_px`` > 0, a frame that follows one whose valid points lay within that median distance
of their goal positions tracks the goal keypoints from the goal image instead (mode ``"goal"``; the reason is in
:mod:`vs_perception.core.tracking`), and falls back to the rules above when too few of them pass.

Example:
    >>> obs = Observer(from_mapping(ObserverConfig, {"features.detector": "sift"}))
    >>> goal = obs.set_goal(goal_rgb, goal_depth_m, camera)        # goal with itself, all valid
    >>> corr = obs.observe(current_rgb, current_depth_m, stamp=t)  # aligned to the goal rows
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from vs_common.core.camera import CameraModel
from vs_common.core.config import check_range, describe
from vs_common.core.errors import ConfigError, InputError, NotReadyError, ObservationError

from vs_perception.core.features import FeatureConfig, FeatureExtractor, Features, to_gray
from vs_perception.core.matching import DescriptorMatcher, EstimatorConfig, MatchConfig
from vs_perception.core.tracking import TrackConfig, track_points
from vs_perception.core.types import Correspondences

__all__ = ["OBSERVER_STAGES", "Observer", "ObserverConfig", "sample_depth"]

#: Per-frame stage timings the observer reports in ``info`` (ms; 0 for a stage that did not run), in the
#: order of vs_msgs/Correspondences' fields; the node, the benchmark and the loop-rate tool read these keys.
OBSERVER_STAGES = ("detect_ms", "match_ms", "track_ms", "ransac_ms")


@dataclass(frozen=True)
class ObserverConfig:
    """Observer settings: detection, matching, outlier rejection and tracking (nested configs, parameters
    ``features.*``, ``matching.*``, ``estimator.*``, ``tracking.*``), and how depth is sampled."""

    features: FeatureConfig = describe("Keypoint detection and description.", default_factory=FeatureConfig)
    matching: MatchConfig = describe("Descriptor matching current → goal.", default_factory=MatchConfig)
    estimator: EstimatorConfig = describe("Outlier rejection by a robustly fitted two-view model.",
                                          default_factory=EstimatorConfig)
    tracking: TrackConfig = describe("Tracking between detections.", default_factory=TrackConfig)
    depth_window: int = describe(
        "Side of the square window (pixels, odd) whose median valid depth is a keypoint's depth; 1 = nearest pixel.",
        default=3)
    min_depth_m: float = describe("Depths at or below this (m) are treated as unknown.", default=0.05)
    max_depth_m: float = describe("Depths above this (m) are treated as unknown.", default=10.0)

    def __post_init__(self) -> None:
        check_range("depth_window", self.depth_window, 1, 31)
        if self.depth_window % 2 == 0:
            raise ConfigError(f"depth_window={self.depth_window} must be odd (1, 3, 5, ...)")
        check_range("min_depth_m", self.min_depth_m, 0.0)
        check_range("max_depth_m", self.max_depth_m, self.min_depth_m, lo_open=True)


def _check_depth(depth: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Validate a depth map and return it as float64 metres (uint16 is read as millimetres, 0 = unknown)."""
    if depth is None:
        return None
    if not isinstance(depth, np.ndarray) or depth.ndim != 2:
        raise InputError(f"depth must be a (H, W) array, got {getattr(depth, 'shape', type(depth).__name__)}")
    if depth.shape != shape:
        raise InputError(f"depth size {depth.shape} differs from image size {shape}")
    if depth.dtype == np.uint16:
        d = depth.astype(np.float64) * 1e-3
        d[depth == 0] = np.nan
        return d
    if depth.dtype not in (np.float32, np.float64):
        raise InputError(f"depth must be float32/float64 metres or uint16 millimetres, got {depth.dtype}")
    return depth.astype(np.float64, copy=False)


def sample_depth(depth: np.ndarray, uv: np.ndarray, window: int = 3, min_m: float = 0.0,
                 max_m: float = np.inf) -> np.ndarray:
    """Depth at sub-pixel keypoints: median of the valid depths in a ``window``² patch around each.

    Args:
        depth: (H, W) metres, NaN (or out of [min_m, max_m]) where unknown.
        uv: (N, 2) pixel coordinates; rows with NaN or outside the image give NaN.
        window: odd patch side; 1 samples the nearest pixel.

    Returns:
        (N,) metres, NaN where no valid depth is in the patch.
    """
    h, w = depth.shape
    out = np.full(len(uv), np.nan)
    finite = np.all(np.isfinite(uv), axis=1)
    if not finite.any():
        return out
    r = window // 2
    u = np.rint(uv[finite, 0]).astype(np.int64)
    v = np.rint(uv[finite, 1]).astype(np.int64)
    du, dv = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))
    uu = u[:, None] + du.reshape(1, -1)
    vv = v[:, None] + dv.reshape(1, -1)
    inside = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
    patch = np.where(inside, depth[np.clip(vv, 0, h - 1), np.clip(uu, 0, w - 1)], np.nan)
    patch = np.where((patch > min_m) & (patch <= max_m), patch, np.nan)
    has = np.isfinite(patch).any(axis=1)
    vals = np.full(len(u), np.nan)
    if has.any():
        vals[has] = np.nanmedian(patch[has], axis=1)
    out[finite] = vals
    return out


class Observer:
    """Keypoint observer with a fixed goal (see module docstring)."""

    def __init__(self, config: ObserverConfig | None = None) -> None:
        self.config = config or ObserverConfig()
        self._extractor = FeatureExtractor(self.config.features)
        self._matcher = DescriptorMatcher(self.config.matching)
        self._goal: Correspondences | None = None
        self._goal_features: Features | None = None
        self._goal_gray: np.ndarray | None = None
        self._track: _TrackState | None = None

    @property
    def goal(self) -> Correspondences | None:
        """The goal observation (goal with itself), or None before :meth:`set_goal`."""
        return self._goal

    @property
    def camera(self) -> CameraModel | None:
        return None if self._goal is None else self._goal.camera

    def _check_image(self, image: np.ndarray, camera: CameraModel) -> None:
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            raise InputError(f"image must be an (H, W, 3) uint8 array, got {getattr(image, 'shape', image)!r}")
        if image.shape[:2] != (camera.height, camera.width):
            raise InputError(
                f"image is {image.shape[1]}x{image.shape[0]} but the camera is {camera.width}x{camera.height}")

    def _depth(self, depth: np.ndarray | None, image: np.ndarray, uv: np.ndarray) -> np.ndarray | None:
        d = _check_depth(depth, image.shape[:2])
        if d is None:
            return None
        c = self.config
        return sample_depth(d, uv, c.depth_window, c.min_depth_m, c.max_depth_m)

    def set_goal(self, image_rgb: np.ndarray, depth: np.ndarray | None, camera: CameraModel,
                 goal_id: str = "") -> Correspondences:
        """Detect the goal keypoints once and return the goal as correspondences with itself.

        Args:
            image_rgb: (H, W, 3) uint8 goal image.
            depth: (H, W) goal depth (float metres, or uint16 mm), NaN/0 unknown; None if not available.
            camera: intrinsics of the goal (and every later current) image.
            goal_id: a name carried into every observation.

        Returns:
            :class:`Correspondences` with current = goal, valid all True, ``goal_depth`` sampled from
            ``depth`` (NaN unknown, all NaN without a depth map).

        Raises:
            InputError: malformed image or depth. ObservationError: no keypoints in the goal image.
        """
        if not isinstance(camera, CameraModel):
            raise InputError(f"camera must be a CameraModel, got {type(camera).__name__}")
        self._check_image(image_rgb, camera)
        feats = self._extractor(image_rgb)
        if len(feats) == 0:
            raise ObservationError("the goal image has no keypoints (textureless or out of focus)")
        goal_depth = self._depth(depth, image_rgb, feats.uv)
        if goal_depth is None:
            goal_depth = np.full(len(feats), np.nan)
        self._matcher.set_goal(feats.descriptors, feats.binary)
        self._goal_features = feats
        self._goal_gray = to_gray(image_rgb) if self.config.tracking.goal_lk_px > 0 else None
        self._track = None
        n = len(feats)
        self._goal = Correspondences(
            camera=camera, goal_uv=feats.uv, current_uv=feats.uv.copy(), valid=np.ones(n, bool),
            goal_ids=np.arange(n), score=np.ones(n), goal_depth=goal_depth, current_depth=goal_depth.copy(),
            goal_id=goal_id, info={"num_keypoints": n, "detector": self.config.features.detector})
        return self._goal

    def observe(self, image_rgb: np.ndarray, depth: np.ndarray | None = None, stamp: float = 0.0) -> Correspondences:
        """Correspondences of the current image with the goal keypoints.

        Args:
            image_rgb: (H, W, 3) uint8 current image, same size as the goal.
            depth: optional (H, W) current depth (float m or uint16 mm); fills ``current_depth``.
            stamp: image time (s), copied through.

        Returns:
            :class:`Correspondences` with N = number of goal keypoints; rows not matched (or RANSAC
            outliers) are invalid with NaN ``current_uv``. Too few matches is not an error: the
            result then simply has few valid rows. ``info`` holds the stage times detect_ms, match_ms,
            track_ms, ransac_ms (0 for a stage that did not run), total_ms, ``mode`` ("detect",
            "track" or "goal"), num_keypoints (detected this frame; 0 when tracked), num_matches (putative
            matches or points tracked through the forward–backward check), num_inliers.

        Raises:
            NotReadyError: no goal set. InputError: malformed image or depth.
        """
        if self._goal is None or self._goal_features is None:
            raise NotReadyError("observe() called before set_goal()")
        goal, gf = self._goal, self._goal_features
        self._check_image(image_rgb, goal.camera)
        d_map = _check_depth(depth, image_rgb.shape[:2])
        c, tc = self.config, self.config.tracking
        t0 = time.perf_counter()
        gray = to_gray(image_rgb)
        n = len(gf)
        current_uv = np.full((n, 2), np.nan)
        valid = np.zeros(n, bool)
        score = np.zeros(n)
        times = dict.fromkeys(OBSERVER_STAGES, 0.0)
        mode, num_keypoints, num_matches, num_inliers = "detect", 0, 0, 0
        st = self._track
        # Near the goal: the goal keypoints from the goal image; else, between detections, the last frame's rows.
        sources = []
        min_kept = 0.0
        if tc.enabled and st is not None:
            min_kept = max(tc.min_inliers, tc.min_fraction * st.detected_inliers, 1)
            if self._goal_gray is not None and st.goal_px <= tc.goal_lk_px:
                sources.append(("goal", self._goal_gray, np.arange(n), goal.goal_uv, np.ones(n)))
            if st.since_detect + 1 < tc.redetect_every:
                rows = np.flatnonzero(st.valid)
                sources.append(("track", st.gray, rows, st.uv[rows], st.score))
        for name, from_gray, rows, from_uv, from_score in sources:
            t1 = time.perf_counter()
            uv, ok, _ = track_points(from_gray, gray, from_uv, tc.lk_window_px, tc.lk_levels, tc.fb_max_px)
            rows, uv = rows[ok], uv[ok]
            t2 = time.perf_counter()
            inl = c.estimator.inliers(uv, goal.goal_uv[rows], goal.camera.K)
            times["track_ms"] += 1e3 * (t2 - t1)
            times["ransac_ms"] += 1e3 * (time.perf_counter() - t2)
            kept = int(inl.sum())
            if kept >= min_kept:
                mode, num_matches, num_inliers = name, len(rows), kept
                current_uv[rows[inl]] = uv[inl]
                valid[rows[inl]] = True
                score[rows[inl]] = from_score[rows[inl]]
                break
        if mode == "detect":
            t1 = time.perf_counter()
            feats = self._extractor.detect_gray(gray)
            t2 = time.perf_counter()
            matches = self._matcher.match(feats.descriptors) if len(feats) else None
            t3 = time.perf_counter()
            num_keypoints = len(feats)
            if matches is not None and len(matches):
                num_matches = len(matches)
                inl = c.estimator.inliers(feats.uv[matches.query], gf.uv[matches.train], goal.camera.K)
                m = matches.select(inl)
                num_inliers = len(m)
                current_uv[m.train] = feats.uv[m.query]
                valid[m.train] = True
                score[m.train] = m.score
            t4 = time.perf_counter()
            times["detect_ms"] = 1e3 * (t2 - t1)
            times["match_ms"] = 1e3 * (t3 - t2)
            times["ransac_ms"] += 1e3 * (t4 - t3)
        if tc.enabled:
            # Only goal-image LK reads it.
            goal_px = (float(np.median(np.linalg.norm(current_uv[valid] - goal.goal_uv[valid], axis=1)))
                       if self._goal_gray is not None and valid.any() else np.inf)
            self._track = _TrackState(
                gray=gray, uv=current_uv.copy(), valid=valid.copy(), score=score.copy(),
                since_detect=0 if mode == "detect" else st.since_detect + 1,  # type: ignore[union-attr]
                detected_inliers=num_inliers if mode == "detect" else st.detected_inliers,  # type: ignore[union-attr]
                goal_px=goal_px)
        current_depth = None
        if d_map is not None:
            current_depth = sample_depth(d_map, current_uv, c.depth_window, c.min_depth_m, c.max_depth_m)
        info = {
            **times, "total_ms": 1e3 * (time.perf_counter() - t0), "mode": mode, "num_keypoints": num_keypoints,
            "num_matches": num_matches, "num_inliers": num_inliers,
        }
        return Correspondences(
            camera=goal.camera, goal_uv=goal.goal_uv, current_uv=current_uv, valid=valid, goal_ids=goal.goal_ids,
            score=score, goal_depth=goal.goal_depth, current_depth=current_depth, goal_id=goal.goal_id, stamp=stamp,
            frame_id=goal.frame_id, info=info)


@dataclass
class _TrackState:
    """What tracking carries from one frame to the next (rows = goal keypoints, as in the output)."""

    gray: np.ndarray
    uv: np.ndarray
    valid: np.ndarray
    score: np.ndarray
    since_detect: int
    detected_inliers: int
    goal_px: float  # median distance of the valid points to their goal positions (pixels; inf when none)
