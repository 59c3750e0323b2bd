"""RealSense camera node: a pyrealsense2 drop-in for realsense-ros' topics (ros2_conventions.md §1).

Run as node ``camera`` in namespace ``camera`` so topics are ``/camera/camera/<stream>/...``. A plain
node rather than a lifecycle node, like realsense-ros' own: the camera is a pure source with nothing to
make safe on deactivate, and a plain node can be composed and started without a lifecycle manager
(which the PyPI ROS wheels do not ship). It opens the device in the constructor and fails fast with the
serials it found when the camera is absent.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from vs_common.core.errors import NotReadyError, VisualServoError
from vs_common.core.frames import camera_tree
from vs_common.ros.image import array_to_image, model_to_camera_info, sec_to_stamp
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config
from vs_common.ros.qos import IMAGE_PUB_QOS
from vs_common.ros.tf import publish_static_transforms

from vs_perception.core.realsense import (
    INFO_FRAMES,
    OPTICAL_FRAMES,
    ROS_PARAMETER_NAMES,
    RealSenseCamera,
    RealSenseConfig,
    parse_profile,
)

#: stream → (image topic, encoding); camera_info is published next to each image.
TOPICS = {"color": ("color/image_raw", "rgb8"), "depth": ("depth/image_rect_raw", "16UC1"),
          "aligned_depth": ("aligned_depth_to_color/image_raw", "16UC1"),
          "infra1": ("infra1/image_rect_raw", "mono8"), "infra2": ("infra2/image_rect_raw", "mono8")}
INFO_QOS = QoSProfile(depth=10)  # realsense-ros camera_info: DEFAULT (reliable, keep last 10)


class CameraNode(Node):
    """Publishes every enabled RealSense stream with its camera_info, one stamp per capture."""

    def __init__(self, device=None, **kwargs) -> None:  # noqa: ANN001 (an rs.device, for tests/demos)
        kwargs.setdefault("namespace", "camera")
        super().__init__("camera", **kwargs)
        # As realsense-ros: the IR projector switches at run time (ros2 param set /camera/camera
        # depth_module.emitter_enabled 0); streams and profiles are fixed once the device streams.
        self.config = declare_config(self, RealSenseConfig, names=ROS_PARAMETER_NAMES, dynamic=("emitter_enabled",),
                                     on_change=self._reconfigure)
        self.camera = RealSenseCamera(self.config, device=device)
        streams = list(self.config.enabled) + (["aligned_depth"] if self.config.align_depth else [])
        self._pubs = {s: (self.create_publisher(Image, "~/" + TOPICS[s][0], IMAGE_PUB_QOS),
                          self.create_publisher(CameraInfo, "~/" + TOPICS[s][0].rsplit("/", 1)[0] + "/camera_info",
                                                INFO_QOS)) for s in streams}
        baseline = self.camera.baseline_m if {"infra1", "infra2"} <= set(streams) else 0.0
        self._infos = {s: model_to_camera_info(self.camera.camera_model(s), frame_id=INFO_FRAMES[s],
                                               baseline_m=baseline if s == "infra2" else 0.0) for s in streams}
        self.camera.start()
        self._tf_static = self._publish_frames(streams)
        fps = max(parse_profile(self.config.color_profile)[2], parse_profile(self.config.depth_profile)[2])
        self._timer = self.create_timer(0.5 / fps, self._poll)
        self.get_logger().info(f"RealSense {self.camera.serial_no} streaming {streams}")

    def _publish_frames(self, streams: list[str]):  # noqa: ANN202 - the /tf_static publisher or None
        """realsense-ros' static TF: camera_link (here: at the colour camera) → camera_<s>_frame → optical."""
        try:
            placed = {s: self.camera.pose_in_color(s) for s in streams if s != "aligned_depth"}
        except VisualServoError as err:
            self.get_logger().warning(f"no camera TF published: {err}")
            return None
        return publish_static_transforms(self, camera_tree(placed))

    def _reconfigure(self, config: RealSenseConfig) -> None:
        try:
            self.camera.set_emitter(bool(config.emitter_enabled))
        except VisualServoError as err:
            self.get_logger().error(f"emitter not switched: {err}")
        self.config = config

    def _poll(self) -> None:
        try:
            cap = self.camera.read(timeout_s=0.0)
        except NotReadyError:
            return  # no complete capture yet; the next tick tries again
        stamp = sec_to_stamp(cap.stamp)
        for s, (img_pub, info_pub) in self._pubs.items():
            arr = getattr(cap, s)
            if arr is None:
                continue
            img_pub.publish(array_to_image(arr, TOPICS[s][1], stamp, OPTICAL_FRAMES[s]))
            info = self._infos[s]
            info.header.stamp = stamp  # stamped identically to its image
            info_pub.publish(info)

    def destroy_node(self) -> None:
        self.camera.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_node(CameraNode, args)


if __name__ == "__main__":
    main()
