"""Input stages: what a pipeline's spec inputs add to an observation before its controller sees it.

The servo loop (:class:`~vs_controllers.core.loop.ServoLoop`) runs the stages :func:`make_inputs` builds
from a spec's :attr:`~vs_controllers.core.pipelines.PipelineSpec.inputs`, the same for the controller node
and the benchmark. Whoever receives the data behind an input feeds its stage (the node from a topic, the
benchmark from the rendered cell); the stage never waits for it.

- :data:`Input.RELATIVE_DEPTH` → :class:`RelativeDepthInput`: the goal's ``goal_relative_depth`` from the
  goal image's map at the goal keypoints (the controller gets its goal once that map is here; until then
  each step is a zero twist with the reason :data:`WAITING_FOR_GOAL_DEPTH`), and each observation's
  ``relative_depth`` from the latest map at its current keypoints (NaN where unknown) with the goal's
  ``goal_relative_depth``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from vs_perception.core.keypoint_depth import KeypointDepth, KeypointDepthConfig
from vs_perception.core.types import Correspondences

from vs_controllers.core.loop import ObservationStage
from vs_controllers.core.pipelines import Input, PipelineSpec

__all__ = ["INPUT_STAGES", "WAITING_FOR_GOAL_DEPTH", "RelativeDepthInput", "make_inputs"]

WAITING_FOR_GOAL_DEPTH = "waiting for the goal's depth"


class RelativeDepthInput:
    """Fills the relative depth of a :class:`Correspondences` from a :class:`KeypointDepth`.

    Args:
        config: goal-stamp tolerance and maximum age of the depth maps.

    Attributes:
        depth: the maps; feed it with ``depth.update(DepthMap)`` (current images) and ``depth.add_goal``
            (goal images).
    """

    def __init__(self, config: KeypointDepthConfig | None = None) -> None:
        self.depth = KeypointDepth(config)
        self._goal: Correspondences | None = None
        self._goal_values: np.ndarray | None = None

    def set_goal(self, goal: Correspondences) -> None:
        """A new goal: its keypoints' depth is sampled once its image's depth map is here."""
        self._goal, self._goal_values = goal, None

    def goal_values(self, obs: Correspondences) -> np.ndarray | None:
        """The goal keypoints' relative depth (sampled once per goal), None while its map is missing."""
        goal = self._goal if self._goal is not None else obs
        if self._goal_values is None or len(self._goal_values) != len(obs):
            size = (obs.camera.width, obs.camera.height)
            self._goal_values = self.depth.goal_values(goal.goal_uv, size, goal.goal_stamp)
        return self._goal_values

    def prepare_goal(self, goal: Correspondences) -> tuple[Correspondences, str]:
        values = self.goal_values(goal)
        if values is None:
            return goal, WAITING_FOR_GOAL_DEPTH
        return dataclasses.replace(goal, goal_relative_depth=values.copy()), ""

    def age_s(self, stamp: float) -> float:
        """Age of the latest map at an observation stamped ``stamp`` (s); NaN without a map."""
        return self.depth.age_s(stamp)

    def prepare(self, obs: Correspondences) -> tuple[Correspondences, str]:
        goal = self.goal_values(obs)
        if goal is None:
            return obs, WAITING_FOR_GOAL_DEPTH
        size = (obs.camera.width, obs.camera.height)
        current = self.depth.current_values(obs.current_uv, size, obs.stamp)
        current[~obs.valid] = np.nan
        info = {**obs.info, "relative_depth_age_s": self.age_s(obs.stamp)}
        return dataclasses.replace(obs, relative_depth=current, goal_relative_depth=goal.copy(), info=info), ""


#: The stage of each input that has one (the others reach the controller as they are).
INPUT_STAGES: dict[Input, Callable[[Mapping[str, Any]], ObservationStage]] = {
    Input.RELATIVE_DEPTH: lambda settings: RelativeDepthInput(settings.get("relative_depth")),
}


def make_inputs(spec: PipelineSpec, settings: Mapping[str, Any] | None = None) -> dict[Input, ObservationStage]:
    """The input stages of ``spec``, by input, in the spec's order.

    Args:
        spec: the pipeline.
        settings: per-stage config by stage name (``{"relative_depth": KeypointDepthConfig(...)}``); a
            missing one takes its defaults.
    """
    settings = dict(settings or {})
    return {i: INPUT_STAGES[i](settings) for i in spec.inputs if i in INPUT_STAGES}
