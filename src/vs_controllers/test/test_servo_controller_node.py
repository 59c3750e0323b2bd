"""The controller node over real DDS: twists, status, the Servo action, bad input → zero twist + reason."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from vs_common.core.camera import CameraModel  # noqa: E402
from vs_common.ros.qos import LATCHED_QOS  # noqa: E402
from vs_controllers.core.session import ServoState  # noqa: E402
from vs_controllers.nodes.servo_controller import ServoControllerNode  # noqa: E402
from vs_perception.core.types import Correspondences  # noqa: E402
from vs_perception.ros.conversions import correspondences_to_msg  # noqa: E402

from vs_msgs.action import Servo  # noqa: E402
from vs_msgs.msg import Correspondences as CorrespondencesMsg  # noqa: E402
from vs_msgs.msg import ServoStatus  # noqa: E402

CAM = CameraModel(K=np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]), width=640, height=480)
GOAL_UV = np.array([[200.0, 150], [440, 150], [440, 330], [200, 330], [320, 240]])


def obs_msg(offset: float, age_s: float = 0.0) -> CorrespondencesMsg:
    # Stamped now (the node's clock is the system clock): the controller refuses stale observations.
    o = Correspondences(camera=CAM, goal_uv=GOAL_UV, current_uv=GOAL_UV + offset, valid=np.ones(5, bool),
                        goal_depth=np.full(5, 0.6), goal_id="goal-A", stamp=time.time() - age_s)
    return correspondences_to_msg(o)


@pytest.fixture
def graph(ros_context, ros_executor):
    ctrl = ServoControllerNode(context=ros_context, parameter_overrides=[
        Parameter("pipeline", value="ibvs"), Parameter("session.input_timeout_s", value=1.0)])
    probe = Node("probe", context=ros_context)
    ros_executor.add_node(ctrl)
    ros_executor.add_node(probe)
    got = {"twist": [], "status": []}
    probe.create_subscription(TwistStamped, "/vs/servo/cmd_twist", got["twist"].append, 10)
    probe.create_subscription(ServoStatus, "/vs/servo/status", got["status"].append, LATCHED_QOS)
    pub = probe.create_publisher(CorrespondencesMsg, "/vs/perception/correspondences", 10)
    return ctrl, probe, pub, got


def test_idle_publishes_zero_and_status(graph, ros_executor, spin) -> None:
    ctrl, _probe, pub, got = graph
    assert spin(ros_executor, lambda: pub.get_subscription_count() > 0)
    pub.publish(obs_msg(20.0))
    assert spin(ros_executor, lambda: any(s.goal_id == "goal-A" for s in got["status"]) and got["twist"])
    last = got["twist"][-1]
    assert last.header.frame_id == "camera_color_optical_frame" and last.twist.linear.x == 0.0
    assert got["status"][-1].state == ServoStatus.IDLE


def test_bad_message_gives_zero_twist_and_reason(graph, ros_executor, spin) -> None:
    ctrl, _probe, pub, got = graph
    assert spin(ros_executor, lambda: pub.get_subscription_count() > 0)
    bad = obs_msg(5.0)
    bad.current_uv = bad.current_uv[:-1]  # odd length
    pub.publish(bad)
    assert spin(ros_executor, lambda: any("rejected" in s.message for s in got["status"]))
    assert all(t.twist.linear.x == 0.0 and t.twist.angular.z == 0.0 for t in got["twist"])


def test_servo_action_runs_to_convergence(graph, ros_executor, spin) -> None:
    ctrl, probe, pub, got = graph
    client = ActionClient(probe, Servo, "/vs/servo/servo")
    assert spin(ros_executor, client.server_is_ready)
    pub.publish(obs_msg(20.0))
    assert spin(ros_executor, lambda: ctrl.session.goal_id == "goal-A")
    feedback = []
    send = client.send_goal_async(Servo.Goal(goal_id="goal-A", tolerance=0.002, timeout_s=10.0),
                                  feedback_callback=lambda f: feedback.append(f.feedback.status))
    assert spin(ros_executor, send.done) and send.result().accepted
    res_future = send.result().get_result_async()
    # Feed a shrinking error, as a real closed loop would, and watch the twist.
    for off in (20.0, 10.0, 5.0, 2.0, 0.5, 0.2, 0.1):
        pub.publish(obs_msg(off))
        spin(ros_executor, lambda: False, timeout=0.1)
    assert spin(ros_executor, res_future.done, timeout=5.0)
    result = res_future.result().result
    assert result.converged and result.steps >= 2 and result.final_error < 0.002
    assert any(abs(t.twist.linear.x) > 0 for t in got["twist"]), "never commanded motion while servoing"
    assert got["twist"][-1].twist.linear.x == 0.0, "a velocity was left standing after convergence"
    assert any(f.state == ServoStatus.SERVOING for f in feedback)


def test_action_fails_when_input_stops(graph, ros_executor, spin) -> None:
    ctrl, probe, pub, got = graph
    client = ActionClient(probe, Servo, "/vs/servo/servo")
    assert spin(ros_executor, client.server_is_ready)
    pub.publish(obs_msg(20.0))
    assert spin(ros_executor, lambda: ctrl.session.goal_id == "goal-A")
    send = client.send_goal_async(Servo.Goal(goal_id="goal-A"))
    assert spin(ros_executor, send.done) and send.result().accepted
    res_future = send.result().get_result_async()
    assert spin(ros_executor, res_future.done, timeout=5.0)
    result = res_future.result().result
    assert not result.converged and "no correspondences" in result.message
    assert got["status"][-1].state == ServoStatus.FAILED


def _servoing(graph, ros_executor, spin):
    ctrl, probe, pub, got = graph
    client = ActionClient(probe, Servo, "/vs/servo/servo")
    assert spin(ros_executor, client.server_is_ready)
    pub.publish(obs_msg(20.0))
    assert spin(ros_executor, lambda: ctrl.session.goal_id == "goal-A")
    send = client.send_goal_async(Servo.Goal(goal_id="goal-A", timeout_s=30.0))
    assert spin(ros_executor, send.done) and send.result().accepted
    assert spin(ros_executor, lambda: ctrl.session.state == ServoState.SERVOING)


def test_twist_carries_the_observation_stamp(graph, ros_executor, spin) -> None:
    """Issue #17 repro 4: a twist computed from an observation is stamped with that image's stamp."""
    ctrl, _probe, pub, got = graph
    _servoing(graph, ros_executor, spin)
    msg = obs_msg(20.0, age_s=0.2)
    pub.publish(msg)
    assert spin(ros_executor, lambda: any(abs(t.twist.linear.x) > 0 for t in got["twist"]))
    moving = [t for t in got["twist"] if abs(t.twist.linear.x) > 0 or abs(t.twist.angular.z) > 0]
    assert all(t.header.stamp == msg.header.stamp for t in moving)


