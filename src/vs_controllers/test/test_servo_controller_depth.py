"""The controller node with a relative-depth pipeline: it reads both depth topics and reports the map's age.

A stand-in spec (IBVS's controller with RELATIVE_DEPTH added) is registered for the test only: the node's
depth wiring follows from the spec's inputs, never from a pipeline name.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vs_common.core.camera import CameraModel  # noqa: E402
from vs_common.ros.image import array_to_image, sec_to_stamp  # noqa: E402
from vs_common.ros.qos import IMAGE_PUB_QOS, LATCHED_QOS  # noqa: E402
from vs_controllers.core.pipelines import PIPELINES, Input, PipelineSpec  # noqa: E402
from vs_controllers.nodes.servo_controller import ServoControllerNode  # noqa: E402
from vs_perception.core.types import Correspondences  # noqa: E402
from vs_perception.ros.conversions import correspondences_to_msg  # noqa: E402

from vs_msgs.msg import Correspondences as CorrespondencesMsg  # noqa: E402
from vs_msgs.msg import ServoStatus  # noqa: E402

CAM = CameraModel(K=np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]), width=640, height=480)
GOAL_UV = np.array([[200.0, 150], [440, 150], [440, 330], [200, 330], [320, 240]])


@pytest.fixture
def depth_spec(monkeypatch):
    spec = PipelineSpec(name="depth_test", summary="IBVS with relative depth (test)",
                        inputs=(Input.CORRESPONDENCES, Input.RELATIVE_DEPTH),
                        controller="vs_controllers.core.ibvs:IBVSController.from_mapping",
                        controller_config="vs_controllers.core.ibvs:IBVSConfig",
                        observer_config="vs_perception.core.observer:ObserverConfig", config_file="ibvs.yaml")
    monkeypatch.setitem(PIPELINES, spec.name, spec)
    return spec


def _depth(stamp: float) -> Image:
    z = np.tile(np.linspace(0.0, 1.0, 640, dtype=np.float32), (480, 1))
    return array_to_image(z, "32FC1", sec_to_stamp(stamp), "camera_color_optical_frame")


def test_the_node_samples_the_latest_map_and_reports_its_age(depth_spec, ros_context, ros_executor, spin) -> None:
    ctrl = ServoControllerNode(context=ros_context, parameter_overrides=[Parameter("pipeline", value="depth_test")])
    probe = Node("probe", context=ros_context)
    for n in (ctrl, probe):
        ros_executor.add_node(n)
    status: list[ServoStatus] = []
    probe.create_subscription(ServoStatus, "/vs/servo/status", status.append, LATCHED_QOS)
    pub_obs = probe.create_publisher(CorrespondencesMsg, "/vs/perception/correspondences", 10)
    pub_depth = probe.create_publisher(Image, "/vs/perception/relative_depth", IMAGE_PUB_QOS)
    pub_goal = probe.create_publisher(Image, "/vs/perception/goal_relative_depth", LATCHED_QOS)
    stage = ctrl.inputs[Input.RELATIVE_DEPTH]
    now = time.time()
    goal_stamp = now - 5.0
    assert spin(ros_executor, lambda: pub_depth.get_subscription_count() > 0 and pub_goal.get_subscription_count() > 0)
    pub_goal.publish(_depth(goal_stamp))
    pub_depth.publish(array_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8", sec_to_stamp(now), ""))  # refused
    pub_depth.publish(_depth(now - 0.3))
    assert spin(ros_executor, lambda: stage.depth.latest is not None and stage.depth.goal_map(goal_stamp) is not None)
    obs = Correspondences(camera=CAM, goal_uv=GOAL_UV, current_uv=GOAL_UV + 5.0, valid=np.ones(5, bool),
                          goal_id="goal-A", goal_stamp=goal_stamp, stamp=now)
    pub_obs.publish(correspondences_to_msg(obs))
    assert spin(ros_executor, lambda: any(s.goal_id == "goal-A" for s in status))
    age = [s for s in status if s.goal_id == "goal-A"][-1].relative_depth_age_ms
    assert age == pytest.approx(300.0, abs=1.0)
    # The goal's map matched by the goal stamp the message carried.
    goal = stage.prepare_goal(ctrl.session.loop._pending_goal)[0]
    np.testing.assert_allclose(goal.goal_relative_depth, GOAL_UV[:, 0] / 639.0, atol=1e-4)


def test_a_pipeline_without_relative_depth_reports_no_age(ros_context, ros_executor, spin) -> None:
    ctrl = ServoControllerNode(context=ros_context, parameter_overrides=[Parameter("pipeline", value="ibvs")])
    probe = Node("probe", context=ros_context)
    for n in (ctrl, probe):
        ros_executor.add_node(n)
    status: list[ServoStatus] = []
    probe.create_subscription(ServoStatus, "/vs/servo/status", status.append, LATCHED_QOS)
    assert spin(ros_executor, lambda: bool(status))
    assert not ctrl.inputs and math.isnan(status[-1].relative_depth_age_ms)
