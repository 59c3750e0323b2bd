"""Input stages: a pipeline with RELATIVE_DEPTH gets its keypoints' relative depth in the shared servo loop.

A stand-in controller (the Controller protocol) records what it is given; nothing here compares a name.
"""

from __future__ import annotations

import numpy as np
from vs_common.core.camera import CameraModel
from vs_controllers.core.inputs import WAITING_FOR_GOAL_DEPTH, RelativeDepthInput, make_inputs
from vs_controllers.core.loop import ServoLoop
from vs_controllers.core.pipelines import Input, PipelineSpec, get_pipeline
from vs_controllers.core.protocol import Controller, ControlOutput
from vs_controllers.core.session import ServoSession, ServoState, SessionConfig
from vs_perception.core.keypoint_depth import DepthMap
from vs_perception.core.types import Correspondences

CAM = CameraModel(K=np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]]), width=64, height=48)
SPEC = PipelineSpec(name="stand_in", summary="", inputs=(Input.CORRESPONDENCES, Input.RELATIVE_DEPTH),
                    controller="unused:unused", controller_config="unused:unused")


class StandIn:
    name = "stand_in"

    def __init__(self) -> None:
        self.seen: list[Correspondences] = []
        self.goals: list[Correspondences] = []

    def set_goal(self, goal) -> None:  # noqa: ANN001
        self.goals.append(goal)
        self.seen.clear()

    def reset(self) -> None:
        pass

    def compute(self, obs: Correspondences) -> ControlOutput:
        self.seen.append(obs)
        return ControlOutput(v_c=np.full(6, 0.01), error=0.1)


def _obs(stamp: float, goal_stamp: float = 1.0) -> Correspondences:
    goal_uv = np.array([[10.0, 10.0], [50.0, 10.0], [30.0, 40.0], [5.0, 5.0]])
    cur = goal_uv + [2.0, 1.0]
    cur[3] = np.nan
    return Correspondences(camera=CAM, goal_uv=goal_uv, current_uv=cur, valid=[True, True, True, False],
                           goal_id="g", goal_stamp=goal_stamp, stamp=stamp)


def _map(stamp: float) -> DepthMap:
    return DepthMap(np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (48, 1)), stamp=stamp)  # grows with u


def test_stages_follow_the_spec_inputs() -> None:
    assert isinstance(StandIn(), Controller)
    assert list(make_inputs(SPEC)) == [Input.RELATIVE_DEPTH]
    assert make_inputs(get_pipeline("cns")) == {}  # a pipeline without relative depth has no stage


def test_the_loop_waits_for_the_goal_depth_then_fills_both_depths() -> None:
    ctrl = StandIn()
    stage = make_inputs(SPEC)[Input.RELATIVE_DEPTH]
    assert isinstance(stage, RelativeDepthInput)
    loop = ServoLoop(ctrl, inputs=[stage])
    loop.set_goal(_obs(1.0))
    stage.depth.update(_map(1.9))
    res = loop.step(_obs(2.0), t=2.0)
    assert not res.ok and res.reason == WAITING_FOR_GOAL_DEPTH and not np.any(res.v_c) and not ctrl.seen
    assert not ctrl.goals  # the controller's goal waits for its depth
    stage.depth.add_goal(_map(1.0))  # the goal image's depth, stamped like the goal
    res = loop.step(_obs(2.1), t=2.1)
    assert res.ok and np.any(res.v_c)
    assert len(ctrl.goals) == 1  # given once, with its depth
    np.testing.assert_allclose(ctrl.goals[0].goal_relative_depth, ctrl.goals[0].goal_uv[:, 0] / 63.0, atol=1e-5)
    seen = ctrl.seen[-1]
    np.testing.assert_allclose(seen.goal_relative_depth, seen.goal_uv[:, 0] / 63.0, atol=1e-5)
    np.testing.assert_allclose(seen.relative_depth[:3], seen.current_uv[:3, 0] / 63.0, atol=1e-5)
    assert np.isnan(seen.relative_depth[3])  # an invalid row has no depth
    assert seen.info["relative_depth_age_s"] == np.float64(2.1) - 1.9


def test_a_pipeline_without_stages_gets_its_goal_at_once() -> None:
    ctrl = StandIn()
    ServoLoop(ctrl).set_goal(_obs(1.0))
    assert len(ctrl.goals) == 1


def test_the_session_gives_a_zero_twist_with_the_reason_and_never_blocks() -> None:
    session = ServoSession(StandIn(), inputs=list(make_inputs(SPEC).values()))
    session.step(_obs(1.0), now=1.0)
    session.start(now=1.0)
    res = session.step(_obs(1.05), now=1.05)
    assert session.state == ServoState.SERVOING and res.reason == WAITING_FOR_GOAL_DEPTH and not np.any(res.v_c)


def test_waiting_for_an_input_is_bounded_by_time_not_by_failed_steps() -> None:
    # 25 waiting steps in 1 s (a fast observer before the first depth map) used to reach max_failures.
    session = ServoSession(StandIn(), SessionConfig(max_failures=3, input_wait_s=2.0),
                           inputs=list(make_inputs(SPEC).values()))
    stage = session.loop.inputs[0]
    session.step(_obs(1.0), now=1.0)
    session.start(now=1.0)
    for i in range(25):
        res = session.step(_obs(1.0 + 0.04 * (i + 1)), now=1.0 + 0.04 * (i + 1))
        assert res.state == ServoState.SERVOING and res.reason == WAITING_FOR_GOAL_DEPTH and not np.any(res.v_c)
    stage.depth.add_goal(_map(1.0))
    stage.depth.update(_map(2.0))
    res = session.step(_obs(2.05), now=2.05)
    assert res.state == ServoState.SERVOING and np.any(res.v_c)


def test_a_goal_depth_that_never_comes_fails_the_run_after_input_wait_s() -> None:
    session = ServoSession(StandIn(), SessionConfig(input_wait_s=2.0), inputs=list(make_inputs(SPEC).values()))
    session.step(_obs(1.0), now=1.0)
    session.start(now=1.0)
    res = session.step(_obs(1.1), now=1.1)
    assert res.state == ServoState.SERVOING
    res = session.step(_obs(3.0), now=3.0)  # waited 1.9 s
    assert res.state == ServoState.SERVOING
    res = session.step(_obs(3.2), now=3.2)  # waited 2.1 s
    assert res.state == ServoState.FAILED and "input_wait_s" in res.reason and not np.any(res.v_c)
    assert WAITING_FOR_GOAL_DEPTH in res.reason
