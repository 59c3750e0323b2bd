"""CNSController: protocol behaviour, bad inputs, hidden-state handling, distance prior, closed loop."""

import numpy as np
import pytest
import torch
from vs_common.core.camera import CameraModel
from vs_common.core.config import from_mapping
from vs_common.core.errors import ConfigError, InputError
from vs_controllers.core.cns.controller import CNSConfig, CNSController, default_checkpoint
from vs_controllers.core.cns.graph import GraphConfig
from vs_controllers.core.cns.network import GraphVS
from vs_controllers.core.loop import LoopConfig, ServoLoop, adaptive_gain
from vs_controllers.core.pipelines import get_pipeline
from vs_controllers.core.protocol import Controller
from vs_controllers.training.point_env import EnvConfig, PointEnvBatch
from vs_perception.core.types import Correspondences

CAM = CameraModel(np.array([[540.0, 0, 320], [0, 540.0, 240], [0, 0, 1]]), 640, 480)


def _goal(n=40, seed=0, goal_id="a", **kw):
    rng = np.random.default_rng(seed)
    uv = rng.uniform([40, 40], [600, 440], size=(n, 2))
    return Correspondences(CAM, uv, uv, np.ones(n, bool), goal_id=goal_id, **kw)


def _obs(goal, shift=5.0, valid=None):
    valid = np.ones(len(goal), bool) if valid is None else valid
    return Correspondences(CAM, goal.goal_uv, goal.goal_uv + shift, valid, goal_id=goal.goal_id)


@pytest.fixture()
def ctrl():
    torch.manual_seed(0)
    return CNSController(CNSConfig(), net=GraphVS())


def test_implements_the_protocol(ctrl):
    assert isinstance(ctrl, Controller)
    goal = _goal()
    ctrl.set_goal(goal)
    out = ctrl.compute(_obs(goal))
    assert out.ok and out.v_c.shape == (6,) and np.all(np.isfinite(out.v_c))
    assert out.error == pytest.approx(np.hypot(5 / 540, 5 / 540))
    for key in ("graph_ms", "net_ms", "controller_ms", "num_clusters"):
        assert key in out.info


@pytest.mark.parametrize("case", ["no_goal", "wrong_type", "too_few", "other_goal", "all_nan"])
def test_bad_observations_give_zero_and_a_reason(ctrl, case):
    goal = _goal()
    if case != "no_goal":
        ctrl.set_goal(goal)
    obs = {
        "no_goal": lambda: _obs(goal),
        "wrong_type": lambda: {"uv": goal.goal_uv},
        "too_few": lambda: _obs(goal, valid=np.arange(len(goal)) < 2),
        "other_goal": lambda: Correspondences(CAM, goal.goal_uv, goal.goal_uv, np.ones(len(goal), bool), goal_id="b"),
        "all_nan": lambda: Correspondences(CAM, goal.goal_uv, np.full_like(goal.goal_uv, np.nan),
                                           np.ones(len(goal), bool), goal_id="a"),
    }[case]()
    out = ctrl.compute(obs)
    assert not out.ok and out.reason and np.all(out.v_c == 0)


def test_hidden_state_resets_on_goal_change(ctrl):
    goal = _goal()
    ctrl.set_goal(goal)
    first = ctrl.compute(_obs(goal)).v_c
    assert ctrl.hidden is not None
    second = ctrl.compute(_obs(goal)).v_c
    assert not np.allclose(first, second)  # the memory changed the answer
    ctrl.set_goal(_goal(seed=1, goal_id="b"))
    assert ctrl.hidden is None
    ctrl.set_goal(goal)
    np.testing.assert_allclose(ctrl.compute(_obs(goal)).v_c, first, atol=1e-6)  # same goal, fresh memory
    ctrl.reset()
    assert ctrl.hidden is None


def test_distance_prior_sources():
    net = GraphVS()
    c = CNSController(CNSConfig(distance_prior_m=0.9), net=net)
    c.set_goal(_goal())
    assert c.distance_m == 0.9
    c.set_goal(_goal(goal_depth=np.r_[np.full(39, 0.5), np.nan]))
    assert c.distance_m == pytest.approx(0.5)
    c.set_goal(_goal(goal_depth=np.full(40, 0.5), info={"distance_prior_m": 0.6}))
    assert c.distance_m == 0.6
    fixed = CNSController(CNSConfig(distance_source="config", distance_prior_m=0.8), net=net)
    fixed.set_goal(_goal(goal_depth=np.full(40, 0.5)))
    assert fixed.distance_m == 0.8
    with pytest.raises(InputError):
        c.set_goal(_goal(info={"distance_prior_m": -1.0}))


def test_translation_scales_with_the_distance_prior():
    torch.manual_seed(0)
    net = GraphVS()
    outs = []
    for d in (0.5, 1.0):
        c = CNSController(CNSConfig(), net=net)
        goal = _goal(info={"distance_prior_m": d})
        c.set_goal(goal)
        outs.append(c.compute(_obs(goal)).v_c)
    np.testing.assert_allclose(outs[1][:3], 2 * outs[0][:3], rtol=1e-5)
    np.testing.assert_allclose(outs[1][3:], outs[0][3:], rtol=1e-5)


