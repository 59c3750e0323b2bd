"""Every vs_msgs interface crosses real DDS intact: topics, the SetGoal and SimOrbit services, the Servo action."""

from __future__ import annotations

import array
import math

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from rclpy.action import ActionClient, ActionServer, CancelResponse  # noqa: E402
from rclpy.node import Node  # noqa: E402
from vs_common.ros.qos import LATCHED_QOS  # noqa: E402

import vs_msgs.action as vs_action  # noqa: E402
import vs_msgs.msg as vs_msg  # noqa: E402
import vs_msgs.srv as vs_srv  # noqa: E402


def _correspondences():
    m = vs_msg.Correspondences()
    m.header.frame_id = "camera_color_optical_frame"
    m.header.stamp.sec, m.header.stamp.nanosec = 12, 345
    m.goal_id = "goal-7"
    m.width, m.height = 640, 480
    m.k = [615.0, 0.0, 320.0, 0.0, 615.0, 240.0, 0.0, 0.0, 1.0]
    m.goal_uv = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    m.current_uv = [11.0, 21.0, float("nan"), float("nan"), 52.5, 61.25]
    m.goal_index = [0, 1, 2]
    m.score = [0.9, 0.0, 0.5]
    m.inlier = [True, False, True]
    m.goal_depth = [0.7, 0.71, float("nan")]
    m.detect_ms = 12.5
    return m


def _keypoints():
    m = vs_msg.Keypoints()
    m.detector = "ORB"
    m.uv = [1.0, 2.0, 3.0, 4.0]
    m.response = [0.1, 0.2]
    m.size = [31.0, 31.0]
    m.angle = [10.0, -1.0]
    m.descriptor_type = vs_msg.Keypoints.DESCRIPTOR_UINT8
    m.descriptor_length = 32
    m.descriptors = list(range(64))
    return m


def _servo_status():
    m = vs_msg.ServoStatus()
    m.pipeline = "ibvs"
    m.state = vs_msg.ServoStatus.CONVERGED
    m.goal_id = "g"
    m.error = 0.125  # float32-exact, so equality is exact
    m.num_correspondences, m.num_total, m.step = 120, 300, 77
    m.last_command.linear.x = 0.01
    m.message = "converged"
    return m


def _robot_status():
    m = vs_msg.RobotStatus()
    m.backend = "sim"
    m.state = "active"
    m.connected = True
    m.robot_mode, m.safety_mode = 7, 1
    m.protective_stop = False
    m.fault = True
    m.fault_text = "protective stop latched"
    m.command_age_s = float("nan")
    m.last_command.angular.z = -0.2
    return m


