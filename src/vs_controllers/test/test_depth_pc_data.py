"""Depth-PC data: object clouds, voxel down-sampling, hidden-point removal, depth normalisation, the
depth-error model, the augmentations of the training environment."""

import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vs_common.core.errors import ConfigError, InputError
from vs_controllers.core.cns.graph import build_correspondence_graph, build_goal_graph
from vs_controllers.core.depth_pc.depth_error import (
    BlendedWarp,
    DepthErrorConfig,
    apply_depth_error,
    sample_warp,
)
from vs_controllers.core.depth_pc.graph import add_depth, attention_pairs, normalise_depth
from vs_controllers.training.depth_pc_env import DepthEnvConfig, DepthPCEnvBatch, _camera_depth
from vs_controllers.training.depth_pc_scenes import (
    ObjectLibrary,
    hidden_point_removal,
    object_surface_points,
    sample_object_scene,
    voxel_downsample,
)
from vs_controllers.training.point_env import EnvConfig

CLEAN = DepthErrorConfig(distortion=0.0, mult_noise=0.0, add_noise=0.0, hole_ratio=0.0, edge_blur=0.0)


# ------------------------------------------------------------------------------- scenes
@pytest.mark.parametrize("shape,size", [("box", (0.04, 0.08, 0.12)), ("cylinder", (0.06, 0.06, 0.1)),
                                        ("sphere", (0.1, 0.1, 0.1))])
def test_object_points_lie_on_the_cells_surfaces(shape, size):
    p = object_surface_points(shape, size, 3000, np.random.default_rng(0))
    sx, sy, sz = size
    if shape == "sphere":
        np.testing.assert_allclose(np.linalg.norm(p, axis=1), sx / 2)
    elif shape == "cylinder":
        r = np.linalg.norm(p[:, :2], axis=1)
        on_side, on_cap = np.isclose(r, sx / 2), np.isclose(np.abs(p[:, 2]), sz / 2)
        assert np.all(on_side | on_cap) and np.all(r <= sx / 2 + 1e-12) and on_cap.mean() > 0.1
    else:
        on_face = np.isclose(np.abs(p), np.array(size) / 2).any(axis=1)
        assert np.all(on_face) and np.all(np.abs(p) <= np.array(size) / 2 + 1e-12)
    with pytest.raises(ValueError):
        object_surface_points("torus", size, 10, np.random.default_rng(0))


def test_voxel_downsampling_keeps_one_centroid_per_voxel():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.1, (5000, 3))
    q = voxel_downsample(p, 0.02)
    assert len(q) == 125  # 5 x 5 x 5 voxels, all occupied
    keys = np.floor(q / 0.02).astype(int)
    assert len(np.unique(keys, axis=0)) == len(q)  # each centroid stays inside its own voxel


def test_object_scenes_have_the_drawn_size_and_object_clusters():
    rng = np.random.default_rng(2)
    lib = ObjectLibrary(rng, num_objects=4, dense_points=800)
    for n in (10, 64, 300):
        pts, labels = sample_object_scene(n, rng, lib)
        assert pts.shape == (n, 3) and len(labels) == n
        if n >= 20:
            k = labels.max() + 1
            assert 3 <= k <= int(np.log2(n)) and (labels == -1).mean() == pytest.approx(0.2, abs=0.02)


def test_hidden_point_removal_keeps_the_near_side_of_a_sphere():
    p = object_surface_points("sphere", (0.2, 0.2, 0.2), 2000, np.random.default_rng(3))
    cam = np.array([0.0, 0.0, 1.0])
    visible = hidden_point_removal(p, cam)
    # From 1 m the visible cap of a 0.1 m sphere is z > r²/d = 0.01.
    assert visible[p[:, 2] > 0.03].all()
    assert not visible[p[:, 2] < -0.01].any()
    assert hidden_point_removal(p[:3], cam).all()  # too few points for a hull: nothing removed


