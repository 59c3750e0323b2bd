"""Publishing TF without tf2_ros: ``tf2_msgs/TFMessage`` on /tf and /tf_static (tf2_ros' wire format).

tf2_ros (C++) is not on PyPI; ``tf2_msgs`` comes with the ros2cli kit or a full ROS install. Where
tf2_ros is importable its StaticTransformBroadcaster is used for /tf_static; where tf2_msgs is missing
the node logs one warning and publishes no TF (nothing else depends on it).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from vs_common.core.topics import TF, TF_STATIC
from vs_common.ros.geometry import matrix_to_pose_stamped

#: As tf2_ros' StaticTransformBroadcaster: latched, reliable, depth 1 (one message holds every transform).
TF_STATIC_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                           reliability=ReliabilityPolicy.RELIABLE)
#: As tf2_ros' TransformBroadcaster.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def transform_msg(parent_T_child: np.ndarray, parent: str, child: str, stamp: Time) -> TransformStamped:
    """(4, 4) rigid transform → TransformStamped (child's pose in parent), converted and checked as
    :func:`~vs_common.ros.geometry.matrix_to_pose_stamped` does.

    Raises:
        InputError: not a finite (4, 4) matrix with a rotation block.
    """
    pose = matrix_to_pose_stamped(parent_T_child, stamp, parent).pose
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, parent, child
    p, t = pose.position, msg.transform.translation
    t.x, t.y, t.z = p.x, p.y, p.z
    msg.transform.rotation = pose.orientation
    return msg


def _tf_message_type(node: Node):  # noqa: ANN202 - tf2_msgs' TFMessage class, or None
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        node.get_logger().warning("tf2_msgs is not installed: no TF published (install the ros2cli kit or ROS)")
        return None
    return TFMessage


def publish_static_transforms(node: Node, transforms: Iterable[tuple[str, str, np.ndarray]]) -> Publisher | None:
    """Latch ``(parent, child, parent_T_child)`` transforms on /tf_static; returns the publisher (None: no tf2_msgs)."""
    msgs = [transform_msg(T, parent, child, node.get_clock().now().to_msg()) for parent, child, T in transforms]
    try:
        from tf2_ros import StaticTransformBroadcaster
    except ImportError:
        StaticTransformBroadcaster = None  # noqa: N806
    if StaticTransformBroadcaster is not None:
        broadcaster = StaticTransformBroadcaster(node)
        broadcaster.sendTransform(msgs)
        return broadcaster.pub_tf
    TFMessage = _tf_message_type(node)  # noqa: N806
    if TFMessage is None:
        return None
    pub = node.create_publisher(TFMessage, TF_STATIC, TF_STATIC_QOS)
    pub.publish(TFMessage(transforms=msgs))
    return pub


class TransformPublisher:
    """Dynamic transforms on /tf (e.g. ``base → tool0`` at the bridge's status rate)."""

    def __init__(self, node: Node) -> None:
        TFMessage = _tf_message_type(node)  # noqa: N806
        self._type = TFMessage
        self.publisher = None if TFMessage is None else node.create_publisher(TFMessage, TF, TF_QOS)

    def publish(self, parent_T_child: np.ndarray, parent: str, child: str, stamp: Time) -> None:
        if self.publisher is not None:
            self.publisher.publish(self._type(transforms=[transform_msg(parent_T_child, parent, child, stamp)]))
