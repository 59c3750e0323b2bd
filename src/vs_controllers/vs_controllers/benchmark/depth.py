"""Relative depth in the benchmark, for pipelines whose spec needs ``Input.RELATIVE_DEPTH`` (Depth-PC).

The episode feeds the pipeline's relative-depth stage (:class:`~vs_controllers.core.inputs.RelativeDepthInput`)
as the relative_depth node feeds the controller node: a map of the goal image, then one map per rendered
frame. ``source`` chooses where the maps come from:

- ``render``: the renderer's metric depth, min-max normalised (:func:`metric_to_relative`: larger = farther);
- ``sgbm``: StereoSGBM on the cell's rendered IR pair, resampled into the colour grid and normalised the
  same way (what the relative_depth node's ``sgbm`` source computes);
- ``render_error``: the renderer's depth at the keypoints through the depth-error model
  (:func:`~vs_controllers.core.depth_pc.depth_error.apply_depth_error`, default strengths), a fresh error
  draw per frame from a generator seeded per scene (``seed`` and the scene id).

``delay_steps`` simulates the asynchronous depth: the controller samples the map of ``k`` steps ago (the
first frame's until there is one); the default is 0 for ``render`` / ``sgbm`` and
:data:`RENDER_ERROR_DELAY_STEPS` for ``render_error``, which stands for Depth Anything V2.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import InputError
from vs_perception.core.keypoint_depth import DepthMap, KeypointDepth
from vs_perception.core.relative_depth import metric_to_relative
from vs_perception.core.stereo_depth import StereoDepthEstimator, stereo_depth_in_color

__all__ = ["DEPTH_SOURCES", "RENDER_ERROR_DELAY_STEPS", "BenchDepth", "DepthSourceConfig"]

DEPTH_SOURCES = ("render", "sgbm", "render_error")
#: Depth Anything V2 Small's best case on 2 cores (0.3 s a frame) in steps of the benchmark's 0.04 s.
RENDER_ERROR_DELAY_STEPS = 8


@dataclass(frozen=True)
class DepthSourceConfig:
    """Where a benchmark episode's relative depth comes from (part of the journal identity)."""

    source: str = describe("'render' (renderer depth, normalised), 'sgbm' (SGBM on the rendered IR pair) or "
                           "'render_error' (renderer depth through the depth-error model).", default="render")
    delay_steps: int = describe(
        "Sample the map of this many steps ago (asynchronous depth); -1 = the source's default (render, sgbm: "
        f"0; render_error: {RENDER_ERROR_DELAY_STEPS}).", default=-1)

    def __post_init__(self) -> None:
        check_choice("source", self.source, DEPTH_SOURCES)
        check_range("delay_steps", self.delay_steps, -1, 10_000)

    @property
    def delay(self) -> int:
        """The delay in steps, defaults resolved."""
        if self.delay_steps >= 0:
            return self.delay_steps
        return RENDER_ERROR_DELAY_STEPS if self.source == "render_error" else 0

    def identity(self) -> dict[str, Any]:
        """What the journal keys episodes by (defaults resolved)."""
        return {"source": self.source, "delay_steps": self.delay}


def scene_rng(seed: int, scene_id: Any) -> np.random.Generator:
    """The depth-error generator of one scene: the same per scene and seed, whatever runs before it."""
    return np.random.default_rng([int(seed), zlib.crc32(str(scene_id).encode())])


class BenchDepth:
    """One episode's relative-depth maps, fed into a :class:`KeypointDepth` (the pipeline's stage).

    Args:
        config: the source and its delay.
        cell: the episode's cell (``camera``, ``ir_camera``, ``baseline_m``).
        target: the stage's maps.
        rng: the depth-error generator (``render_error``), e.g. :func:`scene_rng`.
    """

    def __init__(self, config: DepthSourceConfig, cell: Any, target: KeypointDepth,
                 rng: np.random.Generator | None = None) -> None:
        self.config, self.cell, self.target = config, cell, target
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._history: deque[DepthMap] = deque(maxlen=config.delay + 1)
        self._stereo = StereoDepthEstimator() if config.source == "sgbm" else None

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams to render per frame (the IR pair for ``sgbm``)."""
        return ("color", "depth", "ir") if self.config.source == "sgbm" else ("color", "depth")

    def depth_map(self, frame: Any, stamp: float) -> DepthMap:
        """The relative-depth map of a rendered frame, stamped ``stamp``.

        Raises:
            InputError: the frame lacks the stream the source needs, or has no valid depth.
        """
        cam = self.cell.camera
        size = (cam.width, cam.height)
        if self.config.source == "sgbm":
            if frame.ir_left is None or frame.ir_right is None:
                raise InputError("the sgbm depth source needs the rendered IR pair")
            assert self._stereo is not None
            z = stereo_depth_in_color(self._stereo, frame.ir_left, frame.ir_right, self.cell.ir_camera.K,
                                      self.cell.baseline_m, cam.K, size)
            return DepthMap(metric_to_relative(z), stamp, size)
        if frame.depth is None:
            raise InputError(f"the {self.config.source} depth source needs the rendered depth")
        if self.config.source == "render":
            return DepthMap(metric_to_relative(frame.depth), stamp, size)
        from vs_controllers.core.depth_pc.depth_error import apply_depth_error

        rng = self.rng
        return DepthMap(np.asarray(frame.depth, np.float32), stamp, size,
                        post=lambda uv, z: apply_depth_error(uv, z, rng))

    def goal(self, frame: Any, stamp: float) -> None:
        """The goal image's map (stamped like the goal)."""
        self.target.add_goal(self.depth_map(frame, stamp))

    def step(self, frame: Any, stamp: float) -> None:
        """This frame's map; the stage gets the one of ``delay`` steps ago (the oldest there is)."""
        try:
            self._history.append(self.depth_map(frame, stamp))
        except InputError:
            pass  # no depth this frame (nothing in view): the previous maps stand, as with a dropped frame
        if self._history:
            self.target.update(self._history[0])