# ------------------------------------------------------------------------------- normalisation
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.1, 10.0), min_size=3, max_size=30), st.floats(0.01, 100.0), st.floats(-5.0, 5.0))
def test_normalisation_is_affine_invariant_and_spans_zero_to_one(z, scale, shift):
    z = np.array(z)
    keep = np.arange(len(z)) % 4 != 3
    a = normalise_depth(z, keep)
    b = normalise_depth(scale * z + shift, keep)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.all(a[~keep] == 0) and np.all((a >= 0) & (a <= 1))
    if np.ptp(z[keep]) > 1e-6:
        assert a[keep].min() == 0 and a[keep].max() == pytest.approx(1)


def test_unknown_depths_and_flat_frames_give_zero():
    assert np.all(normalise_depth(np.array([np.nan, 1.0, 3.0]))[0] == 0)
    assert np.all(normalise_depth(np.full(5, 0.7)) == 0)


def test_attention_pairs_stay_inside_clusters_of_kept_nodes():
    labels = np.array([0, 0, 1, 1, 1, 2])
    keep = np.array([True, True, True, False, True, True])
    q, k = attention_pairs(labels, keep)
    assert np.all(labels[q] == labels[k]) and keep[q].all() and keep[k].all()
    assert len(q) == 2 * 2 + 2 * 2 + 1
    q, k = attention_pairs(labels, keep, "graph")
    assert len(q) == 25


# ------------------------------------------------------------------------------- depth errors
def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 640, (n, 2)), rng.uniform(0.4, 1.2, n)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 2.0))
def test_sampled_warp_preserves_order_and_range(seed, strength):
    t = np.sort(np.random.default_rng(seed).uniform(0, 1, 50))
    f = sample_warp(np.random.default_rng(seed), strength)(np.concatenate([[0.0], t, [1.0]]))
    assert np.all(np.diff(f) >= 0) and f[0] == pytest.approx(0) and f[-1] == pytest.approx(1)


@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_blended_warps_stay_monotone_and_blend_their_ends(seed, beta):
    rng = np.random.default_rng(seed)
    first, second = sample_warp(rng, 0.8), sample_warp(rng, 0.8)
    t = np.linspace(0.0, 1.0, 201)
    f = BlendedWarp(first, second, beta)(t)
    assert np.all(np.diff(f) > 0) and np.isclose(f[0], 0.0) and np.isclose(f[-1], 1.0)
    np.testing.assert_allclose(BlendedWarp(first, second, 0.0)(t), first(t))
    np.testing.assert_allclose(BlendedWarp(first, second, 1.0)(t), second(t))
    with pytest.raises(InputError):
        BlendedWarp(first, second, 1.5)


def test_a_given_warp_replaces_the_drawn_one():
    uv, z = np.random.default_rng(0).uniform(0, 640, (30, 2)), np.linspace(0.5, 0.9, 30)
    warp = sample_warp(np.random.default_rng(1), 0.8)
    cfg = dataclasses.replace(CLEAN, distortion=0.8)
    a = apply_depth_error(uv, z, np.random.default_rng(2), cfg, warp)
    b = apply_depth_error(uv, z, np.random.default_rng(3), cfg, warp)
    np.testing.assert_allclose(a, b)  # no other error is on: the warp alone decides
    np.testing.assert_allclose(a, 0.5 + warp((z - 0.5) / 0.4) * 0.4)


def _depth_graph(z_cur, z_goal, valid, norm):
    n = len(z_cur)
    xy = np.random.default_rng(0).uniform(-0.4, 0.4, (n, 2))
    base = build_correspondence_graph(build_goal_graph(xy, rng=np.random.default_rng(0)), xy, valid, 0.6)
    return add_depth(base, z_cur, z_goal, norm=norm)


