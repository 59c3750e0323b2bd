"""The bridge's TF (base → tool0, tool0 → camera_link) and the /vs/sim/orbit service, over real DDS."""

from __future__ import annotations

import numpy as np
import pytest

tf2_msgs = pytest.importorskip("tf2_msgs.msg")

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vs_common.core.frames import BODY_R_OPTICAL  # noqa: E402
from vs_common.core.orbit import orbit_offset  # noqa: E402
from vs_common.ros.image import array_to_image  # noqa: E402
from vs_common.ros.qos import COMMAND_QOS, IMAGE_PUB_QOS  # noqa: E402
from vs_common.ros.tf import TF_QOS, TF_STATIC_QOS  # noqa: E402
from vs_robot_bridge.core.safety import hand_eye_transform  # noqa: E402
from vs_robot_bridge.core.sim_backend import SimBackend  # noqa: E402
from vs_robot_bridge.nodes.robot_bridge import RobotBridgeNode  # noqa: E402
from vs_robot_bridge.ros.sim_orbit import DEPTH_TOPIC  # noqa: E402

from vs_msgs.srv import SimOrbit  # noqa: E402

pytestmark = pytest.mark.ros
TF = tf2_msgs.TFMessage
CAM = "camera_color_optical_frame"


def _matrix(t) -> np.ndarray:
    T = np.eye(4)
    r, q = t.transform.translation, t.transform.rotation
    T[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    T[:3, 3] = [r.x, r.y, r.z]
    return T


def _pose_matrix(p) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w]).as_matrix()
    T[:3, 3] = [p.position.x, p.position.y, p.position.z]
    return T


@pytest.fixture
def cell(ros_context, ros_executor, spin):
    sim = SimBackend()
    bridge = RobotBridgeNode(backend=sim, context=ros_context,
                             parameter_overrides=[Parameter("status_rate_hz", value=50.0),
                                                  Parameter("safety.hand_eye_xyz", value=[0.01, -0.02, 0.05]),
                                                  Parameter("safety.hand_eye_quat_xyzw",
                                                            value=[0.0, 0.0, 0.38268343, 0.92387953])])
    probe = Node("probe", context=ros_context)
    got: dict[str, list] = {"tf": [], "tf_static": []}
    probe.create_subscription(TF, "/tf", got["tf"].append, TF_QOS)
    probe.create_subscription(TF, "/tf_static", got["tf_static"].append, TF_STATIC_QOS)
    for n in (bridge, probe):
        ros_executor.add_node(n)
    assert bridge.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert bridge.trigger_activate() == TransitionCallbackReturn.SUCCESS
    client = probe.create_client(SimOrbit, "/vs/sim/orbit")
    assert spin(ros_executor, client.service_is_ready, timeout=10.0)
    return sim, bridge, probe, client, got


def _orbit(client, executor, spin, **kwargs):
    future = client.call_async(SimOrbit.Request(**kwargs))
    assert spin(executor, future.done, timeout=10.0)
    return future.result()


def _orbit_server(bridge):
    """The node's SimOrbitService (owner of the depth subscription)."""
    sub = next(e for e in bridge._entities if getattr(e, "topic_name", "") == DEPTH_TOPIC)
    return sub.callback.__self__


def test_tf_base_to_tool0_and_hand_eye(cell, ros_executor, spin):
    sim, bridge, _probe, _client, got = cell
    assert spin(ros_executor, lambda: got["tf_static"] and len(got["tf"]) >= 3, timeout=10.0)
    static = {(t.header.frame_id, t.child_frame_id): t for m in got["tf_static"] for t in m.transforms}
    tool0_T_link = _matrix(static[("tool0", "camera_link")])
    # camera_link (body axes) + the optical rotation = the configured hand-eye of the colour optical frame
    link_T_optical = np.eye(4)
    link_T_optical[:3, :3] = BODY_R_OPTICAL
    assert np.allclose(tool0_T_link @ link_T_optical, hand_eye_transform(bridge.core.filter.config), atol=1e-9)
    last = got["tf"][-1].transforms[0]
    assert (last.header.frame_id, last.child_frame_id) == ("base", "tool0")
    assert np.allclose(_matrix(last), sim.base_T_tcp, atol=1e-6)


