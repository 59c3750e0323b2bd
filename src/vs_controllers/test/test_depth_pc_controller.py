"""DepthPCController: the protocol, goal depth vs current depth, bad inputs, config, the factory."""

import numpy as np
import pytest
import torch
from vs_common.core.camera import CameraModel
from vs_common.core.errors import ConfigError, InputError, WeightsNotFoundError
from vs_controllers.core.depth_pc.controller import (
    DepthPCConfig,
    DepthPCController,
    default_checkpoint,
)
from vs_controllers.core.depth_pc.network import DepthPCNet
from vs_controllers.core.protocol import Controller
from vs_perception.core.types import Correspondences

CAM = CameraModel(np.array([[540.0, 0, 320], [0, 540.0, 240], [0, 0, 1]]), 640, 480)


def _scene(n=60, seed=0):
    """Pixels and depths of n points on a tilted plane seen by the goal camera (m)."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform([40, 40], [600, 440], size=(n, 2))
    z = 0.6 + 0.3 * (uv[:, 0] / 640.0) + rng.uniform(0, 0.05, n)
    return uv, z


def _goal(n=60, seed=0, goal_id="a", depth_scale=1.0):
    uv, z = _scene(n, seed)
    return Correspondences(CAM, uv, uv, np.ones(n, bool), goal_id=goal_id, goal_depth=z,
                           goal_relative_depth=depth_scale * z)


def _obs(goal, shift=8.0, valid=None, depth=None):
    valid = np.ones(len(goal), bool) if valid is None else valid
    z = goal.goal_relative_depth * 1.05 if depth is None else depth
    return Correspondences(CAM, goal.goal_uv, goal.goal_uv + shift, valid, goal_id=goal.goal_id, relative_depth=z)


@pytest.fixture()
def ctrl():
    torch.manual_seed(0)
    net = DepthPCNet()
    for head in (net.gain_dir, net.gain_norm):  # make the depth heads matter
        torch.nn.init.normal_(head[-1].weight, std=0.3)
    return DepthPCController(DepthPCConfig(), net=net)


def test_implements_the_protocol_and_returns_a_finite_twist(ctrl):
    assert isinstance(ctrl, Controller)
    goal = _goal()
    ctrl.set_goal(goal)
    out = ctrl.compute(_obs(goal))
    assert out.ok and out.v_c.shape == (6,) and np.all(np.isfinite(out.v_c)) and np.linalg.norm(out.v_c) > 0
    assert out.error == pytest.approx(8 * np.sqrt(2) / 540, rel=1e-6)
    assert out.info["depth_points"] == 60 and out.info["distance_prior_m"] == pytest.approx(np.median(goal.goal_depth))


def test_too_few_points_and_bad_inputs_give_zero_and_a_reason(ctrl):
    assert not ctrl.compute(_obs(_goal())).ok  # no goal yet
    goal = _goal()
    ctrl.set_goal(goal)
    valid = np.zeros(60, bool)
    valid[:2] = True
    for obs in (_obs(goal, valid=valid), "not an observation", _obs(_goal(goal_id="b"))):
        out = ctrl.compute(obs)  # type: ignore[arg-type]
        assert not out.ok and out.reason and np.all(out.v_c == 0)
    with pytest.raises(InputError):
        ctrl.set_goal(Correspondences(CAM, np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, bool)))


def test_the_output_follows_the_goal_depth_and_the_current_depth(ctrl):
    goal = _goal()
    ctrl.set_goal(goal)
    base = ctrl.compute(_obs(goal)).v_c
    ctrl.set_goal(_goal(depth_scale=1.0))
    np.testing.assert_allclose(ctrl.compute(_obs(goal)).v_c, base, atol=1e-6)  # reset → same step
    # Any positive affine scale of either depth reads alike (per-frame min-max normalisation).
    ctrl.set_goal(_goal(depth_scale=7.0))
    np.testing.assert_allclose(ctrl.compute(_obs(goal, depth=(goal.goal_relative_depth * 1.05) * 3 + 2)).v_c, base,
                               atol=1e-5)
    # A reversed goal depth changes the twist; the goal embedding never sees the current depth.
    flipped = _goal()
    flipped.goal_relative_depth = flipped.goal_relative_depth[::-1].copy()
    ctrl.set_goal(flipped)
    assert not np.allclose(ctrl.compute(_obs(goal)).v_c, base, atol=1e-6)
    ctrl.set_goal(goal)
    assert not np.allclose(ctrl.compute(_obs(goal, depth=goal.goal_relative_depth[::-1].copy())).v_c, base, atol=1e-6)


def test_the_controller_normalises_depth_as_its_weights_were_trained():
    goal = _goal()
    valid = np.ones(len(goal), bool)
    z = goal.goal_relative_depth
    valid[[int(np.argmin(z)), int(np.argmax(z))]] = False
    obs = _obs(goal, shift=0.0, valid=valid, depth=2.0 * z + 0.1)  # the goal's view, an affine estimate of it
    for norm, equal in (("common", True), ("frame", False)):
        c = DepthPCController(DepthPCConfig(), net=DepthPCNet(depth_norm=norm))
        assert c.graphs.norm == norm
        c.set_goal(goal)
        g = c.graphs.build(obs, 0.6)
        same = np.allclose(g.z_cur[g.node_mask], g.z_tar[g.node_mask], atol=1e-6)
        assert same == equal


def test_missing_depth_is_read_as_zero_not_refused(ctrl):
    goal = _goal()
    ctrl.set_goal(goal)
    z = goal.goal_relative_depth.copy()
    z[:30] = np.nan
    out = ctrl.compute(_obs(goal, depth=z))
    assert out.ok and out.info["depth_points"] == 30
    no_depth = Correspondences(CAM, goal.goal_uv, goal.goal_uv + 8, np.ones(60, bool), goal_id="a")
    assert ctrl.compute(no_depth).ok


def test_recurrent_state_resets_on_a_new_goal(ctrl):
    goal = _goal()
    ctrl.set_goal(goal)
    first = ctrl.compute(_obs(goal)).v_c
    second = ctrl.compute(_obs(goal)).v_c
    assert not np.allclose(first, second)  # the hidden state carried over
    ctrl.set_goal(goal)
    np.testing.assert_allclose(ctrl.compute(_obs(goal)).v_c, first, atol=1e-6)


def test_config_validation_and_the_factory(tmp_path):
    for bad in ({"min_points": 0}, {"distance_source": "stereo"}):
        with pytest.raises(ConfigError):
            DepthPCConfig(**bad)
    for bad in ({"gain": 2}, {"network": {"threads": -1}}):
        with pytest.raises(ConfigError):
            DepthPCController.from_mapping(bad)
    assert default_checkpoint().name == "depthpc_neargoal.pt" and default_checkpoint().parent.name == "weights"
    with pytest.raises(WeightsNotFoundError):
        DepthPCController.from_mapping({"network": {"checkpoint": str(tmp_path / "none.pt")}})
    torch.save(DepthPCNet().checkpoint(), tmp_path / "d.pt")
    ctrl = DepthPCController.from_mapping({"network.checkpoint": str(tmp_path / "d.pt"), "graph": {"ap_damping": 0.8}})
    assert isinstance(ctrl, DepthPCController) and ctrl.config.graph.ap_damping == 0.8
    assert "DepthPCNet" in DepthPCConfig.__dataclass_fields__["network"].metadata["description"]
