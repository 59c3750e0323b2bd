"""Observation plausibility (issue #17 repro 5): implausible input gives a zero twist and a status reason.

The gate is in :class:`ServoSession` (every pipeline's node goes through it), so it is tested with the
real IBVS controller and with a controller that would always move, and as a hypothesis property: for
any observation, the twist is zero unless the observation passes :func:`observation_problem`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_controllers.core.ibvs import IBVSController
from vs_controllers.core.pipelines import get_pipeline
from vs_controllers.core.protocol import ControlOutput
from vs_controllers.core.session import ServoSession, ServoState, SessionConfig, observation_problem
from vs_perception.core.types import Correspondences

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
CAM = CameraModel(K=K, width=640, height=480)
GOAL_UV = np.array([[200.0, 150], [440, 150], [440, 330], [200, 330], [320, 240]])


def obs(current_uv=None, camera=CAM, goal_depth=0.6, current_depth=None, prior=None, stamp=100.0, goal_uv=GOAL_UV):
    info = {} if prior is None else {"distance_prior_m": prior}
    n = len(goal_uv)
    return Correspondences(camera=camera, goal_uv=goal_uv, current_uv=GOAL_UV + 15.0 if current_uv is None else
                           current_uv, valid=np.ones(n, bool), goal_depth=np.full(n, goal_depth),
                           current_depth=None if current_depth is None else np.full(n, current_depth),
                           goal_id="g", stamp=stamp, info=info)


class AlwaysMoves:
    """A controller that always answers with a full-speed twist: only the session's gate can stop it."""

    name = "always"

    def set_goal(self, goal) -> None:
        pass

    def reset(self) -> None:
        pass

    def compute(self, o) -> ControlOutput:
        return ControlOutput(v_c=np.array([0.1, 0, 0, 0, 0, 0.2]), error=1.0)


def _servoing(controller) -> ServoSession:
    s = ServoSession(controller, SessionConfig(max_failures=10_000), get_pipeline("ibvs").loop)
    s.step(obs(), now=0.0)  # sets the goal
    s.start(now=0.0)
    r = s.step(obs(), now=0.04)
    assert np.any(r.v_c), r.reason
    return s


IMPLAUSIBLE = {
    "pixels_1e6": dict(current_uv=GOAL_UV + 1e6),
    "pixels_3e38": dict(current_uv=np.full((5, 2), 3e38)),
    "goal_pixels_outside": dict(goal_uv=GOAL_UV * 100),
    "fx_fy_1e-30": dict(camera=CameraModel(K=np.array([[1e-30, 0, 320], [0, 1e-30, 240], [0, 0, 1]]), width=640,
                                           height=480)),
    "principal_point_outside": dict(camera=CameraModel(K=np.array([[600.0, 0, 1e5], [0, 600, 240], [0, 0, 1]]),
                                                       width=640, height=480)),
    "goal_depth_1e30": dict(goal_depth=1e30),
    "current_depth_1e30": dict(current_depth=1e30),
    "depth_inf": dict(goal_depth=np.inf),
    "prior_1e30": dict(prior=1e30),
    "prior_tiny": dict(prior=1e-9),
}


@pytest.mark.parametrize("controller", [IBVSController, AlwaysMoves])
@pytest.mark.parametrize("case", sorted(IMPLAUSIBLE))
def test_repro5_implausible_observation_gives_zero_and_reason(controller, case) -> None:
    s = _servoing(controller())
    r = s.step(obs(**IMPLAUSIBLE[case]), now=0.08)
    assert not np.any(r.v_c)
    assert r.reason.startswith("implausible observation:"), r.reason
    assert s.state == ServoState.SERVOING  # a few bad frames do not end the run; max_failures in a row do
    r = s.step(obs(), now=0.12)
    assert np.any(r.v_c)  # the next plausible frame moves again


@pytest.mark.parametrize("stamp,reason", [(0.0, "stale"), (99.0, "stale"), (101.0, "future"), (-1e6, "stale"),
                                          (1e6, "future"), (np.nan, "not finite")])
def test_stale_or_future_observation_refused_by_its_own_stamp(stamp, reason) -> None:
    s = _servoing(AlwaysMoves())
    r = s.step(obs(stamp=stamp), now=0.08, clock_s=100.0)
    assert not np.any(r.v_c) and reason in r.reason
    assert np.any(s.step(obs(stamp=99.9), now=0.12, clock_s=100.0).v_c)


def test_plausible_unknowns_are_not_refused() -> None:
    """NaN (or <= 0) depth means unknown and invalid rows may hold anything: neither is implausible."""
    o = obs(goal_depth=np.nan, current_depth=0.0)
    o.valid[0] = False
    o.current_uv[0] = [1e30, -1e30]
    assert observation_problem(o, SessionConfig()) == ""


def test_ibvs_refuses_absurd_goal_prior() -> None:
    with pytest.raises(InputError, match="distance_prior_m"):
        IBVSController().set_goal(obs(prior=-1.0))


def test_consecutive_implausible_frames_fail_the_run() -> None:
    s = ServoSession(AlwaysMoves(), SessionConfig(max_failures=3))
    s.step(obs(), now=0.0)
    s.start(now=0.0)
    for i in range(3):
        r = s.step(obs(prior=1e30), now=0.04 * (i + 1))
    assert r.state == ServoState.FAILED and "3 failed steps" in r.reason and not np.any(r.v_c)


ANY = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uv=st.lists(st.tuples(ANY, ANY), min_size=5, max_size=5), fx=st.one_of(ANY, st.floats(100, 2000)),
       cx=st.one_of(ANY, st.floats(0, 640)), depth=st.one_of(ANY, st.floats(0.1, 3.0)),
       prior=st.one_of(st.none(), ANY, st.floats(0.1, 3.0)), valid=st.lists(st.booleans(), min_size=5, max_size=5))
def test_any_observation_twist_zero_unless_plausible(uv, fx, cx, depth, prior, valid) -> None:
    s = _servoing(IBVSController())
    try:
        cam = CameraModel(K=np.array([[fx, 0, cx], [0, fx, 240], [0, 0, 1]]), width=640, height=480)
        o = obs(current_uv=np.asarray(uv, dtype=np.float64), camera=cam, current_depth=depth, prior=prior)
    except InputError:
        return  # refused at the edge (non-finite K): the node answers with a zero twist
    o.valid &= np.asarray(valid)
    r = s.step(o, now=0.08)
    assert np.all(np.isfinite(r.v_c))
    if observation_problem(o, s.config):
        assert not np.any(r.v_c)
    assert np.linalg.norm(r.v_c[:3]) <= s.loop.config.max_linear_mps + 1e-9