@pytest.mark.parametrize("stamp", ["zero", "minus_one", "old_1s", "future_1s", "old_1e6", "future_1e6"])
def test_repro4_stale_or_future_observation_gives_zero(graph, ros_executor, spin, stamp) -> None:
    """Issue #17 repro 4: observations stamped 0, -1 s, ±1e6 s (or in another frame) produced motion."""
    ctrl, _probe, pub, got = graph
    _servoing(graph, ros_executor, spin)
    got["twist"].clear()
    age = {"zero": time.time(), "minus_one": 0.0, "old_1s": 1.0, "future_1s": -1.0, "old_1e6": 1e6,
           "future_1e6": -1e6}[stamp]
    msg = obs_msg(20.0, age_s=age)
    if stamp in ("zero", "minus_one"):
        msg.header.stamp.sec, msg.header.stamp.nanosec = (0, 0) if stamp == "zero" else (-1, 0)
    pub.publish(msg)
    assert spin(ros_executor, lambda: any(("stale" in s.message or "future" in s.message or "nanosec" in s.message)
                                          for s in got["status"]))
    other = obs_msg(20.0)
    other.header.frame_id = "camera_depth_optical_frame"
    pub.publish(other)
    assert spin(ros_executor, lambda: "frame" in got["status"][-1].message)
    assert got["twist"] and all(not any((t.twist.linear.x, t.twist.linear.y, t.twist.linear.z, t.twist.angular.x,
                                         t.twist.angular.y, t.twist.angular.z)) for t in got["twist"])


def test_controller_settings_are_node_parameters(ros_context, ros_executor, spin) -> None:
    """Defaults from config/ibvs.yaml, overridable at start; loop settings at run time, the rest read-only."""
    from rclpy.parameter_client import AsyncParameterClient
    from vs_perception.ros.conversions import msg_to_correspondences

    ctrl = ServoControllerNode(context=ros_context, parameter_overrides=[
        Parameter("pipeline", value="ibvs"), Parameter("loop.gain_mode", value="constant"),
        Parameter("loop.gain", value=0.4), Parameter("controller.min_points", value=5)])
    probe = Node("probe", context=ros_context)
    for n in (ctrl, probe):
        ros_executor.add_node(n)
    loop = ctrl.session.loop
    assert loop.config.gain_mode == "constant" and loop.config.gain == 0.4
    assert ctrl.session.controller.config.min_points == 5
    assert ctrl.get_parameter("controller.depth_source").value == "goal_depth"  # from config/ibvs.yaml
    assert ctrl.get_parameter("loop.max_linear_mps").value == 0.3  # from config/ibvs.yaml's loop section
    client = AsyncParameterClient(probe, "/servo_controller")
    assert spin(ros_executor, client.services_are_ready, timeout=10.0)

    def set_(name, value):
        fut = client.set_parameters([Parameter(name, value=value)])
        assert spin(ros_executor, fut.done, timeout=10.0)
        return fut.result().results[0]

    obs = msg_to_correspondences(obs_msg(4.0))
    loop.set_goal(msg_to_correspondences(obs_msg(0.0)))
    v_before = loop.step(obs).v_c
    assert set_("loop.gain", 0.2).successful
    assert loop.config.gain == 0.2 and np.allclose(loop.step(obs).v_c, 0.5 * v_before)
    res = set_("loop.gain_mode", "turbo")
    assert not res.successful and "gain_mode" in res.reason and loop.config.gain_mode == "constant"
    assert not set_("loop.max_linear_mps", -1.0).successful
    assert set_("controller.min_points", 6).successful and ctrl.session.controller.config.min_points == 6
    for name, value in (("controller.interaction", "desired"), ("pipeline", "cns"), ("session.threshold", 0.1)):
        res = set_(name, value)
        assert not res.successful and "read-only" in res.reason.lower(), name
