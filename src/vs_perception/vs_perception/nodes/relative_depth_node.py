"""Relative depth node: camera → ``/vs/perception/relative_depth``, goal → ``.../goal_relative_depth`` (32FC1).

Output convention (see :mod:`vs_perception.core.relative_depth`): Depth-PC's normalised relative depth in
[0, 1], larger = farther, NaN unknown, in the colour image's pixel grid; never metric, never on a
``depth/`` topic. ``source`` picks Depth Anything V2 (colour image) or a metric source normalised the same
way: ``aligned`` (the camera's depth aligned to colour) or ``sgbm`` (the IR pair through StereoSGBM,
resampled into the colour grid). With ``fallback`` set, missing Depth Anything weights switch to it.

Asynchronous: the work runs on a :class:`~vs_common.core.worker.LatestWorker`, so frames that arrive while
one is computed are dropped (the newest waits) and no callback blocks. Each map is stamped with its
source image's stamp. The goal image's map (from the latched goal message; ``sgbm``: the first IR pair
after the goal) is published latched, stamped with the goal's stamp (``sgbm``: that pair's).
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from vs_common.core.errors import VisualServoError, WeightsNotFoundError
from vs_common.core.topics import (
    ALIGNED_DEPTH,
    COLOR_IMAGE,
    COLOR_INFO,
    GOAL,
    GOAL_RELATIVE_DEPTH,
    INFRA1_IMAGE,
    INFRA2_IMAGE,
    INFRA2_INFO,
    RELATIVE_DEPTH,
)
from vs_common.core.worker import LatestWorker
from vs_common.ros.image import array_to_image, camera_info_to_model, image_to_array, image_to_depth_m, image_to_rgb
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config
from vs_common.ros.qos import IMAGE_PUB_QOS, LATCHED_QOS, LATEST_QOS, SENSOR_QOS

from vs_msgs.msg import Goal as GoalMsg
from vs_perception.core.relative_depth import RelativeDepthEstimator, RelativeDepthNodeConfig, metric_to_relative
from vs_perception.core.stereo_depth import StereoDepthEstimator, stereo_depth_in_color


class RelativeDepthNode(Node):
    """Publishes relative depth of the newest frame and of the goal image (module docstring)."""

    def __init__(self, estimator: RelativeDepthEstimator | None = None, **kwargs) -> None:
        super().__init__("relative_depth", **kwargs)
        self.config = cfg = declare_config(self, RelativeDepthNodeConfig)
        self.source, self.estimator = cfg.source, estimator
        if cfg.source == "depth_anything" and estimator is None:
            try:
                self.estimator = RelativeDepthEstimator.from_pretrained(cfg.model)
            except WeightsNotFoundError as err:
                if cfg.fallback == "none":
                    raise
                self.get_logger().warning(f"{err} -- falling back to source '{cfg.fallback}'")
                self.source = cfg.fallback
        self._worker = LatestWorker(self._on_error, name="relative_depth")
        self._pub = self.create_publisher(Image, RELATIVE_DEPTH, IMAGE_PUB_QOS)
        self._pub_goal = self.create_publisher(Image, GOAL_RELATIVE_DEPTH, LATCHED_QOS)
        self._latency: list[float] = []
        self._color_info: CameraInfo | None = None
        self._left: Image | None = None
        self._info2: CameraInfo | None = None
        self._goal_pending = False
        self.create_subscription(GoalMsg, GOAL, self._on_goal, LATCHED_QOS)
        if self.source == "depth_anything":
            self.create_subscription(Image, COLOR_IMAGE, self._submit(self._from_color), LATEST_QOS)
        elif self.source == "aligned":
            self.create_subscription(Image, ALIGNED_DEPTH, self._submit(self._from_depth), LATEST_QOS)
        else:
            self._stereo = StereoDepthEstimator()
            sub = self.create_subscription
            sub(CameraInfo, COLOR_INFO, lambda m: setattr(self, "_color_info", m), SENSOR_QOS)
            sub(CameraInfo, INFRA2_INFO, lambda m: setattr(self, "_info2", m), SENSOR_QOS)
            sub(Image, INFRA1_IMAGE, lambda m: setattr(self, "_left", m), SENSOR_QOS)
            sub(Image, INFRA2_IMAGE, self._on_right, SENSOR_QOS)

    def destroy_node(self) -> None:
        self._worker.close()
        super().destroy_node()

    def _on_error(self, err: BaseException) -> None:
        log = self.get_logger()
        (log.warning if isinstance(err, VisualServoError) else log.error)(
            f"relative depth frame dropped: {err!r}", throttle_duration_sec=2.0)

    def _submit(self, compute):  # noqa: ANN001, ANN202 - msg handler → worker job
        return lambda msg: self._worker.submit(lambda: self._publish(compute(msg), msg.header))

    # -- per source: message(s) → (H, W) relative depth in the colour grid ------------------------------------
    def _from_color(self, msg: Image) -> np.ndarray:
        return self.estimator.predict(image_to_rgb(msg)).depth  # type: ignore[union-attr]

    def _from_depth(self, msg: Image) -> np.ndarray:
        return metric_to_relative(image_to_depth_m(msg))

    def _on_right(self, msg: Image) -> None:
        left, info2, color = self._left, self._info2, self._color_info
        if left is None or info2 is None or color is None or left.header.stamp != msg.header.stamp:
            return  # wait for infra1 of the same capture and both camera_infos
        goal = self._goal_pending
        self._goal_pending = False

        def job() -> None:
            ir, cam = camera_info_to_model(info2), camera_info_to_model(color)
            baseline = -float(info2.p[3]) / float(info2.p[0])
            pair = image_to_array(left, ("mono8",)), image_to_array(msg, ("mono8",))
            z = stereo_depth_in_color(self._stereo, *pair, ir.K, baseline, cam.K, (cam.width, cam.height),
                                      np.asarray(self.config.color_t_ir))
            rel = metric_to_relative(z)
            self._publish(rel, Header(stamp=left.header.stamp, frame_id=color.header.frame_id))
            if goal:
                self._publish(rel, Header(stamp=left.header.stamp, frame_id=color.header.frame_id), goal=True)
        self._worker.submit(job, priority=goal)

    def _on_goal(self, msg: GoalMsg) -> None:
        if self.source == "sgbm":  # no IR pair in a goal message: the first pair after it stands for it
            self._goal_pending = True
            return
        if self.source == "aligned" and msg.depth.width == 0:
            self.get_logger().error(f"goal {msg.goal_id!r} has no depth image: no goal relative depth")
            return
        compute = self._from_color if self.source == "depth_anything" else self._from_depth
        image = msg.image if self.source == "depth_anything" else msg.depth
        self._worker.submit(lambda: self._publish(compute(image), msg.header, goal=True), priority=True)

    def _publish(self, depth: np.ndarray, header: Header, goal: bool = False) -> None:
        out = array_to_image(np.asarray(depth, np.float32), "32FC1", header.stamp, header.frame_id)
        (self._pub_goal if goal else self._pub).publish(out)
        if goal:
            self.get_logger().info("published the goal image's relative depth")
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        self._latency.append(now - (header.stamp.sec + 1e-9 * header.stamp.nanosec))
        if self.config.log_every and len(self._latency) >= self.config.log_every:
            self.get_logger().info(f"relative depth ({self.source}): mean image-to-map latency "
                                   f"{1e3 * float(np.mean(self._latency)):.1f} ms over {len(self._latency)} maps, "
                                   f"{self._worker.dropped} frames dropped so far")
            self._latency.clear()


def main(args: list[str] | None = None) -> None:
    spin_node(RelativeDepthNode, args)


if __name__ == "__main__":
    main()