def test_speed_limits_and_config_validation():
    torch.manual_seed(0)
    c = CNSController(CNSConfig(), net=GraphVS())
    loop = ServoLoop(c, LoopConfig(max_linear_mps=1e-4, max_angular_rps=1e-4))
    goal = _goal()
    loop.set_goal(goal)
    res = loop.step(_obs(goal, shift=50.0))
    assert np.linalg.norm(res.v_c[:3]) <= 1e-4 + 1e-12 and np.linalg.norm(res.v_c[3:]) <= 1e-4 + 1e-12
    with pytest.raises(ConfigError):
        CNSController.from_mapping({"distance_source": "guess"})
    with pytest.raises(ConfigError):
        CNSController.from_mapping({"gain": 1.0})  # a loop setting (LoopConfig), not the controller's


def test_every_graph_setting_is_reachable():
    """The graph settings are GraphConfig's own (``graph.*``), none copied: each reaches the goal clustering."""
    values = {"graph.singleton_max_points": 8, "graph.ap_damping": 0.8, "graph.ap_max_iter": 50,
              "graph.min_clusters": 3, "graph.retries": 2, "graph.seed": 5}
    c = CNSController(from_mapping(CNSConfig, values), net=GraphVS())
    assert c.graphs.cfg == GraphConfig(singleton_max_points=8, ap_damping=0.8, ap_max_iter=50, min_clusters=3,
                                       retries=2, seed=5)
    assert CNSController(CNSConfig(), net=GraphVS()).graphs.cfg == GraphConfig()
    with pytest.raises(ConfigError, match=r"graph.ap_damping=0.2 is out of range"):
        CNSController.from_mapping({"graph": {"ap_damping": 0.2}})
    with pytest.raises(ConfigError):
        LoopConfig(gain=0.0)
    with pytest.raises(ConfigError):
        LoopConfig(gain_mode="adaptive", gain_inf=1.0, gain_zero=0.5)
    with pytest.raises(ConfigError):
        LoopConfig(gain_mode="fast")


@pytest.mark.parametrize("shift", [0.5, 3.0, 60.0])
def test_adaptive_gain_scales_the_network_twist_by_the_visp_law(shift):
    """Adaptive mode = constant mode times λ(e): near gain_zero in the last pixels, near gain far away."""
    torch.manual_seed(0)
    net = GraphVS()
    goal = _goal()
    outs = {}
    for mode in ("constant", "adaptive"):
        loop = ServoLoop(CNSController(CNSConfig(), net=net), LoopConfig(gain_mode=mode, gain=1.0, gain_inf=1.0,
                                                                          gain_zero=2.0, gain_slope=100.0))
        loop.set_goal(goal)
        outs[mode] = loop.step(_obs(goal, shift=shift))
    assert outs["adaptive"].output.gain_error is None  # the gain reads the mean point error
    lam = outs["adaptive"].gain
    assert lam == pytest.approx(adaptive_gain(outs["adaptive"].error, 2.0, 1.0, 100.0))
    np.testing.assert_allclose(outs["adaptive"].v_c, lam * outs["constant"].v_c, rtol=1e-9)
    np.testing.assert_array_equal(outs["constant"].v_c, outs["constant"].output.v_c)  # unit gain, no limits
    assert get_pipeline("cns").loop == LoopConfig(gain_mode="adaptive", gain=1.0, gain_inf=1.0, gain_zero=2.0,
                                                  gain_slope=100.0, max_linear_mps=0.3, max_angular_rps=1.0)
    e = outs["adaptive"].error  # mean normalised error: shift / f·√2
    assert (lam > 1.8) if e < 0.002 else (lam < 1.01) if e > 0.05 else (1.0 < lam < 2.0)


def test_shipped_checkpoint_servos_synthetic_scenes_to_the_goal():
    """Closed loop through the controller API: the shipped weights reach the goal from large offsets."""
    torch.set_num_threads(1)
    ctrl = CNSController.from_mapping({})  # loads the default weights/cns_table.pt
    assert default_checkpoint().is_file()
    env = PointEnvBatch(EnvConfig(noise=False, num_points_min=60, num_points_max=200), 4, seed=7)
    te0, re0 = env.errors()
    for b, ep in enumerate(env.episodes):
        goal_uv = ep.goal.goal_xy * [CAM.fx, CAM.fy] + [CAM.cx, CAM.cy]
        ctrl.set_goal(Correspondences(CAM, goal_uv, goal_uv, np.ones(len(goal_uv), bool), goal_id=str(b),
                                      info={"distance_prior_m": ep.dist}))
        for _ in range(250):
            g = env.observe()[b]
            obs = Correspondences(CAM, goal_uv, g.x_cur * [CAM.fx, CAM.fy] + [CAM.cx, CAM.cy], g.node_mask,
                                  goal_id=str(b))
            out = ctrl.compute(obs)
            assert out.ok, out.reason
            v = np.zeros((4, 6))
            v[b] = out.v_c
            env.step(v)
    te, re = env.errors()
    assert np.median(re0) > 20 and np.median(te0) > 0.1
    assert np.sum((te < 0.01) & (re < 1.0)) >= 3, (te, re)


def test_threads_parameter_caps_torch():
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        CNSController(from_mapping(CNSConfig, {"network.threads": 1}), net=GraphVS())
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        CNSController(from_mapping(CNSConfig, {"network": {"threads": 0}}), net=GraphVS())  # 0: torch's setting
        assert torch.get_num_threads() == 2
        with pytest.raises(ConfigError, match=r"network.threads=-1"):
            from_mapping(CNSConfig, {"network.threads": -1})
    finally:
        torch.set_num_threads(prev)
