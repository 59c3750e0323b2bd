"""Data passed from observers to controllers (ROS-free mirror of ``vs_msgs/Correspondences``).

Conventions: pixel coordinates are ``(u, v)`` in the image of the named camera, origin at the centre
of the top-left pixel, u to the right, v down (OpenCV). Depths are metric Z in the camera optical
frame (m), NaN when unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_common.core.frames import COLOR_OPTICAL_FRAME

__all__ = ["CameraModel", "Correspondences"]


@dataclass
class Correspondences:
    """Current-image observations aligned to the goal keypoints.

    Row ``i`` always refers to goal keypoint ``goal_ids[i]`` (stable across frames for one goal), so
    recurrent controllers (CNS) can keep per-node state. Rows whose keypoint was not found in the
    current image have ``valid[i] = False`` and NaN in ``current_uv[i]``.

    Shapes: N = number of goal keypoints.
        goal_uv: (N, 2) goal pixel coordinates.
        current_uv: (N, 2) current pixel coordinates, NaN where not matched.
        valid: (N,) bool, matched and (if RANSAC ran) inlier.
        goal_ids: (N,) int64, stable goal keypoint indices.
        score: (N,) float, match quality in [0, 1] (1 best), 0 where not matched.
        goal_depth: (N,) metric depth of goal keypoints (m), NaN unknown.
        current_depth: (N,) metric depth of current keypoints (m), NaN unknown.
        relative_depth: (N,) unitless relative depth of current keypoints (Depth-PC), NaN unknown.
        goal_relative_depth: (N,) unitless relative depth of goal keypoints, NaN unknown.
        goal_stamp: stamp of the goal image (s), which its relative depth is matched by; 0 = unknown.
    """

    camera: CameraModel
    goal_uv: np.ndarray
    current_uv: np.ndarray
    valid: np.ndarray
    # None → arange(N) and valid-as-float in __post_init__: after construction both are always arrays.
    goal_ids: np.ndarray = None  # type: ignore[assignment]
    score: np.ndarray = None  # type: ignore[assignment]
    goal_depth: np.ndarray | None = None
    current_depth: np.ndarray | None = None
    relative_depth: np.ndarray | None = None
    goal_relative_depth: np.ndarray | None = None
    goal_id: str = ""
    goal_stamp: float = 0.0
    stamp: float = 0.0
    frame_id: str = COLOR_OPTICAL_FRAME
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.goal_uv = np.asarray(self.goal_uv, dtype=np.float64).reshape(-1, 2)
        n = len(self.goal_uv)
        self.current_uv = np.asarray(self.current_uv, dtype=np.float64).reshape(-1, 2)
        self.valid = np.asarray(self.valid, dtype=bool).reshape(-1)
        if self.current_uv.shape[0] != n or self.valid.shape[0] != n:
            raise InputError(
                f"correspondence arrays disagree: goal {n}, current {len(self.current_uv)}, valid {len(self.valid)}")
        if self.goal_ids is None:
            self.goal_ids = np.arange(n, dtype=np.int64)
        self.goal_ids = np.asarray(self.goal_ids, dtype=np.int64).reshape(-1)
        if self.score is None:
            self.score = self.valid.astype(np.float64)
        for name in ("goal_ids", "score", "goal_depth", "current_depth", "relative_depth",
                     "goal_relative_depth"):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.asarray(arr).reshape(-1)
            if arr.shape[0] != n:
                raise InputError(f"{name} has {arr.shape[0]} entries, expected {n}")
            setattr(self, name, arr)
        # A valid row must have finite coordinates; anything else is demoted, never trusted.
        finite = np.all(np.isfinite(self.current_uv), axis=1) & np.all(np.isfinite(self.goal_uv), axis=1)
        self.valid = self.valid & finite

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    def __len__(self) -> int:
        return len(self.goal_uv)