def _equal(a, b) -> bool:
    """Field-wise equality where NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if hasattr(a, "get_fields_and_field_types"):
        return all(_equal(getattr(a, f), getattr(b, f)) for f in a.get_fields_and_field_types())
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple, np.ndarray, array.array)):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a.astype(float)) & np.isnan(b.astype(float)))))
    return a == b


@pytest.mark.parametrize("make", [_correspondences, _keypoints, _servo_status, _robot_status],
                         ids=["Correspondences", "Keypoints", "ServoStatus", "RobotStatus"])
def test_message_roundtrip(ros_context, ros_executor, spin, make) -> None:
    sent = make()
    node = Node("roundtrip", context=ros_context)
    ros_executor.add_node(node)
    received = []
    node.create_subscription(type(sent), "/test/topic", received.append, LATCHED_QOS)
    pub = node.create_publisher(type(sent), "/test/topic", LATCHED_QOS)
    assert spin(ros_executor, lambda: pub.get_subscription_count() > 0)
    pub.publish(sent)
    assert spin(ros_executor, lambda: len(received) > 0), "message never arrived over DDS"
    assert _equal(received[0], sent)
    assert not _equal(received[0], make().__class__())  # the comparison can fail


def test_equal_detects_difference() -> None:
    a, b = _correspondences(), _correspondences()
    b.current_uv[0] = 99.0
    assert not _equal(a, b)


def test_set_goal_service(ros_context, ros_executor, spin) -> None:
    node = Node("goal_server", context=ros_context)
    ros_executor.add_node(node)

    def handle(req, resp):
        resp.success = req.source == vs_srv.SetGoal.Request.SOURCE_IMAGE and req.image.width == 4
        resp.goal_id = req.goal_id or "auto-1"
        resp.num_keypoints = req.image.width * req.image.height
        resp.message = "ok"
        return resp

    node.create_service(vs_srv.SetGoal, "/vs/perception/set_goal", handle)
    client = node.create_client(vs_srv.SetGoal, "/vs/perception/set_goal")
    assert spin(ros_executor, client.service_is_ready)
    req = vs_srv.SetGoal.Request()
    req.source = vs_srv.SetGoal.Request.SOURCE_IMAGE
    req.image.width, req.image.height, req.image.encoding = 4, 2, "mono8"
    req.image.step, req.image.data = 4, bytes(8)
    future = client.call_async(req)
    assert spin(ros_executor, future.done)
    resp = future.result()
    assert resp.success and resp.goal_id == "auto-1" and resp.num_keypoints == 8


def test_sim_orbit_service(ros_context, ros_executor, spin) -> None:
    node = Node("sim_orbit_server", context=ros_context)
    ros_executor.add_node(node)

    def handle(req, resp):
        resp.success = len(req.axis) == 3 and req.distance_m == 0.0
        resp.message = f"{req.angle_deg:g} deg about {list(req.axis)}"
        resp.camera_pose.header.frame_id = "base"
        resp.camera_pose.pose.position.z = 0.5
        resp.camera_pose.pose.orientation.w = 1.0
        return resp

    node.create_service(vs_srv.SimOrbit, "/vs/sim/orbit", handle)
    client = node.create_client(vs_srv.SimOrbit, "/vs/sim/orbit")
    assert spin(ros_executor, client.service_is_ready)
    future = client.call_async(vs_srv.SimOrbit.Request(angle_deg=-25.5, axis=[0.0, 1.0, 0.0]))
    assert spin(ros_executor, future.done)
    resp = future.result()
    assert resp.success and resp.message == "-25.5 deg about [0.0, 1.0, 0.0]"
    assert resp.camera_pose.header.frame_id == "base" and resp.camera_pose.pose.position.z == 0.5


def test_servo_action(ros_context, ros_executor, spin) -> None:
    node = Node("servo_server", context=ros_context)
    ros_executor.add_node(node)

    def execute(handle):
        for step in range(3):
            fb = vs_action.Servo.Feedback()
            fb.status.step = step
            fb.status.state = vs_msg.ServoStatus.SERVOING
            fb.status.error = 1.0 / (step + 1)
            handle.publish_feedback(fb)
        handle.succeed()
        res = vs_action.Servo.Result()
        res.converged, res.final_error, res.steps = True, 0.25, 3
        res.message = f"goal {handle.request.goal_id}"
        return res

    ActionServer(node, vs_action.Servo, "/vs/servo/servo", execute_callback=execute,
                 cancel_callback=lambda _h: CancelResponse.ACCEPT)
    client = ActionClient(node, vs_action.Servo, "/vs/servo/servo")
    assert spin(ros_executor, client.server_is_ready)
    feedback = []
    goal = vs_action.Servo.Goal(goal_id="g1", tolerance=0.01, timeout_s=5.0)
    send = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
    assert spin(ros_executor, send.done)
    handle = send.result()
    assert handle.accepted
    result = handle.get_result_async()
    assert spin(ros_executor, result.done)
    res = result.result().result
    assert res.converged and res.steps == 3 and res.message == "goal g1"
    assert [f.status.step for f in feedback] == [0, 1, 2]
