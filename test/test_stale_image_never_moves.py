"""Controller → bridge over DDS (issue #17 repro 4): a twist computed from a stale image never moves the arm.

The controller accepts an observation up to ``session.max_observation_age_s`` (0.5 s) old and stamps its
twist with the image's stamp; the bridge judges that stamp against ``safety.max_command_age_s`` (0.1 s).
So an image 0.3 s old gives a non-zero twist that the bridge refuses, and a fresh one moves the arm.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from vs_common.core.camera import CameraModel  # noqa: E402
from vs_common.ros.qos import DATA_QOS  # noqa: E402
from vs_controllers.nodes.servo_controller import ServoControllerNode  # noqa: E402
from vs_perception.core.types import Correspondences  # noqa: E402
from vs_perception.ros.conversions import correspondences_to_msg  # noqa: E402
from vs_robot_bridge.core.sim_backend import SimBackend  # noqa: E402
from vs_robot_bridge.nodes.robot_bridge import RobotBridgeNode  # noqa: E402

from vs_msgs.action import Servo  # noqa: E402
from vs_msgs.msg import Correspondences as CorrespondencesMsg  # noqa: E402

GOAL_UV = np.array([[200.0, 150], [440, 150], [440, 330], [200, 330], [320, 240]])
CAM = CameraModel(K=np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]), width=640, height=480)


def _obs(age_s: float) -> CorrespondencesMsg:
    return correspondences_to_msg(Correspondences(
        camera=CAM, goal_uv=GOAL_UV, current_uv=GOAL_UV + 20.0, valid=np.ones(5, bool), goal_depth=np.full(5, 0.6),
        goal_id="g", stamp=time.time() - age_s))


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.005)
    return bool(predicate())


def test_stale_image_twist_is_refused_by_the_bridge(ros_context) -> None:
    sim = SimBackend()
    motion: list[np.ndarray] = []  # every non-zero speedL target
    sim.on_command = lambda what, v: motion.append(np.array(v)) if what == "speedL" and np.any(v) else None
    bridge = RobotBridgeNode(backend=sim, context=ros_context)
    ctrl = ServoControllerNode(context=ros_context, parameter_overrides=[
        Parameter("pipeline", value="ibvs"), Parameter("session.max_failures", value=1000)])
    probe = Node("probe", context=ros_context)
    twists: list[TwistStamped] = []
    probe.create_subscription(TwistStamped, "/vs/servo/cmd_twist", twists.append, 10)
    pub = probe.create_publisher(CorrespondencesMsg, "/vs/perception/correspondences", DATA_QOS)
    servo = ActionClient(probe, Servo, "/vs/servo/servo")
    executor = SingleThreadedExecutor(context=ros_context)
    for node in (bridge, ctrl, probe):
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        bridge.trigger_configure()
        bridge.trigger_activate()
        assert _wait(lambda: bridge.core.active and pub.get_subscription_count() > 0)
        pub.publish(_obs(0.0))
        assert _wait(lambda: ctrl.session.goal_id == "g")
        assert _wait(servo.server_is_ready)
        sent = servo.send_goal_async(Servo.Goal(goal_id="g", timeout_s=60.0))
        assert _wait(sent.done) and sent.result().accepted

        for _ in range(15):  # images 0.3 s old: the controller twists, the bridge refuses by the stamp
            pub.publish(_obs(0.3))
            time.sleep(0.03)
        moving = [t for t in twists if abs(t.twist.linear.x) + abs(t.twist.linear.y) + abs(t.twist.angular.z) > 0]
        assert moving, "the controller should still twist on a 0.3 s old image (its own gate is 0.5 s)"
        assert not motion, "a twist from a stale image moved the arm"
        assert "stale" in bridge.core.status().last_rejection

        deadline = time.monotonic() + 5.0
        while not motion and time.monotonic() < deadline:  # fresh images move it
            pub.publish(_obs(0.0))
            time.sleep(0.03)
        assert motion, bridge.core.status().last_rejection
    finally:
        executor.shutdown()
        for node in (bridge, ctrl, probe):
            node.destroy_node()
