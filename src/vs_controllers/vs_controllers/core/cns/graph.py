"""The CNS correspondence graph (paper §III-A; authors' ``graph_gen.py`` / ``corr2graph.py``).

One node per *goal* keypoint, matched or not. The goal keypoints are clustered once per goal
(affinity propagation, the authors' rules in :func:`cluster_goal_keypoints`); each cluster's centre is
the member nearest the cluster's coordinate-wise median. Edges, stored PyG-style as
``[source; target]``:

- ``E⁰`` (node → its cluster): ``j → c(j)`` for every node, pruned of nodes missing in this frame;
- ``E¹`` (cluster ↔ cluster): all ``C × C`` ordered pairs including self-loops; ``*E¹`` is always
  complete, ``ᶜE¹`` drops every edge touching a cluster with no observed member.

Coordinates are normalised image-plane coordinates ``x = (u - cx)/fx``, ``y = (v - cy)/fy``. Missing
current nodes carry a placeholder (never read: they have no edges).

The math is in pure functions (:func:`cluster_goal_keypoints`, :func:`cluster_centres`,
:func:`build_goal_graph`, :func:`build_correspondence_graph`, :func:`collate`); :class:`GraphBuilder`
holds the config and the goal-graph cache (recluster only when the goal changes) and maps
observations to goal rows by their stable goal ids.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import AffinityPropagation, KMeans
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor
from vs_common.core.config import check_range, describe
from vs_common.core.errors import InputError
from vs_perception.core.types import Correspondences

__all__ = [
    "GoalGraph", "GraphBatch", "GraphBuilder", "GraphConfig", "NodeGraph", "build_correspondence_graph",
    "build_goal_graph", "cluster_centres", "cluster_goal_keypoints", "collate", "dense_edges",
]


@dataclass(frozen=True)
class GraphConfig:
    """Goal clustering (authors' rules: AP above 16 points, damping 0.9, KMeans(4) fallback)."""

    singleton_max_points: int = describe(
        "With at most this many goal keypoints every keypoint is its own cluster (authors: 16).", default=16)
    ap_damping: float = describe("Affinity-propagation damping in [0.5, 1).", default=0.9)
    ap_max_iter: int = describe("Affinity-propagation iteration cap (sklearn default 200).", default=200)
    min_clusters: int = describe(
        "Fewer AP clusters than this (or no convergence) falls back to KMeans with this many clusters.", default=4)
    retries: int = describe("Clustering attempts before giving up (authors: 3).", default=3)
    seed: int = describe("Seed of the clustering's tie-breaking noise (the authors leave it random).", default=0)

    def __post_init__(self) -> None:
        check_range("singleton_max_points", self.singleton_max_points, 1)
        check_range("ap_damping", self.ap_damping, 0.5, 1.0, hi_open=True)
        check_range("ap_max_iter", self.ap_max_iter, 1)
        check_range("min_clusters", self.min_clusters, 1)
        check_range("retries", self.retries, 1)


def cluster_goal_keypoints(goal_xy: np.ndarray, cfg: GraphConfig | None = None,
                           rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Cluster goal keypoints the authors' way.

    ``N ≤ singleton_max_points``: one cluster per point. Otherwise ``AffinityPropagation`` (euclidean
    affinity, median preference, ``damping``); fewer than ``min_clusters`` clusters, including the
    no-convergence case (all labels −1), falls back to ``KMeans(min_clusters)``.

    Args:
        goal_xy: (N, 2) normalised goal coordinates.
        cfg: clustering settings.
        rng: seed or generator for sklearn's random tie-breaking.

    Returns:
        (N,) int64 labels in ``0..C-1``, every label used.
    """
    cfg = cfg or GraphConfig()
    goal_xy = np.asarray(goal_xy, dtype=np.float64).reshape(-1, 2)
    n = len(goal_xy)
    if n == 0:
        raise InputError("cannot cluster an empty goal")
    if n <= cfg.singleton_max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(rng)
    labels = None
    for _ in range(cfg.retries):
        seed = int(rng.integers(2**31 - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = AffinityPropagation(damping=cfg.ap_damping, max_iter=cfg.ap_max_iter,
                                         random_state=seed).fit_predict(goal_xy)
        if labels.min() >= 0 and len(np.unique(labels)) >= cfg.min_clusters:
            break
        k = min(cfg.min_clusters, len(np.unique(goal_xy, axis=0)))
        labels = KMeans(n_clusters=k, n_init="auto", random_state=seed).fit_predict(goal_xy)
        if len(np.unique(labels)) == k:
            break
    assert labels is not None  # GraphConfig.retries >= 1
    # Relabel to 0..C-1 so cluster rows are dense.
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64)


def cluster_centres(goal_xy: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Centre of each cluster: the member nearest the coordinate-wise median of the members.

    Returns:
        (C,) int64 node indices, ordered by label.
    """
    labels = np.asarray(labels, dtype=np.int64)
    centres = np.empty(int(labels.max()) + 1, dtype=np.int64)
    for k in range(len(centres)):
        members = np.flatnonzero(labels == k)
        if len(members) == 0:
            raise InputError(f"cluster {k} has no member; labels must be dense")
        d = np.linalg.norm(goal_xy[members] - np.median(goal_xy[members], axis=0), axis=1)
        centres[k] = members[np.argmin(d)]
    return centres


def dense_edges(num: int) -> np.ndarray:
    """All ordered pairs of ``num`` vertices, self-loops included: (2, num²) as [source; target]."""
    src, dst = np.meshgrid(np.arange(num), np.arange(num), indexing="ij")
    return np.stack([src.reshape(-1), dst.reshape(-1)]).astype(np.int64)


@dataclass
class GoalGraph:
    """The static part of the graph, built once per goal.

    Shapes: N goal keypoints, C clusters.
        goal_xy: (N, 2) normalised goal coordinates.
        labels: (N,) cluster of each node.
        centres: (C,) node index of each cluster centre.
        goal_ids: (N,) stable goal keypoint ids of the rows.
        key: identity of the goal (for the cache).
    """

    goal_xy: np.ndarray
    labels: np.ndarray
    centres: np.ndarray
    goal_ids: np.ndarray
    key: str = ""

    @property
    def num_nodes(self) -> int:
        return len(self.goal_xy)

    @property
    def num_clusters(self) -> int:
        return len(self.centres)


def build_goal_graph(goal_xy: np.ndarray, goal_ids: np.ndarray | None = None, cfg: GraphConfig | None = None,
                     labels: np.ndarray | None = None, rng: np.random.Generator | int | None = None,
                     key: str = "") -> GoalGraph:
    """Cluster the goal keypoints (or take given ``labels``) and pick the centres.

    Args:
        goal_xy: (N, 2) normalised goal coordinates.
        goal_ids: (N,) stable ids (default ``arange(N)``).
        cfg: clustering settings.
        labels: (N,) labels to use instead of clustering (e.g. a recorded run).
        rng: seed or generator for the clustering.
        key: goal identity stored for caching.
    """
    goal_xy = np.asarray(goal_xy, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(goal_xy)):
        raise InputError("goal keypoints must be finite")
    n = len(goal_xy)
    if labels is None:
        labels = cluster_goal_keypoints(goal_xy, cfg, rng)
    else:
        _, labels = np.unique(np.asarray(labels, dtype=np.int64).reshape(-1), return_inverse=True)
        if len(labels) != n:
            raise InputError(f"{len(labels)} labels for {n} goal keypoints")
    goal_ids = np.arange(n, dtype=np.int64) if goal_ids is None else np.asarray(goal_ids, np.int64).reshape(-1)
    return GoalGraph(goal_xy, labels.astype(np.int64), cluster_centres(goal_xy, labels), goal_ids, key)


@dataclass
class NodeGraph:
    """One observation's graph in numpy (input of :func:`collate`).

    Shapes: N nodes, C clusters, E0 ≤ N, E1c ≤ C², E1t = C².
        x_cur, x_tar: (N, 2) float32 current / goal normalised coordinates (x_cur is 0 where missing).
        node_mask: (N,) bool observed.
        e01: (2, E0) node → cluster edges of observed nodes.
        e11_cur: (2, E1c) cluster edges between clusters with an observed member; e11_tar: (2, E1t) all.
        centres: (C,) node index of each cluster centre.
        cluster_mask: (C,) bool, cluster has an observed member.
        dist: distance prior d (m).
        labels: (N,) cluster of each node.
    """

    x_cur: np.ndarray
    x_tar: np.ndarray
    node_mask: np.ndarray
    e01: np.ndarray
    e11_cur: np.ndarray
    e11_tar: np.ndarray
    centres: np.ndarray
    cluster_mask: np.ndarray
    dist: float
    labels: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.x_tar)

    @property
    def num_clusters(self) -> int:
        return len(self.centres)


def build_correspondence_graph(goal: GoalGraph, current_xy: np.ndarray, valid: np.ndarray,
                               dist: float) -> NodeGraph:
    """Prune the goal graph by this frame's observations.

    Args:
        goal: cached goal graph.
        current_xy: (N, 2) current normalised coordinates aligned to the goal rows (ignored where invalid).
        valid: (N,) bool observed.
        dist: distance prior d (m).
    """
    valid = np.asarray(valid, dtype=bool).reshape(-1)
    current_xy = np.asarray(current_xy, dtype=np.float64).reshape(-1, 2)
    if len(valid) != goal.num_nodes or len(current_xy) != goal.num_nodes:
        raise InputError(f"observation has {len(current_xy)} rows, goal graph {goal.num_nodes}")
    x_cur = np.where(valid[:, None], current_xy, 0.0).astype(np.float32)
    observed = np.flatnonzero(valid)
    e01 = np.stack([observed, goal.labels[observed]]).astype(np.int64)
    cluster_mask = np.zeros(goal.num_clusters, dtype=bool)
    cluster_mask[goal.labels[observed]] = True
    e11_tar = dense_edges(goal.num_clusters)
    keep = cluster_mask[e11_tar[0]] & cluster_mask[e11_tar[1]]
    return NodeGraph(x_cur, goal.goal_xy.astype(np.float32), valid, e01, e11_tar[:, keep], e11_tar,
                     goal.centres, cluster_mask, float(dist), goal.labels)


@dataclass
class GraphBatch:
    """Several :class:`NodeGraph` s as one disjoint graph (torch tensors, indices offset per graph).

    Shapes: Nn total nodes, C total clusters, B graphs.
        x_cur, x_tar: (Nn, 2); node_mask: (Nn,); e01: (2, E0) [node; cluster]; e11_cur, e11_tar: (2, E);
        cluster_centers: (C,) node indices; cluster_mask: (C,); cluster_batch: (C,) graph of each cluster;
        node_cluster: (Nn,) cluster of each node (the full, unpruned E⁰ targets); dist: (B,); num_graphs: B.
    """

    x_cur: Tensor
    x_tar: Tensor
    node_mask: Tensor
    e01: Tensor
    e11_cur: Tensor
    e11_tar: Tensor
    cluster_centers: Tensor
    cluster_mask: Tensor
    cluster_batch: Tensor
    node_cluster: Tensor
    dist: Tensor
    num_graphs: int

    def to(self, device: torch.device | str) -> GraphBatch:
        """Move every tensor to ``device``."""
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(self).items()}
        return GraphBatch(**moved)  # type: ignore[arg-type]  # vars() loses the per-field types


