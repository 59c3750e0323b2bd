"""geometry_msgs Pose / Twist ↔ numpy: the pose and twist conversions every package shares.

Decoders read fields only, so they take rclpy messages and rosbags' dataclasses alike, and the message
classes are imported by the encoders: the run report decodes a bag on a machine without ROS. Every
function validates its input and raises :class:`InputError` with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial.transform import Rotation

from vs_common.core.errors import InputError
from vs_common.core.se3 import pose_from_xyz_quat
from vs_common.ros.image import stamp_to_sec

if TYPE_CHECKING:
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Pose, PoseStamped, Twist, TwistStamped

#: How far from 1 a pose's quaternion norm may be before the pose is refused.
UNIT_QUATERNION_TOL = 1e-3


def twist_to_array(msg: Twist | TwistStamped | Any) -> np.ndarray:
    """Twist (or TwistStamped) → (6,) (vx, vy, vz, wx, wy, wz) in m/s and rad/s. Values are not checked here."""
    t = getattr(msg, "twist", msg)
    return np.array([t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z], dtype=np.float64)


def twist_stamped_to_array(msg: TwistStamped) -> tuple[np.ndarray, str, float]:
    """TwistStamped → ((6,) twist, frame_id, stamp in s). Values are not checked here; the stamp is."""
    return twist_to_array(msg), msg.header.frame_id, stamp_to_sec(msg.header.stamp)


def array_to_twist(v: np.ndarray) -> Twist:
    """(6,) twist → geometry_msgs/Twist."""
    from geometry_msgs.msg import Twist

    v = np.asarray(v, dtype=np.float64).reshape(6)
    msg = Twist()
    msg.linear.x, msg.linear.y, msg.linear.z = (float(x) for x in v[:3])
    msg.angular.x, msg.angular.y, msg.angular.z = (float(x) for x in v[3:])
    return msg


def pose_to_matrix(msg: Pose | PoseStamped | Any) -> np.ndarray:
    """Pose (or PoseStamped) → (4, 4) transform.

    Raises:
        InputError: a non-finite value, or a quaternion whose norm is off 1 by more than
            :data:`UNIT_QUATERNION_TOL` (a zero quaternion, a pose nobody filled in).
    """
    pose = getattr(msg, "pose", msg)
    p, q = pose.position, pose.orientation
    xyz, quat = [p.x, p.y, p.z], [q.x, q.y, q.z, q.w]
    if not np.all(np.isfinite(xyz + quat)) or abs(np.linalg.norm(quat) - 1.0) > UNIT_QUATERNION_TOL:
        raise InputError(f"pose must be finite with a unit quaternion, got position {xyz}, quaternion {quat}")
    return pose_from_xyz_quat(xyz, quat)


def matrix_to_pose_stamped(T: np.ndarray, stamp: Time, frame_id: str) -> PoseStamped:
    """(4, 4) transform → PoseStamped (quaternion x, y, z, w)."""
    from geometry_msgs.msg import Pose, PoseStamped
    from std_msgs.msg import Header

    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"pose must be a finite 4x4 matrix, got shape {T.shape}")
    try:
        q = Rotation.from_matrix(T[:3, :3]).as_quat()
    except ValueError as err:  # a singular "rotation"
        raise InputError(f"pose rotation is not a rotation matrix: {err}") from err
    if not np.all(np.isfinite(q)):
        raise InputError("pose rotation is not a rotation matrix")
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(x) for x in T[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(x) for x in q)
    return PoseStamped(header=Header(stamp=stamp, frame_id=frame_id), pose=pose)
