"""Match image and marker geometry from Correspondences."""

from __future__ import annotations

import numpy as np
import pytest
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_perception.core.types import Correspondences
from vs_perception.core.viz import INLIER, OUTLIER, back_project, correspondence_markers, draw_matches, match_status

H, W = 120, 160
CAM = CameraModel(K=np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]]), width=W, height=H)


def _corr() -> Correspondences:
    goal = np.array([[40.0, 60.0], [100.0, 80.0], [120.0, 30.0]])
    cur = np.array([[50.0, 65.0], [20.0, 100.0], [np.nan, np.nan]])
    return Correspondences(camera=CAM, goal_uv=goal, current_uv=cur, valid=[True, False, False],
                           current_depth=[0.5, np.nan, np.nan], goal_id="g")


def test_status_and_side_by_side_colours() -> None:
    corr = _corr()
    np.testing.assert_array_equal(match_status(corr), [2, 1, 0])
    img = draw_matches(np.full((H, W), 60, np.uint8), np.full((H, W, 3), 60, np.uint8), corr)
    assert img.shape == (H, 2 * W, 3) and img.dtype == np.uint8
    # inlier line midpoint is green, outlier line midpoint red
    mid_in = ((50 + 40 + W) // 2, (65 + 60) // 2)
    assert _has(img, mid_in, INLIER)
    mid_out = ((20 + 100 + W) // 2, (100 + 80) // 2)
    assert _has(img, mid_out, OUTLIER) and not _has(img, mid_out, INLIER)
    no_out = draw_matches(np.full((H, W), 60, np.uint8), np.full((H, W, 3), 60, np.uint8), corr, draw_outliers=False)
    assert not _has(no_out, mid_out, OUTLIER)


def _has(img: np.ndarray, xy: tuple[int, int], colour: tuple[int, int, int]) -> bool:
    """Some pixel of the 3x3 patch at xy is tinted like ``colour`` (lines are anti-aliased, so compare the
    dominant channel: green for inliers, red for outliers)."""
    patch = img[xy[1] - 1:xy[1] + 3, xy[0] - 1:xy[0] + 2].reshape(-1, 3).astype(int)
    c = int(np.argmax(colour))
    others = [k for k in range(3) if k != c]
    return bool((patch[:, c] - patch[:, others].max(axis=1) > 80).any())


def test_markers_back_project_with_depth() -> None:
    m = correspondence_markers(_corr(), default_depth_m=2.0)
    assert m.current_points.shape == (2, 3) and m.lines.shape == (2, 2, 3)
    np.testing.assert_allclose(m.current_points[0], [(50 - 80) / 100 * 0.5, (65 - 60) / 100 * 0.5, 0.5])
    assert m.current_points[1, 2] == 2.0  # unknown depth → default
    assert m.goal_points.shape == (3, 3)
    only_in = correspondence_markers(_corr(), include_outliers=False)
    assert len(only_in.lines) == 1
    np.testing.assert_allclose(back_project(np.array([[80.0, 60.0]]), np.array([3.0]), CAM.K), [[0, 0, 3.0]])


def test_bad_images() -> None:
    with pytest.raises(InputError, match="empty"):
        draw_matches(np.zeros((0, 0, 3), np.uint8), np.zeros((H, W, 3), np.uint8), _corr())
    with pytest.raises(InputError, match="uint8"):
        draw_matches(np.zeros((H, W), np.float32), np.zeros((H, W, 3), np.uint8), _corr())