def test_common_normalisation_reads_equal_depths_alike_whatever_is_observed():
    rng = np.random.default_rng(4)
    z = rng.uniform(0.5, 0.9, 40)
    valid = np.ones(40, bool)
    valid[[int(np.argmin(z)), int(np.argmax(z))]] = False  # the goal's nearest and farthest keypoints are lost
    common = _depth_graph(z, z, valid, "common")
    np.testing.assert_allclose(common.z_cur[valid], common.z_tar[valid], atol=1e-6)
    assert np.all(common.z_cur[~valid] == 0)
    assert common.z_tar[~valid].min() < 0 and common.z_tar[~valid].max() > 1  # the same map, off the basis
    frame = _depth_graph(z, z, valid, "frame")  # the authors': each frame over its own keypoints
    assert np.abs(frame.z_cur[valid] - frame.z_tar[valid]).max() > 0.01
    # Under common, an affine change of the current estimate leaves every value as it was.
    np.testing.assert_allclose(_depth_graph(3.0 * z + 1.0, z, valid, "common").z_cur, common.z_cur, atol=1e-6)
    few = np.zeros(40, bool)
    few[0] = True  # one common keypoint: no range to normalise over, so each frame's own
    np.testing.assert_allclose(_depth_graph(z, z, few, "common").z_tar, _depth_graph(z, z, few, "frame").z_tar)
    with pytest.raises(ConfigError):
        _depth_graph(z, z, valid, "batch")


def test_coherent_warps_give_the_goals_depth_at_the_goal_and_a_journal_can_hold_them():
    cfg = EnvConfig(num_points_min=60, num_points_max=120, noise=False)
    errors = dataclasses.replace(CLEAN, distortion=0.8)
    env = DepthPCEnvBatch(cfg, DepthEnvConfig(num_objects=3, object_scenes=1.0, warp_coherence_deg=10.0,
                                              depth_norm="common"), errors, 3, seed=9)
    start = env.observe()
    env.w_T_c[:] = env.w_T_t  # every camera at its goal: the same view, so the same estimate
    for g in env.observe():
        np.testing.assert_allclose(g.z_cur[g.node_mask], g.z_tar[g.node_mask], atol=1e-5)
    assert any(np.abs(g.z_cur - g.z_tar)[g.node_mask].max() > 0.01 for g in start)  # far from it they differ
    fresh = DepthPCEnvBatch(cfg, DepthEnvConfig(num_objects=3, object_scenes=1.0, depth_norm="common"),
                            errors, 3, seed=9)
    fresh.w_T_c[:] = fresh.w_T_t  # the authors' model: a fresh warp every frame, even at the goal
    assert any(np.abs(g.z_cur - g.z_tar)[g.node_mask].max() > 0.01 for g in fresh.observe())
    back = pickle.loads(pickle.dumps(env))  # the training journal pickles the environments
    assert back.warps == env.warps
    for a, b in zip(env.observe(), back.observe(), strict=True):
        np.testing.assert_array_equal(a.z_cur, b.z_cur)


def test_distortion_without_noise_keeps_the_order_of_depths():
    uv, z = _frame()
    out = apply_depth_error(uv, z, np.random.default_rng(1), dataclasses.replace(CLEAN, distortion=1.0))
    assert np.array_equal(np.argsort(out), np.argsort(z)) and not np.allclose(out, z)
    np.testing.assert_allclose([out.min(), out.max()], [z.min(), z.max()])
    np.testing.assert_array_equal(apply_depth_error(uv, z, np.random.default_rng(1), CLEAN), z)


def test_holes_are_nan_and_unknown_inputs_stay_unknown():
    uv, z = _frame(2000)
    z[:10] = np.nan
    out = apply_depth_error(uv, z, np.random.default_rng(2), dataclasses.replace(CLEAN, hole_ratio=0.2))
    assert np.isnan(out[:10]).all()
    assert 0.15 < np.isnan(out[10:]).mean() < 0.25
    ok = ~np.isnan(out)
    np.testing.assert_array_equal(out[ok], z[ok])


def test_edge_blur_moves_only_keypoints_next_to_a_depth_step():
    uv = np.array([[100.0, 100], [105, 100], [300, 300], [305, 300]])
    z = np.array([0.5, 1.0, 0.7, 0.7001])  # a step between the first two; the last two are flat
    cfg = dataclasses.replace(CLEAN, edge_blur=1.0, edge_radius_px=10.0, edge_jump=0.1)
    out = apply_depth_error(uv, z, np.random.default_rng(3), cfg)
    assert not np.isclose(out[0], 0.5) and 0.5 <= out[0] <= 0.75 and 0.75 <= out[1] <= 1.0
    np.testing.assert_array_equal(out[2:], z[2:])


