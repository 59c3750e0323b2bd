"""Observer node: colour image (+ aligned depth) + goal → Correspondences, debug match image and markers.

Goal keypoints are computed once per goal; the match image and markers are drawn only while someone
subscribes. Malformed input is logged (throttled) and dropped; the controller's input watchdog then
turns silence into a zero twist.
"""

from __future__ import annotations

import math

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray
from vs_common.core.errors import VisualServoError
from vs_common.core.topics import (
    ALIGNED_DEPTH,
    COLOR_IMAGE,
    COLOR_INFO,
    CORRESPONDENCES,
    GOAL,
    MARKERS,
    MATCHES_IMAGE,
    SET_GOAL,
)
from vs_common.ros.image import (
    array_to_image,
    check_image_matches_info,
    image_to_depth_m,
    image_to_rgb,
    stamp_to_sec,
)
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config, declare_read_only
from vs_common.ros.qos import DATA_QOS, IMAGE_PUB_QOS, LATCHED_QOS, SENSOR_QOS

from vs_msgs.msg import Correspondences as CorrespondencesMsg
from vs_msgs.msg import Goal as GoalMsg
from vs_perception.core.observer import Observer, ObserverConfig
from vs_perception.core.viz import correspondence_markers, draw_matches
from vs_perception.ros.conversions import (
    correspondences_to_msg,
    markers_to_msg,
    msg_to_goal,
)

# Only the newest frame matters: a slow observer must skip frames, never queue them (keep last 1). Reliable, not
# best effort: between processes a 640x480 rgb8 frame exceeds Fast DDS' shared-memory segment and goes as UDP
# fragments, and a best-effort reader lost 43 % of the sim camera's frames on an idle machine (50 of 88 in 10 s)
# and seconds at a time under load (the controller's 2 s input timeout ended ros2 launch runs); reliable repairs
# lost fragments and, keep-last 1, still never queues.
LATEST_FRAME_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class ObserverNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("observer", **kwargs)
        self.use_depth = declare_read_only(self, "use_depth", True,
                                           "Sample the aligned depth image at matched keypoints (current_depth)")
        # Every observer setting may change at run time (ros2 param set /observer features.detector orb): see
        # _reconfigure.
        self.observer = Observer(declare_config(self, ObserverConfig, dynamic=True, on_change=self._reconfigure))
        self._goal = None
        self._goal_stamp = 0.0
        self._prior = math.nan
        self._info: CameraInfo | None = None
        self._depth: Image | None = None
        self.pub = self.create_publisher(CorrespondencesMsg, CORRESPONDENCES, DATA_QOS)
        self.pub_matches = self.create_publisher(Image, MATCHES_IMAGE, IMAGE_PUB_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, MARKERS, DATA_QOS)
        self.create_subscription(GoalMsg, GOAL, self._on_goal, LATCHED_QOS)
        self.create_subscription(CameraInfo, COLOR_INFO, lambda m: setattr(self, "_info", m),
                                 SENSOR_QOS)
        self.create_subscription(Image, ALIGNED_DEPTH, lambda m: setattr(self, "_depth", m), LATEST_FRAME_QOS)
        self.create_subscription(Image, COLOR_IMAGE, self._on_image, LATEST_FRAME_QOS)

    def _on_goal(self, msg: GoalMsg) -> None:
        try:
            goal, self._prior = msg_to_goal(msg)
            obs = self.observer.set_goal(goal.image, goal.depth, goal.camera, goal.goal_id)
        except VisualServoError as err:
            self.get_logger().error(f"goal {msg.goal_id!r} rejected: {err}")
            return
        except Exception as err:  # noqa: BLE001 - a library error must not take the observer down
            self.get_logger().error(f"goal {msg.goal_id!r} rejected (internal error): {err!r}")
            return
        self._goal, self._goal_stamp = goal, stamp_to_sec(msg.header.stamp)
        self.get_logger().info(f"goal {goal.goal_id}: {len(obs)} keypoints")

    def _reconfigure(self, config: ObserverConfig) -> None:
        """A new observer for the new settings; the current goal is re-detected with them (same goal id)."""
        observer = Observer(config)
        if self._goal is not None:
            g = self._goal
            try:
                observer.set_goal(g.image, g.depth, g.camera, g.goal_id)
            except VisualServoError as err:
                self._goal = None  # no correspondences → the controller's input watchdog gives a zero twist
                self.get_logger().error(f"goal {g.goal_id!r} dropped: not usable with the new settings ({err}); "
                                        "set a new goal")
        self.observer = observer

    def _on_image(self, msg: Image) -> None:
        try:
            self._observe(msg)
        except VisualServoError as err:
            self.get_logger().warn(f"frame dropped: {err}", throttle_duration_sec=2.0)
        except Exception as err:  # noqa: BLE001 - drop the frame; the controller's input watchdog goes to zero
            self.get_logger().error(f"frame dropped (internal error): {err!r}", throttle_duration_sec=2.0)

    def _observe(self, msg: Image) -> None:
        if self._goal is None:
            raise VisualServoError(f"no goal yet (call {SET_GOAL})")
        if self._info is not None:
            check_image_matches_info(msg, self._info)
        rgb = image_to_rgb(msg)
        depth = None
        if self.use_depth and self._depth is not None and self._depth.header.stamp == msg.header.stamp:
            depth = image_to_depth_m(self._depth)
        obs = self.observer.observe(rgb, depth, stamp=stamp_to_sec(msg.header.stamp))
        obs.frame_id = msg.header.frame_id or obs.frame_id
        if math.isfinite(self._prior):
            obs.info["distance_prior_m"] = self._prior  # the goal's d, for CNS-style controllers
        out = correspondences_to_msg(obs, goal_stamp=self._goal_stamp)
        self.pub.publish(out)
        if self.pub_matches.get_subscription_count() > 0:
            canvas = draw_matches(self._goal.image, rgb, obs)
            self.pub_matches.publish(array_to_image(canvas, "rgb8", msg.header.stamp, msg.header.frame_id))
        if self.pub_markers.get_subscription_count() > 0:
            prior = self._prior if math.isfinite(self._prior) else 1.0
            self.pub_markers.publish(markers_to_msg(correspondence_markers(obs, default_depth_m=prior),
                                                    msg.header.stamp, out.header.frame_id))


def main(args: list[str] | None = None) -> None:
    spin_node(ObserverNode, args)


if __name__ == "__main__":
    main()
