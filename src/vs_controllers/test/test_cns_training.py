"""CNS training pieces: PBVS supervision, the environment, the KMC process, the loss, a resumable smoke run."""

import csv
import dataclasses

import numpy as np
import pytest
import torch
from vs_common.core.errors import ConfigError
from vs_controllers.core.cns.graph import GraphConfig
from vs_controllers.core.cns.network import GraphVS, T, T_inv
from vs_controllers.training.eval_cns import evaluate
from vs_controllers.training.experts import pbvs_centre_straight, pbvs_straight
from vs_controllers.training.observability import KMCObservability
from vs_controllers.training.point_env import EnvConfig, PointEnvBatch
from vs_controllers.training.scenes import sample_camera_pose, sample_table_points
from vs_controllers.training.train_cns import TrainConfig, cns_loss, train


def test_pbvs_expert_reaches_the_goal():
    env = PointEnvBatch(EnvConfig(noise=False, num_points_max=64), 6, seed=1)
    te0, re0 = env.errors()
    for _ in range(200):
        env.step(env.expert())
    te, re = env.errors()
    # gain·dt = 0.04 per step: the error shrinks by (1 - 0.04) per step, ~3e-4 of it after 200 steps.
    assert np.all(te < 1e-3 * np.maximum(1.0, te0 / 0.1)) and np.all(re < 0.1)
    assert np.median(re0) > 10


def test_pbvs_is_zero_at_the_goal_and_points_back():
    w_T_t = np.eye(4)[None]
    assert np.allclose(pbvs_straight(w_T_t, w_T_t), 0)
    w_T_c = np.eye(4)[None].copy()
    w_T_c[0, :3, 3] = [0.1, 0, 0]  # camera 10 cm along its own x
    v = pbvs_straight(w_T_c, w_T_t)[0]
    np.testing.assert_allclose(v, [-0.1, 0, 0, 0, 0, 0], atol=1e-12)