def test_depth_errors_are_seeded_and_validated():
    uv, z = _frame()
    a = apply_depth_error(uv, z, np.random.default_rng(5))
    b = apply_depth_error(uv, z, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, apply_depth_error(uv, z, np.random.default_rng(6)), equal_nan=True)
    with pytest.raises(InputError):
        apply_depth_error(uv[:3], z, np.random.default_rng(0))
    for bad in ({"hole_ratio": 1.5}, {"mult_noise": -0.1}, {"edge_blur": 2.0}):
        with pytest.raises(ConfigError):
            DepthErrorConfig(**bad)


# ------------------------------------------------------------------------------- environment
def _env(**env_kw):
    cfg = EnvConfig(num_points_min=60, num_points_max=120, **env_kw)
    return DepthPCEnvBatch(cfg, DepthEnvConfig(num_objects=3, object_scenes=1.0), CLEAN, 3, seed=7)


def test_clean_env_depths_are_the_normalised_camera_depths():
    env = _env(noise=False)
    for b, g in enumerate(env.observe()):
        pts = env.episodes[b].points
        _, z_cur = _camera_depth(env.w_T_c[b], pts)
        _, z_tar = _camera_depth(env.w_T_t[b], pts)
        np.testing.assert_allclose(g.z_tar, normalise_depth(z_tar), atol=1e-6)
        np.testing.assert_allclose(g.z_cur, normalise_depth(z_cur, g.node_mask), atol=1e-6)


def test_hpr_keeps_only_points_both_cameras_see():
    env = _env(noise=False)
    for b, ep in enumerate(env.episodes):
        for w_T in (env.w_T_t[b], env.w_T_c0[b]):
            assert hidden_point_removal(ep.points, w_T[:3, 3]).mean() > 0.9  # (a hull of a subset can drop a few)


def test_mismatched_points_keep_their_depth_and_held_mismatches_swap_it():
    env = _env(mismatch_ratio=0.3, jitter=0.0, missing=False)
    for b, g in enumerate(env.observe()):
        ep = env.episodes[b]
        _, z = _camera_depth(env.w_T_c[b], ep.points)
        np.testing.assert_allclose(g.z_cur[g.node_mask], normalise_depth(z, g.node_mask)[g.node_mask], atol=1e-6)
    held = _env(mismatch_ratio=0.3, mismatch_hold_s=2.0, jitter=0.0, missing=False)
    for b, g in enumerate(held.observe()):
        ep = held.episodes[b]
        xy, _ = held._project(held.w_T_c[b], ep.points)
        _, z = _camera_depth(held.w_T_c[b], ep.points)
        idx = np.flatnonzero(ep.mismatched)
        assert len(idx) >= 2
        np.testing.assert_allclose(g.x_cur[idx], xy[np.roll(idx, 1)], atol=1e-6)  # positions swapped ...
        z_swapped = z.copy()
        z_swapped[idx] = z[np.roll(idx, 1)]
        np.testing.assert_allclose(g.z_cur, normalise_depth(z_swapped, g.node_mask), atol=1e-6)  # ... with depths


def test_dropped_out_points_carry_no_depth_and_no_attention():
    cfg = EnvConfig(num_points_min=150, num_points_max=200, max_missing_ratio=0.8)
    env = DepthPCEnvBatch(cfg, DepthEnvConfig(num_objects=3), DepthErrorConfig(), 4, seed=8)
    graphs = env.observe()
    assert any((~g.node_mask).any() for g in graphs)
    for g in graphs:
        missing = np.flatnonzero(~g.node_mask)
        assert np.all(g.z_cur[missing] == 0) and not np.isin(g.att_cur, missing).any()
        assert np.all((g.z_cur >= 0) & (g.z_cur <= 1)) and np.all((g.z_tar >= 0) & (g.z_tar <= 1))
        assert g.att_tar.shape[1] >= g.att_cur.shape[1]  # the goal attends over every goal node


def test_depth_env_config_is_validated():
    for bad in ({"object_scenes": 2.0}, {"attention_scope": "batch"}, {"voxel_m": 0.0}, {"depth_norm": "batch"},
                {"warp_coherence_deg": -1.0}):
        with pytest.raises(ConfigError):
            DepthEnvConfig(**bad)
