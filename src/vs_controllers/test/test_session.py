"""ServoSession: state machine, zero twist outside SERVOING, failures, convergence, input watchdog."""

from __future__ import annotations

import numpy as np
from vs_common.core.camera import CameraModel
from vs_controllers.core.ibvs import IBVSController
from vs_controllers.core.protocol import ControlOutput
from vs_controllers.core.session import ServoSession, ServoState, SessionConfig
from vs_perception.core.types import Correspondences

CAM = CameraModel(K=np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]), width=640, height=480)
GOAL_UV = np.array([[200.0, 150], [440, 150], [440, 330], [200, 330], [320, 240]])


def obs(offset: float, goal_id: str = "g1", valid=None) -> Correspondences:
    cur = GOAL_UV + offset
    return Correspondences(camera=CAM, goal_uv=GOAL_UV, current_uv=cur,
                           valid=np.ones(len(GOAL_UV), bool) if valid is None else valid,
                           goal_depth=np.full(len(GOAL_UV), 0.6), goal_id=goal_id)


def test_idle_until_started_then_nonzero() -> None:
    s = ServoSession(IBVSController())
    r = s.step(obs(10.0), now=0.0)
    assert r.state == ServoState.IDLE and not np.any(r.v_c) and s.goal_id == "g1"
    s.start(now=0.0)
    r = s.step(obs(10.0), now=0.04)
    assert r.state == ServoState.SERVOING and np.linalg.norm(r.v_c) > 0 and r.num_valid == 5


def test_converges_on_plateau_and_outputs_zero() -> None:
    s = ServoSession(IBVSController(), SessionConfig(waiting_time_s=0.2, threshold=0.01))
    s.start(now=0.0)
    t = 0.0
    for _ in range(40):
        t += 0.04
        r = s.step(obs(0.5), now=t)
        if r.state == ServoState.CONVERGED:
            break
    assert r.state == ServoState.CONVERGED and not np.any(r.v_c) and "converged" in r.reason


def test_tolerance_converges_immediately() -> None:
    s = ServoSession(IBVSController())
    s.start(tolerance=0.01, now=0.0)
    assert s.step(obs(1.0), now=0.04).state == ServoState.CONVERGED


def test_failures_give_zero_then_failed() -> None:
    s = ServoSession(IBVSController(), SessionConfig(max_failures=3))
    s.start(now=0.0)
    few = np.zeros(len(GOAL_UV), bool)
    few[:2] = True
    for i in range(3):
        r = s.step(obs(5.0, valid=few), now=0.04 * (i + 1))
        assert not np.any(r.v_c) and r.reason
    assert r.state == ServoState.FAILED


class NanController:
    name = "nan"

    def set_goal(self, goal) -> None: ...
    def reset(self) -> None: ...
    def compute(self, o) -> ControlOutput:
        return ControlOutput(v_c=np.full(6, np.nan), error=0.1)


def test_non_finite_twist_never_published() -> None:
    s = ServoSession(NanController())
    s.start(now=0.0)
    r = s.step(obs(3.0), now=0.1)
    assert np.all(r.v_c == 0) and "non-finite" in r.reason


def test_input_watchdog_fails_the_run() -> None:
    s = ServoSession(IBVSController(), SessionConfig(input_timeout_s=0.5))
    s.start(now=0.0)
    s.step(obs(5.0), now=0.1)
    assert s.check_input(now=0.4)
    assert not s.check_input(now=1.0) and s.state == ServoState.FAILED and "no correspondences" in s.reason


def test_new_goal_resets_state() -> None:
    s = ServoSession(IBVSController())
    s.start(tolerance=0.01, now=0.0)
    s.step(obs(0.1), now=0.1)
    assert s.state == ServoState.CONVERGED
    r = s.step(obs(5.0, goal_id="g2"), now=0.2)
    assert s.goal_id == "g2" and r.state == ServoState.IDLE and not np.any(r.v_c)
