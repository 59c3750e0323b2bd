"""Relative depth node: colour image → ``/vs/perception/relative_depth`` (32FC1, unitless).

Output convention (see :mod:`vs_perception.core.relative_depth`): with ``output: depth_pc`` the image is
Depth-PC's normalised relative depth in [0, 1], larger = farther, NaN unknown; it is never metric and
never goes on a ``depth/`` topic. ``source`` picks Depth Anything V2 or a metric fallback normalised the
same way: ``camera`` (aligned depth, 16UC1/32FC1) or ``stereo`` (infra1/infra2 through StereoSGBM; output
in ``camera_infra1_optical_frame``). With ``fallback`` set, missing Depth Anything weights switch to it.
Each output is stamped like its input; latency is logged every ``log_every`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from vs_common.core.config import check_choice, describe
from vs_common.core.errors import VisualServoError, WeightsNotFoundError
from vs_common.core.topics import ALIGNED_DEPTH, COLOR_IMAGE, INFRA1_IMAGE, INFRA2_IMAGE, INFRA2_INFO, RELATIVE_DEPTH
from vs_common.ros.image import array_to_image, check_image_matches_info, image_to_array, image_to_depth_m, image_to_rgb
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config
from vs_common.ros.qos import IMAGE_PUB_QOS, SENSOR_QOS

from vs_perception.core.relative_depth import RelativeDepthConfig, RelativeDepthEstimator, metric_to_relative
from vs_perception.core.stereo_depth import StereoDepthEstimator

SOURCES = ("depth_anything", "camera", "stereo")


@dataclass(frozen=True)
class RelativeDepthNodeConfig:
    """Which relative-depth source the node runs."""

    source: str = describe("'depth_anything' (colour → DA V2), 'camera' (aligned depth), 'stereo' (IR SGBM).",
                           default="depth_anything")
    fallback: str = describe("Source used when Depth Anything weights are missing: 'camera', 'stereo' or "
                             "'none' (fail).", default="camera")
    log_every: int = describe("Log the mean latency every N frames (0 = never).", default=30)

    def __post_init__(self) -> None:
        check_choice("source", self.source, SOURCES)
        check_choice("fallback", self.fallback, ("none", "camera", "stereo"))


class RelativeDepthNode(Node):
    """Subscribes to the camera, publishes relative depth (32FC1) stamped like the input."""

    def __init__(self, estimator: RelativeDepthEstimator | None = None, **kwargs) -> None:
        super().__init__("relative_depth", **kwargs)
        self.config = declare_config(self, RelativeDepthNodeConfig)
        source = self.config.source
        self.estimator = estimator
        if source == "depth_anything" and estimator is None:
            try:
                self.estimator = RelativeDepthEstimator.from_pretrained(declare_config(self, RelativeDepthConfig,
                                                                                       prefix="model."))
            except WeightsNotFoundError as err:
                if self.config.fallback == "none":
                    raise
                self.get_logger().warning(f"{err} -- falling back to source '{self.config.fallback}'")
                source = self.config.fallback
        self.source = source
        self._pub = self.create_publisher(Image, RELATIVE_DEPTH, IMAGE_PUB_QOS)
        self._latency: list[float] = []
        if source == "depth_anything":
            self.create_subscription(Image, COLOR_IMAGE, self._on_color, SENSOR_QOS)
        elif source == "camera":
            self.create_subscription(Image, ALIGNED_DEPTH, self._on_depth,
                                     SENSOR_QOS)
        else:
            self._stereo, self._left, self._info2 = StereoDepthEstimator(), None, None
            self.create_subscription(Image, INFRA1_IMAGE, self._on_left, SENSOR_QOS)
            self.create_subscription(Image, INFRA2_IMAGE, self._on_right, SENSOR_QOS)
            self.create_subscription(CameraInfo, INFRA2_INFO, lambda m: setattr(self, "_info2", m), SENSOR_QOS)

    def _publish(self, depth: np.ndarray, header, latency_s: float) -> None:  # noqa: ANN001 (std_msgs/Header)
        self._pub.publish(array_to_image(depth.astype(np.float32), "32FC1", header.stamp, header.frame_id))
        self._latency.append(latency_s)
        if self.config.log_every and len(self._latency) >= self.config.log_every:
            self.get_logger().info(f"relative depth ({self.source}): mean latency "
                                   f"{1e3 * float(np.mean(self._latency)):.1f} ms over {len(self._latency)} frames")
            self._latency.clear()

    def _guard(self, fn, *args) -> None:  # noqa: ANN001
        try:
            fn(*args)
        except VisualServoError as err:
            self.get_logger().warning(str(err), throttle_duration_sec=2.0)

    def _on_color(self, msg: Image) -> None:
        def run() -> None:
            rgb = image_to_rgb(msg)
            res = self.estimator.predict(rgb)
            self._publish(res.depth, msg.header, res.total_s)
        self._guard(run)

    def _on_depth(self, msg: Image) -> None:
        def run() -> None:
            t0 = self.get_clock().now()
            depth = image_to_depth_m(msg)
            rel = metric_to_relative(depth)
            self._publish(rel, msg.header, (self.get_clock().now() - t0).nanoseconds * 1e-9)
        self._guard(run)

    def _on_left(self, msg: Image) -> None:
        self._left = msg

    def _on_right(self, msg: Image) -> None:
        def run() -> None:
            left, info = self._left, self._info2
            if left is None or info is None or left.header.stamp != msg.header.stamp:
                return  # wait for the infra1 image of the same capture and infra2's camera_info
            check_image_matches_info(msg, info)
            t0 = self.get_clock().now()
            fx, baseline = float(info.p[0]), -float(info.p[3]) / float(info.p[0])
            z = self._stereo.depth(image_to_array(left, ("mono8",)), image_to_array(msg, ("mono8",)), fx, baseline)
            self._publish(metric_to_relative(z), left.header, (self.get_clock().now() - t0).nanoseconds * 1e-9)
        self._guard(run)


def main(args: list[str] | None = None) -> None:
    spin_node(RelativeDepthNode, args)


if __name__ == "__main__":
    main()
