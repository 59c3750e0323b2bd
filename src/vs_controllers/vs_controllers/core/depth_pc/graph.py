"""Depth-PC's correspondence graph: the CNS graph plus per-node relative depth (paper §III-A, §III-B).

The nodes, clusters and edges are CNS's (:mod:`vs_controllers.core.cns.graph`, built by its functions);
Depth-PC adds per node

- the **normalised relative depth** ``Z_norm`` of the current and of the goal keypoint: a per-frame
  min–max over the frame's keypoints with a depth, ``(Z − min)/(max − min)`` (authors' code, notes
  §2.3); a missing node or depth gets 0. Any positive affine scale of the input gives the same value,
  so metric depth, a scaled estimate and the simulator's ``Z`` all read alike (larger = farther).
  Over which keypoints (``norm``, :data:`DEPTH_NORMS`): ``frame`` (the authors') takes each frame's own —
  the current frame's observed keypoints, all of the goal's — so when a keypoint at the nearest or farthest
  depth comes or goes, every current value moves and the current and goal values of a keypoint differ
  even at the goal. ``common`` (not in the paper) takes, for both frames, the keypoints observed with a
  depth in both, so equal depths map to equal values and a lost extreme rescales both frames alike;
  the goal's other keypoints get the same affine map (values may leave [0, 1]; clipped to [-1, 2]);
- the **attention pairs** of the feature fusion module, ``[query i; key j]``: every ordered pair of
  nodes in the same goal cluster (``scope = "cluster"``, the paper's Cluster Cross Attention, Eq. 6)
  or in the same graph (``"graph"``), current pairs restricted to observed nodes. Pairs never cross
  graphs, so batching cannot mix graphs (the authors' batched attention does, notes §2.2).

Pure functions (:func:`normalise_depth`, :func:`attention_pairs`, :func:`add_depth`, :func:`build_depth_graph`,
:func:`collate_depth`) and a builder that maps observations onto goal rows (:class:`DepthGraphBuilder`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from vs_common.core.config import check_choice
from vs_common.core.errors import InputError
from vs_perception.core.types import Correspondences

from vs_controllers.core.cns.graph import (
    GoalGraph,
    GraphBatch,
    GraphBuilder,
    GraphConfig,
    NodeGraph,
    build_correspondence_graph,
    collate,
)

__all__ = [
    "ATTENTION_SCOPES", "DepthGraphBatch", "DepthGraphBuilder", "DepthNodeGraph", "add_depth", "attention_pairs",
    "DEPTH_NORMS", "build_depth_graph", "collate_depth", "goal_side", "normalise_depth",
]

ATTENTION_SCOPES = ("cluster", "graph")
#: Which keypoints set each frame's min–max (module docstring): each frame's own (the authors'), or the common ones.
DEPTH_NORMS = ("frame", "common")
# Under ``common``, keypoints off the common basis can map far outside [0, 1] when the basis spans little depth.
_COMMON_RANGE = (-1.0, 2.0)


def normalise_depth(z: np.ndarray, keep: np.ndarray | None = None, basis: np.ndarray | None = None) -> np.ndarray:
    """Per-frame min–max normalisation of keypoint depths (notes §2.3).

    Args:
        z: (N,) depths in any affine scale (larger = farther), NaN unknown.
        keep: (N,) bool nodes taking part (default all); the others get 0.
        basis: (N,) bool nodes whose finite depths set min and max (default: the kept ones).

    Returns:
        (N,) float32: ``(z − min)/(max − min)`` (in [0, 1] on the basis) for the kept finite depths, 0 for
        missing nodes and unknown depths, and 0 everywhere when the basis has no spread.
    """
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    ok = np.isfinite(z) if keep is None else np.isfinite(z) & np.asarray(keep, dtype=bool).reshape(-1)
    ref = ok if basis is None else np.isfinite(z) & np.asarray(basis, dtype=bool).reshape(-1)
    out = np.zeros(len(z), dtype=np.float32)
    if ref.any():
        lo, hi = z[ref].min(), z[ref].max()
        if hi - lo > 1e-12:
            out[ok] = ((z[ok] - lo) / (hi - lo)).astype(np.float32)
    return out


def attention_pairs(labels: np.ndarray, keep: np.ndarray, scope: str = "cluster") -> np.ndarray:
    """Ordered ``[query; key]`` pairs (2, A) of kept nodes in the same cluster (or graph), self-pairs included."""
    check_choice("scope", scope, ATTENTION_SCOPES)
    idx = np.flatnonzero(np.asarray(keep, dtype=bool))
    if scope == "graph":
        same = np.ones((len(idx), len(idx)), dtype=bool)
    else:
        lab = np.asarray(labels)[idx]
        same = lab[:, None] == lab[None, :]
    q, k = np.nonzero(same)
    return np.stack([idx[q], idx[k]]).astype(np.int64)


@dataclass
class DepthNodeGraph(NodeGraph):
    """A :class:`NodeGraph` with Depth-PC's node depths and attention pairs.

    Shapes: N nodes, Ac / At attention pairs.
        z_cur, z_tar: (N,) float32 normalised current / goal depth (0 where missing).
        att_cur: (2, Ac) pairs of observed nodes; att_tar: (2, At) pairs of all goal nodes.
    """

    z_cur: np.ndarray = None  # type: ignore[assignment]  # always set by build_depth_graph
    z_tar: np.ndarray = None  # type: ignore[assignment]
    att_cur: np.ndarray = None  # type: ignore[assignment]
    att_tar: np.ndarray = None  # type: ignore[assignment]


def goal_side(base: NodeGraph, goal_depth: np.ndarray, scope: str = "cluster") -> tuple[np.ndarray, np.ndarray]:
    """The goal frame's part of a Depth-PC graph, which depends on the goal alone: ``z_tar`` (N,) and
    ``att_tar`` (2, At) (:class:`DepthNodeGraph`)."""
    goal_depth = np.asarray(goal_depth, dtype=np.float64).reshape(-1)
    if len(goal_depth) != base.num_nodes:
        raise InputError(f"{len(goal_depth)} goal depths for {base.num_nodes} goal keypoints")
    return normalise_depth(goal_depth), attention_pairs(base.labels, np.ones(base.num_nodes, dtype=bool), scope)


def add_depth(base: NodeGraph, current_depth: np.ndarray, goal_depth: np.ndarray,
              scope: str = "cluster", goal: tuple[np.ndarray, np.ndarray] | None = None,
              norm: str = "frame") -> DepthNodeGraph:
    """A CNS graph plus normalised depths and attention pairs.

    Args:
        base: this frame's CNS graph (:func:`build_correspondence_graph`).
        current_depth: (N,) raw relative depth of the current keypoints (any affine scale), NaN unknown.
        goal_depth: (N,) raw relative depth of the goal keypoints, NaN unknown.
        scope: attention scope (:data:`ATTENTION_SCOPES`).
        goal: :func:`goal_side` of this goal, if the caller keeps it (computed here otherwise; under ``common``
            only its attention pairs are used, since the goal's values then depend on the frame).
        norm: which keypoints set the min–max (:data:`DEPTH_NORMS`, module docstring). Under ``common`` with
            fewer than two common keypoints it falls back to ``frame``.
    """
    check_choice("norm", norm, DEPTH_NORMS)
    n = base.num_nodes
    current_depth = np.asarray(current_depth, dtype=np.float64).reshape(-1)
    if len(current_depth) != n:
        raise InputError(f"{len(current_depth)} current depths for {n} goal keypoints")
    z_tar, att_tar = goal_side(base, goal_depth, scope) if goal is None else goal
    z_cur = None
    if norm == "common":
        goal_depth = np.asarray(goal_depth, dtype=np.float64).reshape(-1)
        both = np.asarray(base.node_mask, dtype=bool) & np.isfinite(current_depth) & np.isfinite(goal_depth)
        if both.sum() >= 2:
            z_cur = np.clip(normalise_depth(current_depth, base.node_mask, basis=both), *_COMMON_RANGE)
            z_tar = np.clip(normalise_depth(goal_depth, basis=both), *_COMMON_RANGE)
    if z_cur is None:  # frame, or too few common keypoints
        z_cur = normalise_depth(current_depth, base.node_mask)
    return DepthNodeGraph(**vars(base), z_cur=z_cur, z_tar=z_tar,
                          att_cur=attention_pairs(base.labels, base.node_mask, scope), att_tar=att_tar)


def build_depth_graph(goal: GoalGraph, current_xy: np.ndarray, valid: np.ndarray, dist: float,
                      current_depth: np.ndarray, goal_depth: np.ndarray, scope: str = "cluster",
                      norm: str = "frame") -> DepthNodeGraph:
    """:func:`build_correspondence_graph` then :func:`add_depth` (arguments as theirs)."""
    return add_depth(build_correspondence_graph(goal, current_xy, valid, dist), current_depth, goal_depth, scope,
                     norm=norm)


@dataclass
class DepthGraphBatch(GraphBatch):
    """A :class:`GraphBatch` with Depth-PC's node fields (indices offset per graph).

    Shapes: Nn total nodes.
        z_cur, z_tar: (Nn,) normalised depths; node_batch: (Nn,) graph of each node;
        att_cur, att_tar: (2, A) attention pairs [query; key].
    """

    z_cur: Tensor = None  # type: ignore[assignment]  # always set by collate_depth
    z_tar: Tensor = None  # type: ignore[assignment]
    node_batch: Tensor = None  # type: ignore[assignment]
    att_cur: Tensor = None  # type: ignore[assignment]
    att_tar: Tensor = None  # type: ignore[assignment]

    def to(self, device: torch.device | str) -> DepthGraphBatch:
        """Move every tensor to ``device``."""
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(self).items()}
        return DepthGraphBatch(**moved)  # type: ignore[arg-type]  # vars() loses the per-field types


def collate_depth(graphs: list[DepthNodeGraph]) -> DepthGraphBatch:
    """Concatenate Depth-PC graphs into one :class:`DepthGraphBatch` (CNS's :func:`collate` plus depth)."""
    base = collate(list(graphs))
    n_off = np.cumsum([0] + [g.num_nodes for g in graphs[:-1]])
    t = torch.from_numpy
    return DepthGraphBatch(
        **vars(base),
        z_cur=t(np.concatenate([g.z_cur for g in graphs]).astype(np.float32)),
        z_tar=t(np.concatenate([g.z_tar for g in graphs]).astype(np.float32)),
        node_batch=t(np.concatenate([np.full(g.num_nodes, i, dtype=np.int64) for i, g in enumerate(graphs)])),
        att_cur=t(np.concatenate([g.att_cur + o for g, o in zip(graphs, n_off)], axis=1)),
        att_tar=t(np.concatenate([g.att_tar + o for g, o in zip(graphs, n_off)], axis=1)))


class DepthGraphBuilder(GraphBuilder):
    """CNS's :class:`GraphBuilder` (goal clustering cache, rows by goal id) building Depth-PC graphs.

    ``set_goal`` also keeps the goal keypoints' relative depth (``Correspondences.goal_relative_depth``
    of the goal observation, in goal-row order; NaN when it has none) — the goal graph's depth is the
    goal's; ``build`` aligns each observation's ``relative_depth`` to the goal rows as it aligns the
    coordinates and returns a :class:`DepthNodeGraph`.

    Args:
        cfg: goal clustering settings (CNS's).
        scope: attention scope (:data:`ATTENTION_SCOPES`).
        norm: depth normalisation (:data:`DEPTH_NORMS`).
    """

    def __init__(self, cfg: GraphConfig | None = None, scope: str = "cluster", norm: str = "frame") -> None:
        super().__init__(cfg)
        check_choice("scope", scope, ATTENTION_SCOPES)
        check_choice("norm", norm, DEPTH_NORMS)
        self.scope, self.norm = scope, norm
        self.goal_depth: np.ndarray | None = None
        self._goal_side: tuple[np.ndarray, np.ndarray] | None = None  # goal_side() of this goal, once built
        #: Correspondences with a current depth in the last :meth:`build`.
        self.depth_points = 0

    def set_goal(self, goal: Correspondences, labels: np.ndarray | None = None) -> tuple[GoalGraph, bool]:
        """CNS's :meth:`GraphBuilder.set_goal`, then keep the goal's relative depth (even for a cached goal)."""
        graph, rebuilt = super().set_goal(goal, labels)
        self._goal_side = None
        z = goal.goal_relative_depth
        self.goal_depth = (np.full(graph.num_nodes, np.nan) if z is None
                           else np.asarray(z, dtype=np.float64).reshape(-1).copy())
        return graph, rebuilt

    def current_depth(self, obs: Correspondences) -> np.ndarray:
        """The observation's ``relative_depth`` on the goal rows (N,), NaN where unknown or unmatched."""
        assert self.goal is not None  # callers check
        z = np.full(self.goal.num_nodes, np.nan)
        if obs.relative_depth is not None:
            rows = self.rows(obs)
            known = (rows >= 0) & obs.valid
            z[rows[known]] = np.asarray(obs.relative_depth, dtype=np.float64)[known]
        return z

    def build(self, obs: Correspondences, dist: float) -> DepthNodeGraph:
        """This frame's Depth-PC graph (rows whose goal id is unknown are ignored).

        Raises:
            InputError: no goal is set.
        """
        base = super().build(obs, dist)
        assert self.goal_depth is not None  # set with the goal; super().build raised without one
        current = self.current_depth(obs)
        self.depth_points = int(np.isfinite(current).sum())
        if self._goal_side is None:
            self._goal_side = goal_side(base, self.goal_depth, self.scope)
        return add_depth(base, current, self.goal_depth, self.scope, goal=self._goal_side, norm=self.norm)
