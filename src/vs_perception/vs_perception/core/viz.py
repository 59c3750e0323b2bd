"""Debug views of correspondences: an annotated side-by-side image and marker-ready 3-D geometry.

Pure numpy / OpenCV. The ROS ``visualization_msgs/MarkerArray`` is built from :class:`MarkerData` in
``vs_perception.ros.conversions`` (ros2_conventions.md §6: SPHERE_LIST for keypoints, LINE_LIST for
current→goal correspondences, in ``camera_color_optical_frame``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from vs_common.core.errors import InputError

from vs_perception.core.types import Correspondences

#: RGB colours (uint8): inliers, rejected matches (outliers), goal keypoints without a match.
INLIER = (0, 220, 0)
OUTLIER = (230, 30, 30)
UNMATCHED = (150, 150, 150)


def _rgb(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"{name} image is empty")
    if image.dtype != np.uint8:
        raise InputError(f"{name} image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return image.copy()
    raise InputError(f"{name} image must be (H, W) or (H, W, 3), got {image.shape}")


def match_status(corr: Correspondences) -> np.ndarray:
    """Per row: 2 = inlier (valid), 1 = matched but rejected (finite current_uv, not valid), 0 = unmatched."""
    matched = np.all(np.isfinite(corr.current_uv), axis=1)
    return np.where(corr.valid, 2, np.where(matched, 1, 0)).astype(np.int8)


def draw_matches(goal_image: np.ndarray, current_image: np.ndarray, corr: Correspondences,
                 draw_outliers: bool = True, max_lines: int = 500, radius: int = 3) -> np.ndarray:
    """Side-by-side image ``[current | goal]`` with correspondences drawn.

    Inliers are green lines, rejected matches red, goal keypoints without a match grey dots. A legend
    with the counts is written at the top left.

    Shapes: goal_image (Hg, Wg[, 3]), current_image (Hc, Wc[, 3]) uint8 RGB or grey →
        (max(Hc, Hg), Wc + Wg, 3) uint8 RGB.
    """
    cur, goal = _rgb(current_image, "current"), _rgb(goal_image, "goal")
    h = max(cur.shape[0], goal.shape[0])
    canvas = np.zeros((h, cur.shape[1] + goal.shape[1], 3), np.uint8)
    canvas[:cur.shape[0], :cur.shape[1]] = cur
    canvas[:goal.shape[0], cur.shape[1]:] = goal
    off = np.array([cur.shape[1], 0.0])
    status = match_status(corr)
    order = np.argsort(status, kind="stable")  # draw inliers last so they stay on top
    drawn = 0
    for i in order:
        g = corr.goal_uv[i] + off
        if not np.all(np.isfinite(g)):
            continue
        if status[i] == 0:
            cv2.circle(canvas, (int(round(g[0])), int(round(g[1]))), radius, UNMATCHED, 1, cv2.LINE_AA)
            continue
        if status[i] == 1 and not draw_outliers:
            continue
        if drawn >= max_lines:
            continue
        colour = INLIER if status[i] == 2 else OUTLIER
        c = corr.current_uv[i]
        pc, pg = (int(round(c[0])), int(round(c[1]))), (int(round(g[0])), int(round(g[1])))
        cv2.line(canvas, pc, pg, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, pc, radius, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, pg, radius, colour, 1, cv2.LINE_AA)
        drawn += 1
    n_in, n_out, n_un = int((status == 2).sum()), int((status == 1).sum()), int((status == 0).sum())
    text = f"inliers {n_in}  outliers {n_out}  unmatched {n_un}  goal {corr.goal_id}"
    cv2.putText(canvas, text, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def back_project(uv: np.ndarray, depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) and depths (N,) → points (N, 3) in the optical frame: X = Z·K⁻¹[u, v, 1]ᵀ."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(depth_m, dtype=np.float64).reshape(-1)
    rays = np.linalg.solve(K, np.vstack([uv.T, np.ones(len(uv))])).T  # (N, 3), z = 1
    return rays * z[:, None]


@dataclass
class MarkerData:
    """Geometry for a MarkerArray, all in the current camera's optical frame (m).

    Shapes: current_points (M, 3) with colours (M, 3) float RGB in [0, 1]; goal_points (G, 3) with
    colours (G, 3); lines (L, 2, 3) segments current → goal with line_colors (L, 3).
    """

    current_points: np.ndarray
    current_colors: np.ndarray
    goal_points: np.ndarray
    goal_colors: np.ndarray
    lines: np.ndarray
    line_colors: np.ndarray


def correspondence_markers(corr: Correspondences, default_depth_m: float = 1.0,
                           include_outliers: bool = True) -> MarkerData:
    """Back-project current and goal keypoints (their depth, else ``default_depth_m``) and link the pairs.

    Goal points are drawn as seen from the current camera with the goal image's pixel coordinates: the
    lines then show how far each keypoint still has to move in the image, scaled by its depth.
    """
    if default_depth_m <= 0:
        raise InputError(f"default_depth_m must be > 0, got {default_depth_m}")
    K = corr.camera.K
    n = len(corr)

    def depths(arr: np.ndarray | None) -> np.ndarray:
        z = np.full(n, default_depth_m) if arr is None else np.asarray(arr, dtype=np.float64).copy()
        z[~np.isfinite(z) | (z <= 0)] = default_depth_m
        return z

    status = match_status(corr)
    colour = np.array([UNMATCHED, OUTLIER, INLIER], dtype=np.float64)[status] / 255.0
    keep = status == 2 if not include_outliers else status >= 1
    cur = back_project(np.nan_to_num(corr.current_uv), depths(corr.current_depth), K)
    goal = back_project(corr.goal_uv, depths(corr.goal_depth), K)
    goal_ok = np.all(np.isfinite(corr.goal_uv), axis=1)
    return MarkerData(current_points=cur[keep], current_colors=colour[keep],
                      goal_points=goal[goal_ok], goal_colors=np.tile([0.2, 0.4, 1.0], (int(goal_ok.sum()), 1)),
                      lines=np.stack([cur[keep & goal_ok], goal[keep & goal_ok]], axis=1).reshape(-1, 2, 3),
                      line_colors=colour[keep & goal_ok])
