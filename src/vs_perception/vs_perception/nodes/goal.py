"""Goal node: SetGoal service (image, current frame or goal folder) → latched /vs/perception/goal."""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from vs_common.core.errors import VisualServoError
from vs_common.core.frames import COLOR_OPTICAL_FRAME
from vs_common.core.topics import ALIGNED_DEPTH, COLOR_IMAGE, COLOR_INFO, GOAL, SET_GOAL
from vs_common.ros.image import (
    camera_info_to_model,
    check_image_matches_info,
    image_to_depth_m,
    image_to_rgb,
    stamp_to_sec,
)
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config
from vs_common.ros.qos import LATCHED_QOS, SENSOR_QOS

from vs_msgs.msg import Goal as GoalMsg
from vs_msgs.srv import SetGoal
from vs_perception.core.features import FeatureConfig, FeatureExtractor
from vs_perception.core.goal_store import GoalNodeConfig, GoalStore
from vs_perception.ros.conversions import goal_to_msg


class GoalNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("goal", **kwargs)
        cfg = declare_config(self, GoalNodeConfig, dynamic=("distance_prior_m", "detector", "save_dir"),
                             on_change=self._apply)
        self.store = GoalStore()
        self._apply(cfg)
        load_dir = cfg.goal_dir
        self._color: Image | None = None
        self._depth: Image | None = None
        self._info: CameraInfo | None = None
        self.pub = self.create_publisher(GoalMsg, GOAL, LATCHED_QOS)
        self.create_subscription(Image, COLOR_IMAGE, lambda m: setattr(self, "_color", m), SENSOR_QOS)
        self.create_subscription(Image, ALIGNED_DEPTH, lambda m: setattr(self, "_depth", m), SENSOR_QOS)
        self.create_subscription(CameraInfo, COLOR_INFO, lambda m: setattr(self, "_info", m),
                                 SENSOR_QOS)
        self.create_service(SetGoal, SET_GOAL, self._on_set_goal)
        if load_dir:
            try:
                self._activate(lambda: self.store.load(load_dir))
            except VisualServoError as err:
                self.get_logger().error(f"cannot load goal folder {load_dir!r}: {err}")

    def _apply(self, cfg: GoalNodeConfig) -> None:
        """Take the (validated) settings: the next goal uses them."""
        self.prior, self.save_dir = cfg.distance_prior_m, cfg.save_dir
        self.extractor = FeatureExtractor(FeatureConfig(detector=cfg.detector))

    def _activate(self, make) -> tuple[str, int]:
        goal = make()
        n = len(self.extractor(goal.image))
        if n < 4:
            raise VisualServoError(f"goal image has only {n} keypoints; pick a textured view")
        if self.save_dir:
            self.store.save(f"{self.save_dir}/{goal.goal_id}", goal.goal_id)
        self.pub.publish(goal_to_msg(goal, self._info.header.frame_id if self._info else COLOR_OPTICAL_FRAME,
                                     self.prior))
        self.get_logger().info(f"goal {goal.goal_id} active ({goal.source}, {n} keypoints)")
        return goal.goal_id, n

    def _current_frame(self, image: Image, depth: Image | None, info: CameraInfo | None):
        if info is None or info.width == 0:
            raise VisualServoError("no camera_info received yet for the goal image")
        check_image_matches_info(image, info)
        rgb = image_to_rgb(image)
        depth_m = None
        if depth is not None and depth.width > 0:
            check_image_matches_info(depth, info)
            depth_m = image_to_depth_m(depth)
        return rgb, camera_info_to_model(info), depth_m

    def _on_set_goal(self, req: SetGoal.Request, resp: SetGoal.Response) -> SetGoal.Response:
        try:
            if req.source == SetGoal.Request.SOURCE_CURRENT_FRAME:
                if self._color is None:
                    raise VisualServoError(f"no image received yet on {COLOR_IMAGE}")
                rgb, cam, depth = self._current_frame(self._color, self._depth, self._info)
                stamp = stamp_to_sec(self._color.header.stamp)
                goal_id, n = self._activate(lambda: self.store.capture(rgb, cam, depth, req.goal_id, stamp))
            elif req.source == SetGoal.Request.SOURCE_IMAGE:
                info = req.camera_info if np.any(np.asarray(req.camera_info.k)) else self._info
                rgb, cam, depth = self._current_frame(req.image, req.depth, info)
                goal_id, n = self._activate(lambda: self.store.capture(rgb, cam, depth, req.goal_id))
            elif req.source == SetGoal.Request.SOURCE_FILE:
                goal_id, n = self._activate(lambda: self.store.load(req.path, req.goal_id))
            else:
                raise VisualServoError(f"unknown source {req.source}; use 0 (image), 1 (current frame) or 2 (file)")
        except Exception as err:  # noqa: BLE001 - any failure is a refused goal, never a dead service
            text = str(err) if isinstance(err, VisualServoError) else f"internal error: {err!r}"
            self.get_logger().warn(f"SetGoal refused: {text}")
            resp.success, resp.goal_id, resp.message = False, "", text
            return resp
        resp.success, resp.goal_id, resp.num_keypoints = True, goal_id, n
        resp.message = f"goal {goal_id} set with {n} keypoints"
        return resp


def main(args: list[str] | None = None) -> None:
    spin_node(GoalNode, args)


if __name__ == "__main__":
    main()
