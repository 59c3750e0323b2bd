"""CNS controller: correspondences → correspondence graph → GraphVS → camera twist.

Implements :class:`vs_controllers.core.protocol.Controller`. ``set_goal`` clusters the goal keypoints
(cached per goal) and resets the recurrent state; ``compute`` prunes the graph by this frame's valid
correspondences, runs one network step with the carried hidden state and applies Eq. 3 with the
distance prior ``d``.

Time scaling. The authors' training and benchmark environments apply ``2 · vel`` for ``dt = 0.02 s``
per step, i.e. the camera moves ``vel · 0.04 s`` per 0.04 s control step, and their robot sends
``vel`` to ``speedL`` directly: the network output is a velocity in m/s and rad/s. The controller
returns ``vel`` (unit gain); the servo loop (:mod:`vs_controllers.core.loop`) multiplies it by its gain,
so a constant gain of 1 with no speed limits reproduces the authors' closed loop (and, in our simulated
cell with a 0.04 s step, their per-step motion); a larger gain converges faster per second but the
recurrent state was trained on that step size. The pipeline's default loop (``config/cns.yaml``) uses
ViSP's adaptive gain on the mean point error e (reported as the error the gain reads) — the authors' loop
far from the goal, up to ``gain_zero`` times faster in the last pixels, where the network's speed shrinks
with the image error while the pose can still be centimetres off — and IBVS's speed limits.

Distance prior ``d`` (m, camera to scene centre at the goal): ``goal.info["distance_prior_m"]`` when
present, else (``distance_source = auto``) the median of the valid goal depths, else
``distance_prior_m``. The authors advise underestimating it when unsure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vs_common.core.camera import median_depth_m
from vs_common.core.config import check_choice, check_range, describe, from_mapping
from vs_common.core.errors import InputError, VisualServoError
from vs_perception.core.types import Correspondences

from vs_controllers.core.cns.graph import GraphBatch, GraphBuilder, GraphConfig, NodeGraph, collate
from vs_controllers.core.cns.network import GraphVS, T, postprocess
from vs_controllers.core.protocol import ControlOutput

__all__ = ["CNSConfig", "CNSController", "NetworkConfig", "default_checkpoint"]

DISTANCE_SOURCES = ("auto", "config")


DEFAULT_CHECKPOINT = "cns_table.pt"


def default_checkpoint() -> Path:
    """The default shipped checkpoint, ``vs_controllers/weights/cns_table.pt`` (model card: ``weights/cns.md``)."""
    return Path(__file__).resolve().parents[2] / "weights" / DEFAULT_CHECKPOINT


@dataclass(frozen=True)
class NetworkConfig:
    """The GraphVS network: its weights and where it runs (``CNSConfig.network``)."""

    checkpoint: str = describe(
        "GraphVS weights: our checkpoint or the authors' cns_state_dict.pth; "
        "empty = the shipped default (weights/cns_table.pt).",
        default="")
    device: str = describe("torch device for the network (cpu, cuda).", default="cpu")
    threads: int = describe(
        "torch CPU threads for this process (0 = torch's default, all cores). One is fastest for a ~3 ms "
        "step and leaves the other cores to the observer and the robot bridge.", default=1)

    def __post_init__(self) -> None:
        check_range("threads", self.threads, 0)


@dataclass(frozen=True)
class CNSConfig:
    """CNS controller settings: the network (``network.*``), the goal clustering of the correspondence graph
    (``graph.*``, :class:`~vs_controllers.core.cns.graph.GraphConfig`, the training's too) and Eq. 3's prior."""

    network: NetworkConfig = describe("The GraphVS network.", default_factory=NetworkConfig)
    graph: GraphConfig = describe("Goal clustering of the correspondence graph (authors' rules).",
                                  default_factory=GraphConfig)
    distance_source: str = describe(
        "auto: goal.info['distance_prior_m'], else median valid goal depth, else distance_prior_m; "
        "config: always distance_prior_m.", default="auto")
    distance_prior_m: float = describe("Distance prior d (m): camera to scene centre at the goal.", default=0.7)
    min_points: int = describe("Fewest valid correspondences to compute a twist (authors: 3).", default=3)

    def __post_init__(self) -> None:
        check_choice("distance_source", self.distance_source, DISTANCE_SOURCES)
        check_range("distance_prior_m", self.distance_prior_m, 0.0, lo_open=True)
        check_range("min_points", self.min_points, 1)


class CNSController:
    """The CNS policy as a :class:`~vs_controllers.core.protocol.Controller`.

    ``error`` is the mean ‖x − x*‖ over valid correspondences in normalised image units.

    Args:
        config: settings.
        net: an already loaded network (otherwise ``config.network.checkpoint`` is loaded).
    """

    name = "cns"

    def __init__(self, config: CNSConfig | None = None, net: GraphVS | None = None) -> None:
        self.config = config or CNSConfig()
        nc = self.config.network
        if nc.threads > 0:
            torch.set_num_threads(nc.threads)  # process-wide: torch has one intra-op pool
        if net is None:
            net = GraphVS.from_checkpoint(nc.checkpoint or default_checkpoint(), nc.device)
        self.device = torch.device(nc.device)
        self.net = net.to(self.device).eval()
        self.graphs = GraphBuilder(self.config.graph)
        self.hidden: torch.Tensor | None = None
        self._goal_terms: tuple[torch.Tensor, ...] | None = None
        self.distance_m = self.config.distance_prior_m
        self._goal: Correspondences | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None) -> CNSController:
        """Build from a config mapping (YAML keys = :class:`CNSConfig` field names, nested or dotted); the
        registry's factory (``"vs_controllers.core.cns.controller:CNSController.from_mapping"``).

        Raises:
            ConfigError: invalid settings; WeightsNotFoundError: the checkpoint file is missing.
        """
        return cls(from_mapping(CNSConfig, values))

    def set_goal(self, goal: Correspondences, labels: np.ndarray | None = None) -> None:
        """Cluster the goal keypoints (cached for an unchanged goal), fix d, reset the hidden state.

        Args:
            goal: the goal observation (goal keypoints; ``goal_depth`` and ``info["distance_prior_m"]``
                optional).
            labels: (N,) cluster labels to use instead of clustering (replaying a recorded run).

        Raises:
            InputError: ``goal`` is not a non-empty Correspondences.
        """
        if not isinstance(goal, Correspondences) or len(goal) == 0:
            raise InputError("CNS goal must be a non-empty Correspondences")
        self.graphs.set_goal(goal, labels)
        self._goal_terms = None
        self.distance_m = self._distance(goal)
        self._goal = goal
        self.reset()

    def _distance(self, goal: Correspondences) -> float:
        c = self.config
        if c.distance_source == "config":
            return c.distance_prior_m
        if "distance_prior_m" in goal.info:
            d = float(goal.info["distance_prior_m"])
            if not np.isfinite(d) or d <= 0:
                raise InputError(f"goal distance_prior_m must be positive, got {d}")
            return d
        return median_depth_m(goal.goal_depth) or c.distance_prior_m

    def _batch(self, graph: NodeGraph) -> GraphBatch:
        """This frame's graph as the network's input on its device (a subclass's graphs batch their own way)."""
        return collate([graph]).to(self.device)

    def reset(self) -> None:
        """Forget the recurrent state (the next step starts from zeros), keep the goal."""
        self.hidden = None

    @torch.inference_mode()
    def compute(self, obs: Correspondences) -> ControlOutput:
        """One CNS step. Never raises for bad observations: returns ``ControlOutput.zero(reason)``."""
        t0 = time.perf_counter()
        if self._goal is None or self.graphs.goal is None:
            return ControlOutput.zero("no goal set")
        if not isinstance(obs, Correspondences):
            return ControlOutput.zero(f"observation must be Correspondences, got {type(obs).__name__}")
        if obs.goal_id and self._goal.goal_id and obs.goal_id != self._goal.goal_id:
            return ControlOutput.zero(f"observation is for goal {obs.goal_id!r}, the goal is {self._goal.goal_id!r}")
        if obs.num_valid < self.config.min_points:
            return ControlOutput.zero(f"{obs.num_valid} valid correspondences, need {self.config.min_points}")
        try:
            graph = self.graphs.build(obs, self.distance_m)
            if graph.node_mask.sum() < self.config.min_points:
                return ControlOutput.zero("too few valid correspondences belong to the goal")
            batch = self._batch(graph)
            t1 = time.perf_counter()
            if self._goal_terms is None:
                # The goal branch of the encoder depends on the goal alone: once per goal.
                self._goal_terms = self.net.encoder.goal_terms(batch)
            v_dir, l, hidden = self.net(batch, self.hidden, self._goal_terms)
            vel = postprocess(v_dir, l, batch.dist)[0].double().cpu().numpy()
            t2 = time.perf_counter()
        except (VisualServoError, ValueError, RuntimeError) as err:
            return ControlOutput.zero(f"CNS step failed: {err}")
        if not np.all(np.isfinite(vel)):
            self.reset()
            return ControlOutput.zero("non-finite network output; hidden state reset")
        self.hidden = hidden
        x_star = self.graphs.goal.goal_xy[graph.node_mask]
        error = float(np.mean(np.linalg.norm(graph.x_cur[graph.node_mask] - x_star, axis=1)))
        return ControlOutput(
            v_c=vel, error=error,
            info={"graph_ms": 1e3 * (t1 - t0), "net_ms": 1e3 * (t2 - t1),
                  "controller_ms": 1e3 * (time.perf_counter() - t0), "num_points": int(graph.node_mask.sum()),
                  "num_clusters": graph.num_clusters, "clusters_observed": int(graph.cluster_mask.sum()),
                  "norm": float(T(l)[0, 0]), "distance_prior_m": self.distance_m})
