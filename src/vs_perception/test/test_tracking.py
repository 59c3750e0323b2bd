"""Tracking tests: LK follows a known warp, the forward-backward check drops occluded points, and the
observer keeps goal ids while tracking, detects again on schedule or when inliers drop, and near the goal
tracks the goal keypoints from the goal image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from vs_common.core.camera import CameraModel
from vs_common.core.config import from_mapping
from vs_common.core.errors import ConfigError
from vs_perception.core.observer import Observer, ObserverConfig
from vs_perception.core.tracking import TrackConfig, track_points

W, H = 640, 480
CAM = CameraModel(np.array([[540.0, 0, 320], [0, 540, 240], [0, 0, 1]]), W, H)
_GROUP = {"detector": "features", "max_keypoints": "features", "detect_scale": "features", "model": "estimator"}


def _config(**values: object) -> ObserverConfig:
    """An observer config from setting names (tracking.* unless listed in _GROUP)."""
    return from_mapping(ObserverConfig, {f"{_GROUP.get(k, 'tracking')}.{k}": v for k, v in values.items()})


def textured(seed: int = 0) -> np.ndarray:
    """Smooth multi-scale random texture (blobs and corners at several sizes), RGB uint8."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W, 3))
    for cell, weight in ((3, 0.5), (12, 1.0), (40, 1.0)):
        coarse = rng.random((H // cell + 2, W // cell + 2, 3))
        img += weight * cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    img = (img - img.min()) / (img.max() - img.min())
    return cv2.GaussianBlur((255 * img).astype(np.uint8), (5, 5), 1.0)


def warp(k: float) -> np.ndarray:
    """Homography of frame k of a smooth camera motion (shift, rotation about the image centre, zoom)."""
    a, s = np.radians(0.6 * k), 1.0 + 0.004 * k
    c = np.array([[1, 0, W / 2], [0, 1, H / 2], [0, 0, 1]])
    r = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]])
    t = np.array([[1, 0, 2.5 * k], [0, 1, -1.5 * k], [0, 0, 1]])
    return t @ c @ r @ np.linalg.inv(c)


