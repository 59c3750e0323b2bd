"""Benchmark relative depth: the three sources give depths on the right keypoints, the delay, the journal identity.

A stand-in controller (the Controller protocol) and a spec with RELATIVE_DEPTH that is not registered: the
plumbing is tested without the Depth-PC network.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import spearmanr
from vs_common.core.errors import ConfigError
from vs_controllers.benchmark.cli import build_parser, compared_runs
from vs_controllers.benchmark.config import BenchmarkConfig
from vs_controllers.benchmark.depth import BenchDepth, DepthSourceConfig, scene_rng
from vs_controllers.benchmark.episode import run_episode
from vs_controllers.benchmark.journal import EpisodeJournal
from vs_controllers.core.inputs import make_inputs
from vs_controllers.core.pipelines import Input, PipelineSpec
from vs_controllers.core.protocol import ControlOutput
from vs_perception.core.keypoint_depth import KeypointDepth
from vs_perception.core.observer import ObserverConfig
from vs_sim.core.cells import make_cell
from vs_sim.core.scenes import load_scenes

SPEC = PipelineSpec(name="stand_in", summary="", inputs=(Input.CORRESPONDENCES, Input.RELATIVE_DEPTH),
                    controller="unused:unused", controller_config="unused:unused")


@pytest.fixture(scope="module")
def cell_and_scene():
    cell, scene = make_cell("image"), load_scenes("image")[0]
    cell.load_scene(scene)
    return cell, scene


def _frame(cell, scene, streams=("color", "depth", "ir")):
    return cell.render(np.asarray(scene.w_T_init), streams=streams)


def _pixels(n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.uniform(120, 520, n), rng.uniform(60, 420, n)], axis=1)


@pytest.mark.parametrize(("source", "min_rho"), [("render", 0.999), ("sgbm", 0.9), ("render_error", 0.8)])
def test_sources_order_the_keypoints_like_the_true_depth(cell_and_scene, source: str, min_rho: float) -> None:
    cell, scene = cell_and_scene
    frame = _frame(cell, scene)
    uv = _pixels()
    z_true = frame.depth[np.round(uv[:, 1]).astype(int), np.round(uv[:, 0]).astype(int)]
    assert np.ptp(z_true) > 0.02  # the plane is seen at an angle: depths to order
    src = BenchDepth(DepthSourceConfig(source=source), cell, KeypointDepth(), scene_rng(3, scene.id))
    z = src.depth_map(frame, 0.0).sample(uv, (cell.camera.width, cell.camera.height))
    ok = np.isfinite(z)
    assert ok.mean() > 0.8
    rho = spearmanr(z[ok], z_true[ok]).statistic
    assert rho > min_rho, f"{source}: Spearman {rho:.3f}"


def test_render_error_is_seeded_per_scene(cell_and_scene) -> None:
    cell, scene = cell_and_scene
    frame, uv, size = _frame(cell, scene, ("color", "depth")), _pixels(), (cell.camera.width, cell.camera.height)
    draw = lambda seed: BenchDepth(DepthSourceConfig(source="render_error"), cell, KeypointDepth(),  # noqa: E731
                                   scene_rng(seed, scene.id)).depth_map(frame, 0.0).sample(uv, size)
    np.testing.assert_array_equal(draw(1), draw(1))
    assert not np.allclose(draw(1), draw(2), equal_nan=True)


def test_the_delay_feeds_the_map_of_k_steps_ago(cell_and_scene) -> None:
    cell, scene = cell_and_scene
    frame, target = _frame(cell, scene, ("color", "depth")), KeypointDepth()
    src = BenchDepth(DepthSourceConfig(source="render", delay_steps=2), cell, target)
    for k in range(5):
        src.step(frame, 0.04 * k)
        assert target.latest is not None and target.latest.stamp == pytest.approx(0.04 * max(0, k - 2))
    assert DepthSourceConfig(source="render_error").delay > 0 and DepthSourceConfig(source="sgbm").delay == 0
    with pytest.raises(ConfigError, match="render_error"):
        DepthSourceConfig(source="anything")


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list = []

    def set_goal(self, goal) -> None:  # noqa: ANN001
        pass

    def reset(self) -> None:
        pass

    def compute(self, obs) -> ControlOutput:  # noqa: ANN001
        self.seen.append(obs)
        return ControlOutput(v_c=np.zeros(6), error=1.0)


def test_an_episode_gives_the_controller_depths_at_its_keypoints(cell_and_scene) -> None:
    cell, scene = cell_and_scene
    ctrl = Recorder()
    run_episode(cell, scene, ObserverConfig(), ctrl, BenchmarkConfig(max_steps=3), inputs=make_inputs(SPEC),
                depth=DepthSourceConfig(source="render"))
    assert len(ctrl.seen) == 3
    obs = ctrl.seen[0]
    rows = obs.valid & np.isfinite(obs.current_depth) & np.isfinite(obs.relative_depth)
    assert rows.sum() > 20 and np.isnan(obs.relative_depth[~obs.valid]).all()
    # Relative depth at the current keypoints orders them as the observer's metric depth there does.
    assert spearmanr(obs.relative_depth[rows], obs.current_depth[rows]).statistic > 0.99
    goal_rows = np.isfinite(obs.goal_depth) & np.isfinite(obs.goal_relative_depth)
    assert spearmanr(obs.goal_relative_depth[goal_rows], obs.goal_depth[goal_rows]).statistic > 0.99
    assert obs.info["relative_depth_age_s"] == pytest.approx(0.0)


def test_the_journal_identity_holds_the_depth_source(tmp_path, cell_and_scene) -> None:
    _, scene = cell_and_scene
    kw = dict(pipeline="p", env="image", seed=1, max_steps=10, cfg_hash="h")
    plain = EpisodeJournal(tmp_path / "j", **kw)
    assert "depth" not in plain.identity(scene)  # pipelines without relative depth: identities unchanged
    ids = {src: EpisodeJournal(tmp_path / "j", depth=DepthSourceConfig(source=src).identity(), **kw).key(scene)
           for src in ("render", "sgbm", "render_error")}
    assert len(set(ids.values())) == 3
    delayed = EpisodeJournal(tmp_path / "j", depth=DepthSourceConfig(source="render", delay_steps=3).identity(), **kw)
    assert delayed.key(scene) != ids["render"]
    assert DepthSourceConfig(source="render", delay_steps=0).identity() == DepthSourceConfig().identity()


def test_compare_runs_the_other_pipeline_on_the_same_scenes() -> None:
    args = build_parser().parse_args(["--pipeline", "ibvs", "--scenes", "0:2", "--compare", "cns",
                                      "--depth-source", "sgbm", "--out", "x"])
    first, second = compared_runs(args)
    assert (first.pipeline, second.pipeline, second.out, second.scenes) == ("ibvs", "cns", "x-cns", "0:2")
    assert second.depth_source == "sgbm" and not second.compare
    assert dataclasses.asdict(DepthSourceConfig())["source"] == "render"