def test_orbit_moves_the_camera_about_the_viewed_point(cell, ros_executor, spin):
    sim, bridge, probe, client, _got = cell
    tcp_T_cam = hand_eye_transform(bridge.core.filter.config)
    cam0 = sim.base_T_tcp @ tcp_T_cam
    resp = _orbit(client, ros_executor, spin, angle_deg=25.0, distance_m=0.5)
    assert resp.success, resp.message
    cam1 = sim.base_T_tcp @ tcp_T_cam
    assert np.allclose(cam1, orbit_offset(cam0, 0.5, 25.0), atol=1e-9)  # default axis = the demo's
    assert np.allclose(_pose_matrix(resp.camera_pose.pose), cam1, atol=1e-6)
    assert resp.camera_pose.header.frame_id == "base"
    rel = np.linalg.inv(cam0) @ cam1
    assert np.degrees(np.linalg.norm(Rotation.from_matrix(rel[:3, :3]).as_rotvec())) == pytest.approx(25.0)
    p = cam0 @ np.array([0.0, 0.0, 0.5, 1.0])
    assert np.allclose(np.linalg.inv(cam1) @ p, [0.0, 0.0, 0.5, 1.0])  # the viewed point stays put

    # distance 0: the median of the latest aligned depth frame (here 0.6 m), or a refusal before one arrived
    refused = _orbit(client, ros_executor, spin, angle_deg=5.0)
    assert not refused.success and "no aligned depth frame" in refused.message
    pub = probe.create_publisher(Image, DEPTH_TOPIC, IMAGE_PUB_QOS)
    depth = np.full((48, 64), 600, np.uint16)
    depth[:5] = 0  # invalid pixels do not count
    cam1b = sim.base_T_tcp @ tcp_T_cam
    server = _orbit_server(bridge)

    def depth_arrived() -> bool:
        pub.publish(array_to_image(depth, "16UC1", frame_id=CAM))
        return server._depth is not None

    assert spin(ros_executor, depth_arrived, timeout=10.0)
    resp = _orbit(client, ros_executor, spin, angle_deg=-10.0, axis=[0.0, 1.0, 0.0])
    assert resp.success and "0.600 m" in resp.message
    assert np.allclose(sim.base_T_tcp @ tcp_T_cam, orbit_offset(cam1b, 0.6, -10.0, (0.0, 1.0, 0.0)), atol=1e-9)


def test_orbit_refused_while_moving_and_outside_the_workspace(cell, ros_executor, spin):
    sim, bridge, probe, client, _got = cell
    before = sim.base_T_tcp.copy()
    far = _orbit(client, ros_executor, spin, angle_deg=80.0, distance_m=3.0)
    assert not far.success and "workspace" in far.message and np.array_equal(sim.base_T_tcp, before)
    bad = _orbit(client, ros_executor, spin, angle_deg=120.0, distance_m=0.5)
    assert not bad.success and "angle" in bad.message
    pub = probe.create_publisher(TwistStamped, "/vs/servo/cmd_twist", COMMAND_QOS)

    def command() -> bool:
        msg = TwistStamped()
        msg.header.stamp, msg.header.frame_id = probe.get_clock().now().to_msg(), CAM
        msg.twist.linear.x = 0.02
        pub.publish(msg)
        return bool(np.linalg.norm(sim._v) > 1e-4)

    assert spin(ros_executor, command, timeout=10.0), "the servo command never moved the simulated arm"
    command()
    moving = _orbit(client, ros_executor, spin, angle_deg=10.0, distance_m=0.5)
    assert not moving.success and "moving" in moving.message