def collate(graphs: list[NodeGraph]) -> GraphBatch:
    """Concatenate graphs into one :class:`GraphBatch` (node and cluster indices offset per graph)."""
    if not graphs:
        raise InputError("collate needs at least one graph")
    n_off = np.cumsum([0] + [g.num_nodes for g in graphs[:-1]])
    c_off = np.cumsum([0] + [g.num_clusters for g in graphs[:-1]])
    off01 = np.array([[1], [0]])
    t = torch.from_numpy
    return GraphBatch(
        x_cur=t(np.concatenate([g.x_cur for g in graphs]).astype(np.float32)),
        x_tar=t(np.concatenate([g.x_tar for g in graphs]).astype(np.float32)),
        node_mask=t(np.concatenate([g.node_mask for g in graphs])),
        e01=t(np.concatenate([g.e01 + off01 * n + (1 - off01) * c for g, n, c in zip(graphs, n_off, c_off)], 1)),
        e11_cur=t(np.concatenate([g.e11_cur + c for g, c in zip(graphs, c_off)], axis=1)),
        e11_tar=t(np.concatenate([g.e11_tar + c for g, c in zip(graphs, c_off)], axis=1)),
        cluster_centers=t(np.concatenate([g.centres + n for g, n in zip(graphs, n_off)])),
        cluster_mask=t(np.concatenate([g.cluster_mask for g in graphs])),
        cluster_batch=t(np.concatenate([np.full(g.num_clusters, i, dtype=np.int64) for i, g in enumerate(graphs)])),
        node_cluster=t(np.concatenate([g.labels + c for g, c in zip(graphs, c_off)])),
        dist=t(np.array([g.dist for g in graphs], dtype=np.float32)),
        num_graphs=len(graphs),
    )