def _centre_excursion_and_final_errors(expert: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roll the expert out on 8 large-roll scenes: worst |centre projection| per env, final te, re."""
    cfg = EnvConfig(noise=False, num_points_max=64, expert=expert, init_perturb_deg=(150.0, 10.0, 10.0))
    env = PointEnvBatch(cfg, 8, seed=1)
    worst = np.zeros(8)
    for _ in range(300):
        env.step(env.expert())
        for b, ep in enumerate(env.episodes):
            c = np.linalg.inv(env.w_T_c[b]) @ np.append(ep.points.mean(0), 1.0)
            worst[b] = max(worst[b], np.linalg.norm(c[:2] / c[2]))
    te, re = env.errors()
    return worst, te, re


def test_centre_keeping_expert_keeps_the_scene_in_view_on_large_rolls():
    straight, te_s, re_s = _centre_excursion_and_final_errors("straight")
    centre, te_c, re_c = _centre_excursion_and_final_errors("centre_straight")
    # The straight law swings the scene centre out of the image (|x| > 0.59 normalised) on some rolls.
    assert straight.max() > 0.6
    assert centre.max() < 0.3 and np.all(centre <= straight + 1e-9)
    assert te_c.max() < 1e-3 and re_c.max() < 0.1  # and it still converges like the straight law
    assert te_s.max() < 1e-3 and re_s.max() < 0.1


def test_centre_keeping_expert_is_the_straight_law_without_roll():
    w_T_t = np.eye(4)[None].copy()
    w_T_t[0, :3, 3] = [0.0, 0.0, -0.7]  # goal camera 0.7 m above the centre, looking at it
    w_T_c = w_T_t.copy()
    w_T_c[0, :3, 3] += [0.05, -0.03, 0.1]
    centre = np.zeros((1, 3))
    np.testing.assert_allclose(pbvs_centre_straight(w_T_c, w_T_t, centre), pbvs_straight(w_T_c, w_T_t), atol=1e-4)
    assert np.allclose(pbvs_centre_straight(w_T_t, w_T_t, centre), 0, atol=1e-12)


def test_table_scenes_are_a_flat_disc_with_boxes():
    rng = np.random.default_rng(0)
    pts = sample_table_points(400, rng, radius=0.4)
    assert pts.shape == (400, 3) and np.all(pts[:, 2] >= 0) and np.all(pts[:, 2] <= 0.12 + 1e-9)
    on_table = pts[:, 2] == 0
    assert 0.35 <= on_table.mean() <= 0.85  # 20-60 % on the boxes (side points can touch z = 0 rarely)
    assert np.all(np.linalg.norm(pts[on_table, :2], axis=1) <= 0.4 + 1e-9)
    env = PointEnvBatch(EnvConfig(table_scenes=1.0, noise=False), 4, seed=2)
    assert all((ep.points[:, 2] == 0).mean() > 0.3 for ep in env.episodes)
    for bad in ({"table_radius": (0.5, 0.2)}, {"table_radius": (0.0, 0.3)}, {"table_scenes": 1.5},
                {"view_sigma_deg": (30.0, 10.0)}, {"expert": "ibvs"}):
        with pytest.raises(ConfigError):
            EnvConfig(**bad)


def test_camera_poses_look_at_the_scene_with_a_horizontal_x_axis_except_straight_down():
    rng = np.random.default_rng(5)
    for elev, azimuth in ((45.0, 0.3), (45.0, 2.0), (89.9, 0.3), (89.9, 2.0)):
        w_T_c = sample_camera_pose(rng, (0.7, 0.7), (elev, elev), (0.0, 0.0, 0.0), azimuth=azimuth)
        x, z, eye = w_T_c[:3, 0], w_T_c[:3, 2], w_T_c[:3, 3]
        np.testing.assert_allclose(z, -eye / np.linalg.norm(eye), atol=1e-12)  # optical axis on the origin
        np.testing.assert_allclose(w_T_c[:3, :3] @ w_T_c[:3, :3].T, np.eye(3), atol=1e-12)
        if elev < 80:
            assert abs(x[2]) < 1e-12  # image x horizontal
        else:  # within ~2.6 deg of vertical, x comes from world x: it does not spin with the azimuth
            np.testing.assert_allclose(x, np.cross(z, [1.0, 0.0, 0.0]) / np.linalg.norm(np.cross(z, [1.0, 0.0, 0.0])))


def test_fov_mask_keeps_goal_points_in_the_image_and_hides_points_out_of_view():
    cfg = EnvConfig(table_scenes=1.0, table_radius=(0.5, 0.5), fov_mask=True, noise=False,
                    num_points_min=300, num_points_max=300)
    env = PointEnvBatch(cfg, 4, seed=4)
    for b, ep in enumerate(env.episodes):
        xy, _ = env._project(env.w_T_t[b], ep.points)
        assert np.all(np.abs(xy) <= [320 / 540, 240 / 540])
    env.w_T_c[:] = env.w_T_t
    env.observe()
    assert np.array_equal(env.visible, [len(ep.points) for ep in env.episodes]) and not env.abnormal().any()
    env.w_T_c[:, :3, 3] += 10 * env.w_T_c[:, :3, 0] * 0.1  # 1 m along image x: the scene leaves the view
    env.observe()
    assert np.all(env.visible < 3) and env.abnormal().all()


def test_near_goal_starts_begin_inside_their_ranges_and_far_starts_stay_as_they_were():
    """A near-goal episode starts at the configured distance from its goal (far starts never do: they are
    drawn at least 2 mm or 1 deg away, and here from the whole sphere band); 0 leaves the draws as they were."""
    near = EnvConfig(near_goal_starts=1.0, near_goal_trans_m=(0.001, 0.004), near_goal_rot_deg=(0.1, 0.5),
                     fov_mask=True)
    env = PointEnvBatch(near, 16, seed=6)
    te, re = env.errors()
    assert np.all((te >= 0.001 - 1e-9) & (te <= 0.004 + 1e-9)) and np.all((re >= 0.1 - 1e-6) & (re <= 0.5 + 1e-6))
    assert np.all([len(ep.points) >= 3 for ep in env.episodes])
    assert len(np.unique(te)) == 16  # drawn per episode
    mixed = PointEnvBatch(dataclasses.replace(near, near_goal_starts=0.5), 32, seed=6)
    te_m, _ = mixed.errors()
    assert 4 <= np.sum(te_m <= 0.004 + 1e-9) <= 28 and np.sum(te_m > 0.05) >= 4
    a, b = PointEnvBatch(EnvConfig(), 4, seed=6), PointEnvBatch(dataclasses.replace(near, near_goal_starts=0.0,
                                                                                    fov_mask=False), 4, seed=6)
    np.testing.assert_array_equal(a.w_T_c, b.w_T_c)
    with pytest.raises(ConfigError):
        EnvConfig(near_goal_trans_m=(0.0, 0.01))


def test_large_turn_starts_begin_a_large_azimuth_away_and_zero_leaves_the_draws_as_they_were():
    """With large_turn_starts the start camera sits at least large_turn_deg around the scene from the goal's
    (either side); without, offsets span the whole circle; 0 draws nothing extra."""
    def offsets(cfg: EnvConfig, n: int) -> np.ndarray:
        env = PointEnvBatch(cfg, n, seed=8)
        az = [np.arctan2(T[:, 1, 3], T[:, 0, 3]) for T in (env.w_T_c, env.w_T_t)]
        return np.degrees(np.abs(np.angle(np.exp(1j * (az[0] - az[1])))))

    turn = offsets(EnvConfig(large_turn_starts=1.0, large_turn_deg=150.0), 24)
    assert np.all(turn >= 150.0 - 1e-6) and len(np.unique(turn.round(3))) == 24
    assert np.sum(offsets(EnvConfig(), 24) < 90.0) >= 4
    near = offsets(EnvConfig(large_turn_starts=1.0, near_goal_starts=1.0), 8)
    assert np.all(near < 5.0)  # near-goal starts are never turned
    a = PointEnvBatch(EnvConfig(), 4, seed=6)
    b = PointEnvBatch(EnvConfig(large_turn_starts=0.0, large_turn_deg=170.0), 4, seed=6)
    np.testing.assert_array_equal(a.w_T_c, b.w_T_c)
    with pytest.raises(ConfigError):
        EnvConfig(large_turn_starts=1.5)


def test_in_run_checks_start_from_the_plain_far_start_distribution_whatever_the_training_mix():
    """evaluate() turns near-goal and large-turn starts off, so the checks of runs with other mixes compare."""
    seen: list[EnvConfig] = []

    def make_env(cfg: EnvConfig, n: int, seed: int) -> PointEnvBatch:
        seen.append(cfg)
        raise StopIteration

    cfg = EnvConfig(near_goal_starts=0.3, large_turn_starts=0.5, large_turn_deg=130.0)
    with pytest.raises(StopIteration):
        evaluate(GraphVS(), cfg, episodes=2, steps=5, make_env=make_env)
    assert seen[0].near_goal_starts == 0.0 and seen[0].large_turn_starts == 0.0
    assert seen[0].max_steps == 5 and seen[0].large_turn_deg == 130.0


def test_view_dependent_matching_loses_points_after_large_viewpoint_changes():
    cfg = EnvConfig(view_sigma_deg=(30.0, 30.0), noise=False, num_points_min=200, init_perturb_deg=(0, 0, 0))
    env = PointEnvBatch(cfg, 8, seed=5)
    n = np.array([len(ep.points) for ep in env.episodes])
    far = env._view_angle_deg(0)
    env.observe()
    expected = np.array([(ep.match_u < ep.match_max * np.exp(-(env._view_angle_deg(b) / 30.0) ** 2)).sum()
                         for b, ep in enumerate(env.episodes)])
    np.testing.assert_array_equal(env.visible, expected)
    env.w_T_c[:] = env.w_T_t  # at the goal every point keeps its fixed chance m ~ U(0.6, 1)
    env.observe()
    assert np.all(env.visible >= 0.45 * n) and np.all(env.visible > expected)
    assert far.max() > 20


def test_noisy_observations_have_mismatches_and_missing_points():
    cfg = EnvConfig(num_points_min=200, num_points_max=200)
    env = PointEnvBatch(cfg, 2, seed=3)
    clean = PointEnvBatch(dataclasses.replace(cfg, noise=False), 2, seed=3)
    g, c = env.observe()[0], clean.observe()[0]
    assert 0.05 < 1 - g.node_mask.mean() <= 0.8  # KMC-missing points, at most 80 %
    err = np.linalg.norm(g.x_cur - c.x_cur, axis=1)[g.node_mask]
    assert np.mean(err > 0.01) > 0.03  # mismatches (~10 % drawn anywhere in the image)
    assert np.median(err) < 0.004  # jitter ±0.002


def test_held_mismatches_swap_coordinates_and_persist():
    cfg = EnvConfig(num_points_min=100, num_points_max=100, missing=False, jitter=0.0, mismatch_hold_s=1e6)
    env = PointEnvBatch(cfg, 1, seed=5)
    clean = PointEnvBatch(dataclasses.replace(cfg, noise=False), 1, seed=5)
    sets = []
    for _ in range(3):
        g, c = env.observe()[0], clean.observe()[0]
        wrong = np.linalg.norm(g.x_cur - c.x_cur, axis=1) > 1e-9
        sets.append(wrong)
        assert 5 <= wrong.sum() <= 10  # ~10 % of the points, swapped among themselves
        # every mismatched position is another point's true position
        for p in g.x_cur[wrong]:
            assert np.min(np.linalg.norm(c.x_cur - p, axis=1)) < 1e-12
    assert np.array_equal(sets[0], sets[1]) and np.array_equal(sets[1], sets[2])  # held, not redrawn


def test_precision_stage_episodes_run_past_the_goal():
    cfg = EnvConfig(noise=False, num_points_max=32, max_steps=50)
    for reset_on_goal, expect_done in ((True, True), (False, False)):
        env = PointEnvBatch(dataclasses.replace(cfg, reset_on_goal=reset_on_goal), 2, seed=0)
        env.w_T_c[:] = env.w_T_t  # sitting on the goal
        assert np.all(env.done() == expect_done)
        env.steps[:] = 50
        assert np.all(env.done())


def test_kmc_toggles_over_time():
    rng = np.random.default_rng(0)
    kmc = KMCObservability(rng.uniform(-0.4, 0.4, size=(100, 2)), rng)
    states = [kmc.step(t * 0.02, 0.01) for t in range(1, 400)]
    flips = np.sum(np.diff(np.array(states, dtype=int), axis=0) != 0)
    assert flips > 50
    assert 0.1 < np.mean(states) < 0.95


def test_loss_is_zero_for_the_right_answer():
    vel_si = torch.tensor([[0.1, -0.2, 0.3, 0.5, 0.0, -0.1]])
    l = T_inv(vel_si.norm(dim=-1, keepdim=True))
    d, n = cns_loss(3.0 * vel_si, l, vel_si)
    assert float(d) < 1e-6 and float(n) < 1e-6
    assert torch.allclose(T(l), vel_si.norm(dim=-1, keepdim=True), atol=1e-4)
    d, _ = cns_loss(-vel_si, l, vel_si)
    assert float(d) == 2.0


def test_training_smoke_and_resume(tmp_path):
    tc = TrainConfig(iterations=2, batch_size=2, tbptt=1, eval_every=0, checkpoint_every=1, log_every=1,
                     warmup_iterations=1)
    env_cfg = EnvConfig(num_points_min=10, num_points_max=30)
    out = tmp_path / "run"
    before = torch.get_rng_state()
    path = train(tc, env_cfg, GraphConfig(), out, progress_bar=False)
    torch.set_rng_state(before)
    assert path == out / "last.pt"
    first = torch.load(out / "last.pt", weights_only=False)
    assert first["iteration"] == 2 and "state" in first["optimizer"]
    train(dataclasses.replace(tc, iterations=4), env_cfg, GraphConfig(), out, resume=True, progress_bar=False)
    second = torch.load(out / "last.pt", weights_only=False)
    assert second["iteration"] == 4
    changed = [k for k, v in first["net"]["state_dict"].items()
               if not torch.equal(v, second["net"]["state_dict"][k])]
    assert changed  # the resumed run kept learning from the saved weights
    rows = list(csv.reader((out / "log.csv").open()))
    assert rows[0][0] == "iteration" and [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