def apply(Hm: np.ndarray, uv: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(uv.reshape(1, -1, 2).astype(np.float64), Hm).reshape(-1, 2)


def gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def corners(g: np.ndarray, n: int = 300) -> np.ndarray:
    pts = cv2.goodFeaturesToTrack(g, n, 0.01, 8, blockSize=5)
    uv = pts.reshape(-1, 2).astype(np.float64)
    inner = (uv[:, 0] > 40) & (uv[:, 0] < W - 40) & (uv[:, 1] > 40) & (uv[:, 1] < H - 40)
    return uv[inner]


def test_lk_follows_a_known_warp_within_half_a_pixel() -> None:
    base = textured()
    g0, g1 = gray(cv2.warpPerspective(base, warp(1), (W, H))), gray(cv2.warpPerspective(base, warp(2), (W, H)))
    uv0 = corners(g0)
    uv1, ok, fb = track_points(g0, g1, uv0)
    truth = apply(warp(2) @ np.linalg.inv(warp(1)), uv0)
    assert ok.mean() > 0.9, ok.mean()
    err = np.linalg.norm(uv1[ok] - truth[ok], axis=1)
    assert np.median(err) < 0.2 and np.percentile(err, 95) < 0.5, (np.median(err), np.percentile(err, 95))
    assert np.isnan(uv1[~ok]).all() and np.all(fb[ok] <= 1.0)


def test_forward_backward_failure_drops_the_point() -> None:
    base = textured()
    g0 = gray(base)
    g1 = g0.copy()
    # Occlude a block with unrelated texture: its points have nothing to follow.
    x0, y0, x1, y1 = 200, 150, 440, 330
    g1[y0:y1, x0:x1] = gray(textured(seed=7))[y0:y1, x0:x1]
    uv0 = corners(g0, 400)
    inside = (uv0[:, 0] > x0 + 15) & (uv0[:, 0] < x1 - 15) & (uv0[:, 1] > y0 + 15) & (uv0[:, 1] < y1 - 15)
    outside = (uv0[:, 0] < x0 - 25) | (uv0[:, 0] > x1 + 25) | (uv0[:, 1] < y0 - 25) | (uv0[:, 1] > y1 + 25)
    assert inside.sum() > 20 and outside.sum() > 50
    uv1, ok, fb = track_points(g0, g1, uv0, fb_max_px=0.5)
    assert ok[outside].mean() > 0.95
    assert np.all(np.abs(uv1[outside & ok] - uv0[outside & ok]) < 0.5)
    # A surviving occluded point would have to land where unrelated texture happens to look the same.
    assert ok[inside].mean() < 0.15, ok[inside].mean()
    # The check itself: a tight enough bound drops points that a loose one keeps.
    _, ok_loose, _ = track_points(g0, g1, uv0, fb_max_px=1e6)
    assert ok_loose[inside].sum() > ok[inside].sum()
    assert np.all(np.isinf(fb[~ok_loose]))


def test_track_points_empty_and_off_image() -> None:
    g = gray(textured())
    uv, ok, fb = track_points(g, g, np.zeros((0, 2)))
    assert uv.shape == (0, 2) and ok.shape == (0,) and fb.shape == (0,)
    # A point shifted off the image by the motion is dropped, never clipped to the border.
    shifted = np.roll(g, 30, axis=1)
    uv, ok, _ = track_points(g, shifted, np.array([[W - 10.0, 200.0], [300.0, 200.0]]))
    assert not ok[0] and np.isnan(uv[0]).all()


def _sequence(n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    base = textured(3)
    return base, [cv2.warpPerspective(base, warp(k), (W, H)) for k in range(1, n + 1)]


def test_observer_tracks_with_stable_ids_and_redetects_on_schedule() -> None:
    goal_img, frames = _sequence(7)
    obs = Observer(_config(detector="sift", max_keypoints=400, enabled=True, redetect_every=4, model="homography"))
    goal = obs.set_goal(goal_img, None, CAM)
    modes, prev = [], None
    for k, img in enumerate(frames, start=1):
        corr = obs.observe(img, stamp=float(k))
        modes.append(corr.info["mode"])
        assert np.array_equal(corr.goal_ids, goal.goal_ids) and len(corr) == len(goal)
        assert corr.num_valid >= 50
        for key in ("detect_ms", "match_ms", "track_ms", "ransac_ms", "total_ms"):
            assert corr.info[key] >= 0.0
        if corr.info["mode"] == "track":
            assert corr.info["detect_ms"] == 0.0 and corr.info["match_ms"] == 0.0 and corr.info["track_ms"] > 0
            # A tracked row is a row valid in the previous frame (same goal keypoint), moved by the warp.
            assert not np.any(corr.valid & ~prev.valid)
            step = warp(k) @ np.linalg.inv(warp(k - 1))
            v = corr.valid
            err = np.linalg.norm(corr.current_uv[v] - apply(step, prev.current_uv[v]), axis=1)
            assert np.percentile(err, 95) < 0.5, np.percentile(err, 95)
            # ...and still lands on its goal keypoint's true position (a detection's error, not drift).
            truth = apply(warp(k), goal.goal_uv[v])
            assert np.median(np.linalg.norm(corr.current_uv[v] - truth, axis=1)) < 1.0
        prev = corr
    assert modes == ["detect", "track", "track", "track", "detect", "track", "track"]


def test_observer_redetects_when_tracked_inliers_drop() -> None:
    goal_img, frames = _sequence(3)
    obs = Observer(_config(detector="sift", max_keypoints=400, enabled=True, redetect_every=100, model="homography"))
    obs.set_goal(goal_img, None, CAM)
    assert obs.observe(frames[0]).info["mode"] == "detect"
    assert obs.observe(frames[1]).info["mode"] == "track"
    # Occlude most of the view with new texture: few tracks survive, so this frame is detected and matched.
    occluded = frames[2].copy()
    occluded[:, : int(0.75 * W)] = textured(11)[:, : int(0.75 * W)]
    corr = obs.observe(occluded)
    assert corr.info["mode"] == "detect" and corr.info["track_ms"] > 0 and corr.info["detect_ms"] > 0
    # A new goal forgets the tracks: its first frame is detected.
    obs.set_goal(goal_img, None, CAM)
    assert obs.observe(frames[0]).info["mode"] == "detect"


def test_tracking_off_detects_every_frame() -> None:
    goal_img, frames = _sequence(3)
    obs = Observer(_config(detector="orb", model="homography"))
    obs.set_goal(goal_img, None, CAM)
    assert [obs.observe(f).info["mode"] for f in frames] == ["detect"] * 3


def _shift(dx: float, dy: float, a_deg: float = 0.0) -> np.ndarray:
    """Homography of a small image motion: rotation about the centre, then a (sub-pixel) shift."""
    a = np.radians(a_deg)
    c = np.array([[1, 0, W / 2], [0, 1, H / 2], [0, 0, 1]])
    r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]]) @ c @ r @ np.linalg.inv(c)