def goal_key(corr: Correspondences) -> str:
    """Identity of a goal: its id string plus a digest of its keypoints and ids (a changed goal reclusters)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(corr.goal_uv).tobytes())
    h.update(np.ascontiguousarray(corr.goal_ids).tobytes())
    h.update(np.ascontiguousarray(corr.camera.K).tobytes())
    return f"{corr.goal_id}:{h.hexdigest()}"


class GraphBuilder:
    """Builds per-frame graphs from :class:`Correspondences`, caching the clustered goal graph.

    The goal graph is rebuilt only when the goal changes (:func:`goal_key`). Observation rows are
    matched to goal rows by ``goal_ids``, so a reordered or partial observation still lands on the
    right nodes (and on the right recurrent-state rows).
    """

    def __init__(self, cfg: GraphConfig | None = None) -> None:
        self.cfg = cfg or GraphConfig()
        self.goal: GoalGraph | None = None
        self._id_to_row: dict[int, int] = {}

    def set_goal(self, goal: Correspondences, labels: np.ndarray | None = None) -> tuple[GoalGraph, bool]:
        """Cluster the goal keypoints unless this goal is cached.

        Returns:
            (goal graph, True when it was (re)built).
        """
        key = goal_key(goal)
        if self.goal is not None and self.goal.key == key and labels is None:
            return self.goal, False
        if len(goal) == 0:
            raise InputError("the goal has no keypoints")
        if len(np.unique(goal.goal_ids)) != len(goal.goal_ids):
            raise InputError("goal ids must be unique")
        # A generator per goal, seeded from the config: a goal's clusters depend on that goal only, not on how
        # many goals this builder clustered before (a benchmark episode gave different results depending on
        # the episodes its worker ran first).
        self.goal = build_goal_graph(goal.camera.normalize(goal.goal_uv), goal.goal_ids, self.cfg,
                                     labels=labels, rng=np.random.default_rng(self.cfg.seed), key=key)
        self._id_to_row = {int(i): r for r, i in enumerate(self.goal.goal_ids)}
        return self.goal, True

    def rows(self, obs: Correspondences) -> np.ndarray:
        """The goal row of each observation row (N_obs,), −1 where its goal id is unknown."""
        assert self.goal is not None  # callers check
        if len(obs.goal_ids) == self.goal.num_nodes and np.array_equal(obs.goal_ids, self.goal.goal_ids):
            return np.arange(self.goal.num_nodes)  # the usual case: the observer keeps the goal's row order
        return np.array([self._id_to_row.get(int(i), -1) for i in obs.goal_ids], dtype=np.int64)

    def build(self, obs: Correspondences, dist: float) -> NodeGraph:
        """This frame's graph. Rows whose goal id is unknown are ignored.

        Raises:
            InputError: no goal is set.
        """
        if self.goal is None:
            raise InputError("no goal graph: call set_goal first")
        n = self.goal.num_nodes
        current = np.zeros((n, 2))
        valid = np.zeros(n, dtype=bool)
        rows = self.rows(obs)
        known = (rows >= 0) & obs.valid
        current_xy = obs.camera.normalize(np.nan_to_num(obs.current_uv))
        current[rows[known]] = current_xy[known]
        valid[rows[known]] = True
        return build_correspondence_graph(self.goal, current, valid, dist)
