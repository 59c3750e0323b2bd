"""Relative depth at keypoints: the latest depth map, the goal image's depth map, sampled at pixels.

A relative-depth source (Depth Anything V2, the camera's aligned depth, SGBM on the IR pair; see
:mod:`vs_perception.core.relative_depth`) is slower than the keypoint observer (Depth Anything V2 Small:
0.3-1.4 s a frame on 2 cores), so it runs on its own and the servo loop never waits for it: each
observation samples the *latest* map at its current keypoints, and the map's age (observation stamp −
map stamp, on the image clock) says how stale that depth is.

The goal keypoints are sampled once per goal in the depth map *of the goal image*: among the goal maps
received (:meth:`KeypointDepth.add_goal`), the one whose stamp is nearest the goal's stamp, within
``goal_stamp_tolerance_s``. Until there is one, :meth:`KeypointDepth.goal_values` returns None (the
controller then waits with a zero twist; nothing blocks).

Convention: any affine scale, larger = farther, NaN = unknown (the Depth-PC controller min-max normalises
the values of each frame itself, kovis_depthpc_kp2d_notes.md §2.3). Pixels are in the grid of the image
the map came from (``image_size``); a map stored at another resolution of the same grid (a half-size
Depth Anything output) is sampled at scaled pixels.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from vs_common.core.config import check_range, describe
from vs_common.core.errors import InputError

from vs_perception.core.relative_depth import sample_at

__all__ = ["DepthMap", "KeypointDepth", "KeypointDepthConfig"]

#: ``post(uv (N, 2) px, z (N,)) -> (N,)``: applied to sampled values (the benchmark's depth-error model).
PostSample = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class KeypointDepthConfig:
    """How observations are given the relative depth of their keypoints."""

    goal_stamp_tolerance_s: float = describe(
        "Use a goal depth map stamped at most this far from the goal's stamp (s); the relative_depth node "
        "stamps the goal image's depth with the goal's stamp, so this only matters for sources without a "
        "goal image of their own (SGBM: the nearest IR frame).", default=0.5)
    max_age_s: float = describe(
        "Current depth maps older than this (observation stamp − map stamp, s) give NaN depths; 0 = no limit "
        "(the map's age is reported either way).", default=5.0)
    goal_maps: int = describe("Goal depth maps kept to match a goal's stamp against.", default=4)

    def __post_init__(self) -> None:
        check_range("goal_stamp_tolerance_s", self.goal_stamp_tolerance_s, 0.0, 60.0)
        check_range("max_age_s", self.max_age_s, 0.0, 3600.0)
        check_range("goal_maps", self.goal_maps, 1, 64)


@dataclass(frozen=True)
class DepthMap:
    """One relative-depth map.

    Attributes:
        depth: (h, w) float32, larger = farther, NaN unknown.
        stamp: stamp of the source image (s).
        image_size: (width, height) of the source image, whose pixel grid keypoints are given in; None =
            the map's own size.
        post: applied to the sampled values, or None.
    """

    depth: np.ndarray
    stamp: float
    image_size: tuple[int, int] = None  # type: ignore[assignment]  # None → the map's size in __post_init__
    post: PostSample | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        d = np.asarray(self.depth, dtype=np.float32)
        if d.ndim != 2 or d.size == 0:
            raise InputError(f"a depth map must be a non-empty (H, W) array, got shape {d.shape}")
        if not math.isfinite(float(self.stamp)):
            raise InputError(f"depth map stamp {self.stamp!r} is not finite")
        object.__setattr__(self, "depth", d)
        size = (d.shape[1], d.shape[0]) if self.image_size is None else tuple(int(s) for s in self.image_size)
        if len(size) != 2 or min(size) <= 0:
            raise InputError(f"image_size must be (width, height) > 0, got {self.image_size!r}")
        object.__setattr__(self, "image_size", size)

    def sample(self, uv: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """Bilinear values at pixels ``uv`` (N, 2) of an image of ``image_size`` (width, height); NaN
        outside the map, at NaN pixels and at non-finite ``uv``.

        Raises:
            InputError: ``image_size`` is not the map's source image size.
        """
        if tuple(int(s) for s in image_size) != self.image_size:
            raise InputError(f"depth map of a {self.image_size[0]}x{self.image_size[1]} image sampled at pixels "
                             f"of a {image_size[0]}x{image_size[1]} image")
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        h, w = self.depth.shape
        # Pixel centres map to pixel centres: u' + 0.5 = (u + 0.5) · w / W.
        sx, sy = w / self.image_size[0], h / self.image_size[1]
        scaled = np.stack([(uv[:, 0] + 0.5) * sx - 0.5, (uv[:, 1] + 0.5) * sy - 0.5], axis=1)
        finite = np.all(np.isfinite(scaled), axis=1)
        z = np.full(len(uv), np.nan, np.float32)
        if finite.any():
            z[finite] = sample_at(self.depth, scaled[finite])
        if self.post is not None and len(z):
            z = np.asarray(self.post(uv, z), dtype=np.float32).reshape(-1)
        return z


class KeypointDepth:
    """The latest relative-depth map and the goal image's, sampled at keypoints (module docstring).

    Args:
        config: goal-stamp tolerance, maximum age, goal maps kept.
    """

    def __init__(self, config: KeypointDepthConfig | None = None) -> None:
        self.config = config or KeypointDepthConfig()
        self.latest: DepthMap | None = None
        self._goals: deque[DepthMap] = deque(maxlen=self.config.goal_maps)

    def update(self, depth_map: DepthMap) -> None:
        """A new current map (the newest stamp wins; an older one arriving late is ignored)."""
        if self.latest is None or depth_map.stamp >= self.latest.stamp:
            self.latest = depth_map

    def add_goal(self, depth_map: DepthMap) -> None:
        """A depth map of a goal image (matched to goals by stamp)."""
        self._goals.append(depth_map)

    def goal_map(self, goal_stamp: float) -> DepthMap | None:
        """The goal map nearest ``goal_stamp`` within the tolerance, or None."""
        best = min(self._goals, key=lambda m: abs(m.stamp - goal_stamp), default=None)
        if best is None or abs(best.stamp - goal_stamp) > self.config.goal_stamp_tolerance_s:
            return None
        return best

    def age_s(self, stamp: float) -> float:
        """How old the latest map is at an observation stamped ``stamp`` (s); NaN without a map."""
        return math.nan if self.latest is None else float(stamp) - self.latest.stamp

    def current_values(self, uv: np.ndarray, image_size: tuple[int, int], stamp: float) -> np.ndarray:
        """The latest map at ``uv`` (N, 2); all NaN without a map or when it is older than ``max_age_s``."""
        age = self.age_s(stamp)
        limit = self.config.max_age_s
        if self.latest is None or (limit > 0 and age > limit):
            return np.full(len(np.asarray(uv).reshape(-1, 2)), np.nan, np.float32)
        return self.latest.sample(uv, image_size)

    def goal_values(self, goal_uv: np.ndarray, image_size: tuple[int, int], goal_stamp: float) -> np.ndarray | None:
        """The goal image's map at the goal keypoints ``goal_uv`` (N, 2); None until that map is here."""
        m = self.goal_map(goal_stamp)
        return None if m is None else m.sample(goal_uv, image_size)
