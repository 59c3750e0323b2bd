"""QoS profiles used across the graph (DESIGN.md §4, as realsense-ros and moveit_servo do)."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

#: Subscribers of sensor streams: best effort, keep last 5 (compatible with reliable publishers).
SENSOR_QOS: QoSProfile = qos_profile_sensor_data

#: Publishers of images (realsense-ros default): reliable, keep last 5.
IMAGE_PUB_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

#: Velocity commands: reliable, depth 1 (only the newest matters; staleness is judged by header stamp).
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

#: Status and goal topics: latched (transient local) so late joiners get the last value.
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: Observations between perception and controllers: reliable, shallow.
DATA_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

#: Subscribers that only ever use the newest message (a relative-depth map): reliable, keep last 1 (a message
#: that arrives while the callback is busy replaces the waiting one).
LATEST_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
