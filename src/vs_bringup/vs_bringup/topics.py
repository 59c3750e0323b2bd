"""The topics of a servo run: types and QoS classes, shared by the recorder and the launch logic.

Plain data only (no rclpy), so launch files, the ``ros2 bag record`` command line and the in-process
:class:`~vs_bringup.recorder.RunRecorder` all record the same run from one list. The names are the graph's
catalogue, :mod:`vs_common.core.topics` (every node takes them from there), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.topics import (
    ALIGNED_DEPTH,
    CMD_TWIST,
    COLOR_IMAGE,
    COLOR_INFO,
    CORRESPONDENCES,
    DIAGNOSTICS,
    GOAL,
    GOAL_TCP_POSE,
    IMAGE_TOPICS,
    INFRA1_IMAGE,
    INFRA2_IMAGE,
    JOINT_STATES,
    MARKERS,
    MATCHES_IMAGE,
    RELATIVE_DEPTH,
    ROBOT_STATUS,
    SERVO_STATUS,
    TCP_POSE,
)
from vs_controllers.core.pipelines import Input, get_pipeline

#: QoS classes of the graph (DESIGN.md §4): sensor streams, reliable data/commands, latched status/goal.
QOS_CLASSES = ("sensor", "reliable", "latched")

__all__ = ["ALIGNED_DEPTH", "CMD_TWIST", "COLOR_IMAGE", "COLOR_INFO", "CORRESPONDENCES", "DIAGNOSTICS", "GOAL",
           "GOAL_TCP_POSE", "IMAGE_TOPICS", "INFRA1_IMAGE", "INFRA2_IMAGE", "JOINT_STATES", "MARKERS",
           "MATCHES_IMAGE", "QOS_CLASSES", "RELATIVE_DEPTH", "ROBOT_STATUS", "SERVO_STATUS", "TCP_POSE", "TopicSpec",
           "debug_topics", "input_topics", "run_topics"]


@dataclass(frozen=True)
class TopicSpec:
    """One recorded topic."""

    name: str = describe("Absolute topic name.")
    type: str = describe("ROS type as 'pkg/msg/Name' (the rosbag2 spelling).")
    qos: str = describe(f"QoS class the publisher offers, one of {list(QOS_CLASSES)}.", default="reliable")
    max_rate_hz: float = describe("Record at most this often (Hz); 0 records every message.", default=0.0)

    def __post_init__(self) -> None:
        if not self.name.startswith("/"):
            raise ValueError(f"topic name must be absolute, got {self.name!r}")
        parts = self.type.split("/")
        if len(parts) != 3 or parts[1] != "msg" or not all(parts):
            raise ValueError(f"topic type must look like 'pkg/msg/Name', got {self.type!r}")
        check_choice("qos", self.qos, QOS_CLASSES)
        check_range("max_rate_hz", self.max_rate_hz, 0.0)


def input_topics(what: Input, image_rate_hz: float = 2.0) -> list[TopicSpec]:
    """The topics an input of a pipeline (:class:`~vs_controllers.core.pipelines.Input`) adds to a run."""
    image = lambda name: TopicSpec(name, "sensor_msgs/msg/Image", "sensor", max_rate_hz=image_rate_hz)  # noqa: E731
    return {
        Input.CORRESPONDENCES: [TopicSpec(CORRESPONDENCES, "vs_msgs/msg/Correspondences", "reliable"),
                                image(MATCHES_IMAGE)],
        Input.STEREO_IR: [image(INFRA1_IMAGE), image(INFRA2_IMAGE)],
        Input.RELATIVE_DEPTH: [image(RELATIVE_DEPTH)],
        Input.RENDERED_GOAL: [],
    }[what]


def debug_topics(pipeline: str) -> list[TopicSpec]:
    """Visualisation topics of ``pipeline`` recorded by ``record:=true`` (the observer's rviz markers)."""
    spec = get_pipeline(pipeline)
    if spec.needs(Input.CORRESPONDENCES):
        return [TopicSpec(MARKERS, "visualization_msgs/msg/MarkerArray", "reliable")]
    return []


def run_topics(pipeline: str = "ibvs", image_rate_hz: float = 2.0, with_depth: bool = False,
               with_color: bool = True) -> list[TopicSpec]:
    """The topics that make up a servo run of ``pipeline``, as recorded by the demo and by ``record:=true``.

    Args:
        pipeline: a registered pipeline; its spec's inputs add their topics (:func:`input_topics`).
        image_rate_hz: rate cap of the image topics (0 = every frame); the small topics are always complete.
        with_depth: also record the aligned depth image (large; off by default).
        with_color: record the raw colour image; the correspondence pipelines' debug matches image already
            shows the current frame, so a small bag can leave it out (pipelines without it always record it).

    Returns:
        Topic specs, small topics first.
    """
    spec = get_pipeline(pipeline)
    specs = [
        TopicSpec(GOAL, "vs_msgs/msg/Goal", "latched"),
        TopicSpec(GOAL_TCP_POSE, "geometry_msgs/msg/PoseStamped", "latched"),
        TopicSpec(SERVO_STATUS, "vs_msgs/msg/ServoStatus", "latched"),
        TopicSpec(CMD_TWIST, "geometry_msgs/msg/TwistStamped", "reliable"),
        TopicSpec(ROBOT_STATUS, "vs_msgs/msg/RobotStatus", "latched"),
        TopicSpec(TCP_POSE, "geometry_msgs/msg/PoseStamped", "reliable"),
        TopicSpec(JOINT_STATES, "sensor_msgs/msg/JointState", "reliable"),
        TopicSpec(COLOR_INFO, "sensor_msgs/msg/CameraInfo", "sensor", max_rate_hz=1.0),
    ]
    if spec.needs(Input.CORRESPONDENCES):
        specs += input_topics(Input.CORRESPONDENCES, image_rate_hz)
    if with_color or not spec.needs(Input.CORRESPONDENCES):
        specs.append(TopicSpec(COLOR_IMAGE, "sensor_msgs/msg/Image", "sensor", max_rate_hz=image_rate_hz))
    for what in spec.inputs:
        if what is not Input.CORRESPONDENCES:
            specs += input_topics(what, image_rate_hz)
    if with_depth:
        specs.append(TopicSpec(ALIGNED_DEPTH, "sensor_msgs/msg/Image", "sensor", max_rate_hz=image_rate_hz))
    return specs
