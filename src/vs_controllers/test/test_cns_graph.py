"""CNS correspondence graph: clustering rules, centres, edges, pruning, caching and stable ids."""

import numpy as np
import pytest
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_controllers.core.cns.graph import (
    GraphBuilder,
    GraphConfig,
    build_correspondence_graph,
    build_goal_graph,
    cluster_centres,
    cluster_goal_keypoints,
    collate,
    dense_edges,
)
from vs_perception.core.types import Correspondences

CAM = CameraModel(np.array([[540.0, 0, 320], [0, 540.0, 240], [0, 0, 1]]), 640, 480)

# The paper's Fig. 2 case: 7 keypoints in 3 clusters {0,1,2,3}, {4,5}, {6}.
XY = np.array([[0.0, 0.0], [0.02, 0.0], [0.01, 0.01], [0.0, 0.03],
               [0.3, 0.3], [0.32, 0.3],
               [-0.3, 0.2]])
LABELS = np.array([0, 0, 0, 0, 1, 1, 2])


def test_centre_is_member_nearest_the_median():
    centres = cluster_centres(XY, LABELS)
    # Cluster 0's median is (0.005, 0.005); node 2 at (0.01, 0.01) and node 0 at (0, 0) are equally
    # near, node 1 and 3 farther: the first nearest member wins.
    assert centres[0] == 0
    assert centres[1] == 4 and centres[2] == 6  # a tie again (first wins); a singleton is its own centre


def test_edges_and_pruning_of_missing_nodes():
    goal = build_goal_graph(XY, labels=LABELS)
    assert goal.num_clusters == 3
    full = build_correspondence_graph(goal, XY + 0.01, np.ones(7, bool), dist=0.7)
    # E0: every node to its own cluster; E1: all 3x3 ordered pairs with self-loops.
    assert full.e01.tolist() == [list(range(7)), LABELS.tolist()]
    assert full.e11_tar.shape == (2, 9) and full.e11_cur.shape == (2, 9)
    assert {(0, 0), (1, 1), (2, 2)} <= set(map(tuple, full.e11_tar.T.tolist()))
    valid = np.array([1, 0, 1, 1, 1, 1, 0], bool)  # node 1 and the whole cluster 2 are missing
    g = build_correspondence_graph(goal, XY + 0.01, valid, dist=0.7)
    assert g.e01[0].tolist() == [0, 2, 3, 4, 5]
    assert g.cluster_mask.tolist() == [True, True, False]
    assert g.e11_cur.shape == (2, 4) and not np.isin(2, g.e11_cur).any()
    assert g.e11_tar.shape == (2, 9)  # the goal edge set is never pruned
    assert np.all(g.x_cur[~valid] == 0)  # placeholder, never read (no edges)


def test_small_goals_are_singletons_and_large_goals_follow_the_rules():
    assert cluster_goal_keypoints(XY).tolist() == list(range(7))
    rng = np.random.default_rng(0)
    blobs = np.concatenate([c + 0.01 * rng.standard_normal((20, 2)) for c in ([0, 0], [0.4, 0], [0, 0.4])])
    labels = cluster_goal_keypoints(blobs, GraphConfig(), rng=0)
    # Dense labels, at least min_clusters clusters (AP, or the KMeans fallback), no cluster spans two blobs.
    assert set(labels.tolist()) == set(range(labels.max() + 1))
    assert labels.max() + 1 >= 4
    blob = np.repeat(np.arange(3), 20)
    for k in range(labels.max() + 1):
        assert len(set(blob[labels == k])) == 1


def test_dense_edges():
    e = dense_edges(3)
    assert e.shape == (2, 9)
    assert len(set(map(tuple, e.T.tolist()))) == 9


def test_collate_offsets_indices():
    goal = build_goal_graph(XY, labels=LABELS)
    g = build_correspondence_graph(goal, XY, np.ones(7, bool), dist=0.5)
    b = collate([g, g])
    assert b.num_graphs == 2 and b.x_cur.shape == (14, 2)
    assert b.cluster_batch.tolist() == [0, 0, 0, 1, 1, 1]
    assert b.e01[:, 7:].tolist() == [list(range(7, 14)), (LABELS + 3).tolist()]
    assert int(b.e11_tar[:, 9:].min()) == 3
    assert b.cluster_centers[3:].tolist() == (goal.centres + 7).tolist()
    assert b.dist.tolist() == [0.5, 0.5]


def _corr(goal_uv, cur_uv, valid, ids=None, goal_id="g"):
    return Correspondences(CAM, goal_uv, cur_uv, valid, goal_ids=ids, goal_id=goal_id)


def test_builder_caches_the_goal_and_maps_stable_ids():
    rng = np.random.default_rng(1)
    goal_uv = rng.uniform([50, 50], [590, 430], size=(40, 2))
    cur_uv = goal_uv + rng.normal(0, 3, size=goal_uv.shape)
    ids = np.arange(100, 140)
    builder = GraphBuilder()
    goal = _corr(goal_uv, goal_uv, np.ones(40, bool), ids)
    g0, built = builder.set_goal(goal)
    assert built
    assert builder.set_goal(goal) == (g0, False)  # unchanged goal: no re-clustering
    valid = rng.uniform(size=40) > 0.3
    ref = builder.build(_corr(goal_uv, cur_uv, valid, ids), dist=0.7)
    perm = rng.permutation(40)  # the observer may list rows in any order: ids say which node
    shuffled = builder.build(_corr(goal_uv[perm], cur_uv[perm], valid[perm], ids[perm]), dist=0.7)
    np.testing.assert_array_equal(ref.node_mask, shuffled.node_mask)
    np.testing.assert_allclose(ref.x_cur, shuffled.x_cur)
    _, rebuilt = builder.set_goal(_corr(goal_uv + 1.0, goal_uv, np.ones(40, bool), ids))
    assert rebuilt


def test_builder_rejects_bad_goals():
    builder = GraphBuilder()
    with pytest.raises(InputError):
        builder.build(_corr(XY, XY, np.ones(7, bool)), dist=0.7)
    with pytest.raises(InputError):
        builder.set_goal(_corr(XY, XY, np.ones(7, bool), ids=np.zeros(7)))


def test_a_goals_clusters_do_not_depend_on_the_goals_clustered_before():
    """A regular grid leaves affinity propagation ties that its seeded noise breaks: the seed must be the goal's
    own (config seed), not the next draw of a generator shared by every goal the builder saw."""
    side = np.linspace(100, 540, 8)
    grid_uv = np.stack(np.meshgrid(side, side * 0.7), -1).reshape(-1, 2)
    goal = _corr(grid_uv, grid_uv, np.ones(len(grid_uv), bool), goal_id="grid")
    fresh, _ = GraphBuilder().set_goal(goal)
    used = GraphBuilder()
    for k in range(3):  # other goals first, as a benchmark worker runs episodes one after another
        other = grid_uv + 7.0 * (k + 1)
        used.set_goal(_corr(other, other, np.ones(len(other), bool), goal_id=f"other{k}"))
    again, _ = used.set_goal(goal)
    np.testing.assert_array_equal(fresh.labels, again.labels)