def test_near_the_goal_the_goal_keypoints_are_tracked_from_the_goal_image() -> None:
    """Within goal_lk_px the observer measures the offset to the goal image directly: more exactly than
    detection does, exactly zero at the goal, and it falls back to detection when that fails."""
    goal_img = textured(5)
    near = [_shift(6.0, -4.0, 0.5), _shift(1.2, 0.8, 0.1), _shift(0.4, -0.3, 0.05), _shift(0.0, 0.0)]
    frames = [cv2.warpPerspective(goal_img, m, (W, H), flags=cv2.INTER_CUBIC) for m in near]
    frames[-1] = goal_img.copy()
    on = Observer(_config(detector="sift", max_keypoints=400, enabled=True, model="homography", goal_lk_px=2.0))
    off = Observer(_config(detector="sift", max_keypoints=400, model="homography"))
    goal = on.set_goal(goal_img, None, CAM)
    off.set_goal(goal_img, None, CAM)
    modes, err_on, err_off = [], [], []
    for m, img in zip(near, frames):
        a, b = on.observe(img), off.observe(img)
        modes.append(a.info["mode"])
        assert np.array_equal(a.goal_ids, goal.goal_ids)
        for corr, errs in ((a, err_on), (b, err_off)):
            v = corr.valid
            errs.append(float(np.median(np.linalg.norm(corr.current_uv[v] - apply(m, goal.goal_uv[v]), axis=1))))
    # 6 px away: tracked from the last frame; within 2 px of the goal: from the goal image.
    assert modes == ["detect", "track", "goal", "goal"], modes
    assert on.observe(goal_img).num_valid >= 0.9 * len(goal)
    # At the goal image itself every goal keypoint stays where it is: no displacement to correct.
    at_goal = on.observe(goal_img)
    assert at_goal.info["mode"] == "goal"
    assert np.abs(at_goal.current_uv[at_goal.valid] - goal.goal_uv[at_goal.valid]).max() < 1e-3
    # Near the goal, tracking from the goal image measures the offset better than detecting and matching.
    assert err_on[2] < 0.75 * err_off[2], (err_on, err_off)
    assert err_on[2] < 0.06, err_on
    # A view LK cannot follow from the goal image (most of it occluded): detected and matched again.
    occluded = goal_img.copy()
    occluded[:, : int(0.8 * W)] = textured(11)[:, : int(0.8 * W)]
    assert on.observe(occluded).info["mode"] == "detect"


def test_goal_lk_is_off_by_default() -> None:
    goal_img = textured(5)
    obs = Observer(_config(detector="sift", max_keypoints=400, enabled=True, model="homography"))
    obs.set_goal(goal_img, None, CAM)
    assert [obs.observe(goal_img).info["mode"] for _ in range(3)] == ["detect", "track", "track"]


@pytest.mark.parametrize("field,value", [("redetect_every", 0), ("fb_max_px", 0.0), ("lk_levels", -1),
                                         ("min_fraction", 1.5), ("goal_lk_px", -1.0)])
def test_bad_tracking_settings(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        TrackConfig(**{field: value})
    with pytest.raises(ConfigError, match=field):
        from_mapping(ObserverConfig, {f"tracking.{field}": value})


@pytest.mark.parametrize("detector", ["sift", "orb", "akaze"])
def test_detection_at_half_resolution_returns_full_image_pixels(detector: str) -> None:
    """detect_scale=0.5 detects on a quarter of the pixels; matches still land on the true warp."""
    goal_img, frames = _sequence(4)
    obs = Observer(_config(detector=detector, detect_scale=0.5, model="homography"))
    goal = obs.set_goal(goal_img, None, CAM)
    corr = obs.observe(frames[-1])
    v = corr.valid
    assert corr.num_valid > 50
    assert goal.goal_uv[:, 0].max() > 0.8 * W and goal.goal_uv[:, 1].max() > 0.8 * H  # not half-image pixels
    err = np.linalg.norm(corr.current_uv[v] - apply(warp(4), goal.goal_uv[v]), axis=1)
    # ORB's FAST corners are pixel-coarse at any scale (0.9 px median at full resolution here).
    assert np.median(err) < (1.5 if detector == "orb" else 0.3), np.median(err)
    with pytest.raises(ConfigError, match="detect_scale"):
        _config(detect_scale=0.0)
