"""Depth-PC controller: correspondences + relative depth → Depth-PC graph → DepthPCNet → camera twist.

A :class:`~vs_controllers.core.cns.controller.CNSController` (goal clustering cached per goal,
recurrent state reset on a new goal, Eq. 3 with the distance prior ``d``, a unit-gain twist; see that
module for the time scaling) on Depth-PC graphs and weights, with the depth channel of Depth-PC:

- ``set_goal`` keeps the goal observation's ``goal_relative_depth`` (goal keypoints) and the goal
  graph is built from it — the **goal** depth (the authors' midend passes the current frame's);
- ``compute`` reads ``relative_depth`` (current keypoints) of each observation.

Both are any affine scale, larger = farther, NaN = unknown; the controller min–max normalises each
frame itself (:func:`~vs_controllers.core.depth_pc.graph.normalise_depth`; missing → 0), over the
keypoints the weights were trained with (``DepthPCNet.depth_norm``), so metric depth, a scaled estimate
or an estimator's output read alike.

Distance prior ``d`` (m): as CNS (``goal.info["distance_prior_m"]``, else the median valid metric goal
depth ``goal_depth``, else ``distance_prior_m``) — relative depth carries no metric scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vs_common.core.config import describe, from_mapping
from vs_common.core.errors import InputError
from vs_perception.core.types import Correspondences

from vs_controllers.core.cns.controller import CNSConfig, CNSController, NetworkConfig
from vs_controllers.core.cns.graph import GraphBatch, NodeGraph
from vs_controllers.core.depth_pc.graph import DepthGraphBuilder, DepthNodeGraph, collate_depth
from vs_controllers.core.depth_pc.network import DepthPCNet
from vs_controllers.core.protocol import ControlOutput

__all__ = ["DepthPCConfig", "DepthPCController", "DepthPCNetworkConfig", "default_checkpoint"]

DEFAULT_CHECKPOINT = "depthpc_neargoal.pt"


def default_checkpoint() -> Path:
    """The default shipped checkpoint, ``vs_controllers/weights/depthpc_neargoal.pt`` (card: ``weights/depthpc.md``)."""
    return Path(__file__).resolve().parents[2] / "weights" / DEFAULT_CHECKPOINT


@dataclass(frozen=True)
class DepthPCNetworkConfig(NetworkConfig):
    """The DepthPCNet network: its weights and where it runs (``DepthPCConfig.network``)."""

    checkpoint: str = describe("DepthPCNet weights; empty = the shipped default (weights/depthpc_neargoal.pt).",
                               default="")


@dataclass(frozen=True)
class DepthPCConfig(CNSConfig):
    """Depth-PC controller settings: CNS's (``graph.*``, the distance prior, ``min_points``) with its network."""

    network: DepthPCNetworkConfig = describe("The DepthPCNet network.", default_factory=DepthPCNetworkConfig)


class DepthPCController(CNSController):
    """The Depth-PC policy as a :class:`~vs_controllers.core.protocol.Controller` (CNS's, with depth).

    ``error`` is the mean ‖x − x*‖ over valid correspondences in normalised image units (as CNS);
    ``info["depth_points"]`` counts the valid correspondences with a current depth.

    Args:
        config: settings.
        net: an already loaded network (otherwise ``config.network.checkpoint`` is loaded).
    """

    name = "depth_pc"

    def __init__(self, config: DepthPCConfig | None = None, net: DepthPCNet | None = None) -> None:
        config = config or DepthPCConfig()
        if net is None:
            net = DepthPCNet.from_checkpoint(config.network.checkpoint or default_checkpoint(), config.network.device)
        super().__init__(config, net)
        self.graphs: DepthGraphBuilder = DepthGraphBuilder(config.graph, scope=net.attention_scope,
                                                               norm=net.depth_norm)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None) -> DepthPCController:
        """Build from a config mapping (YAML keys = :class:`DepthPCConfig` field names, nested or dotted); the
        registry's factory (``"vs_controllers.core.depth_pc.controller:DepthPCController.from_mapping"``).

        Raises:
            ConfigError: invalid settings; WeightsNotFoundError: the checkpoint file is missing.
        """
        return cls(from_mapping(DepthPCConfig, values))

    def _batch(self, graph: NodeGraph) -> GraphBatch:
        if not isinstance(graph, DepthNodeGraph):
            raise InputError("Depth-PC needs a Depth-PC graph")
        return collate_depth([graph]).to(self.device)

    def compute(self, obs: Correspondences) -> ControlOutput:
        """One Depth-PC step (CNS's step on the Depth-PC graph). Never raises for bad observations."""
        out = super().compute(obs)
        if out.ok:
            out.info["depth_points"] = self.graphs.depth_points
        return out
