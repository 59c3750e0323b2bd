"""Simulated D435: renders the PyBullet cell at the robot's TCP pose × hand-eye and publishes the
realsense-ros topics (names, encodings, frame ids, camera_info) so the real driver is a drop-in.

The robot side (twist → pose) is the robot bridge's sim backend; this node only listens to
``/vs/robot/tcp_pose`` (base frame = the cell's world frame) and renders what the camera sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, InputError, VisualServoError
from vs_common.core.frames import COLOR_OPTICAL_FRAME, DEPTH_OPTICAL_FRAME, INFRA1_OPTICAL_FRAME, camera_tree
from vs_common.core.se3 import make_pose, pose_from_xyz_quat
from vs_common.core.topics import (
    ALIGNED_DEPTH,
    ALIGNED_DEPTH_INFO,
    COLOR_IMAGE,
    COLOR_INFO,
    DEPTH_IMAGE,
    DEPTH_INFO,
    INFRA1_IMAGE,
    INFRA1_INFO,
    INFRA2_IMAGE,
    INFRA2_INFO,
    TCP_POSE,
)
from vs_common.ros.geometry import pose_to_matrix
from vs_common.ros.image import array_to_image, metres_to_depth16, model_to_camera_info
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config
from vs_common.ros.qos import IMAGE_PUB_QOS, SENSOR_QOS
from vs_common.ros.tf import publish_static_transforms

from vs_sim.core.cells import CAMERA_RATE_HZ, make_cell
from vs_sim.core.scenes import ENVS, load_scenes


@dataclass(frozen=True)
class SimCameraConfig:
    """The simulated camera's parameters, all read-only (the cell and its scene are built at start-up)."""

    env: str = describe("Simulated environment: render or image", default="render")
    scene_id: str = describe("Scene to load ('' = the first)", default="")
    rate_hz: float = describe("Frame rate (Hz); rendering may cap it", default=CAMERA_RATE_HZ)
    hand_eye_xyz: tuple[float, ...] = describe(
        "Camera optical frame origin in the TCP frame (m); same as the bridge's", default=(0.0, 0.0, 0.05))
    hand_eye_quat_xyzw: tuple[float, ...] = describe(
        "Camera optical frame orientation in the TCP frame (x, y, z, w)", default=(0.0, 0.0, 0.0, 1.0))
    enable_depth: bool = describe("Publish depth", default=True)
    enable_infra: bool = describe("Publish the IR stereo pair (infra1/infra2)", default=False)

    def __post_init__(self) -> None:
        check_choice("env", self.env, ENVS)
        check_range("rate_hz", self.rate_hz, 0.0, lo_open=True)
        if len(self.hand_eye_xyz) != 3 or len(self.hand_eye_quat_xyzw) != 4:
            raise ConfigError(f"hand_eye_xyz / hand_eye_quat_xyzw must hold 3 / 4 numbers, got "
                              f"{list(self.hand_eye_xyz)} / {list(self.hand_eye_quat_xyzw)}")


class SimCameraNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("camera", namespace="/camera", **kwargs)
        cfg = declare_config(self, SimCameraConfig)  # read-only: the cell and its scene are built once, here
        env, scene_id, rate = cfg.env, cfg.scene_id, cfg.rate_hz
        xyz, quat = cfg.hand_eye_xyz, cfg.hand_eye_quat_xyzw
        self.enable_depth, self.enable_infra = cfg.enable_depth, cfg.enable_infra
        self.tcp_T_cam = pose_from_xyz_quat(xyz, quat)
        self.cell = make_cell(env)
        scenes = load_scenes(env, ids=[scene_id] if scene_id else None)
        if not scenes:
            raise VisualServoError(f"no scene {scene_id!r} in environment {env!r}")
        self.scene = scenes[0]
        self.cell.load_scene(self.scene)
        self.base_T_tcp: np.ndarray | None = None
        self.last_frame = None  # the newest rendered Frame (the in-process demo reads it)
        streams = ["color"] + (["depth"] if self.enable_depth else []) + (["ir"] if self.enable_infra else [])
        self.streams = tuple(streams)
        # As realsense-ros (publish_tf): camera_link → camera_<s>_frame → camera_<s>_optical_frame; the depth is
        # rendered from the colour camera, infra1 sits at colour and infra2 one baseline along its x.
        placed = {"color": np.eye(4), "depth": np.eye(4)}
        if self.enable_infra:
            placed.update(infra1=np.eye(4), infra2=make_pose(t=np.array([self.cell.baseline_m, 0.0, 0.0])))
        self._tf_static = publish_static_transforms(self, camera_tree(placed))
        pub = lambda t, topic: self.create_publisher(t, topic, IMAGE_PUB_QOS)  # noqa: E731
        self.pubs = {
            "color": pub(Image, COLOR_IMAGE), "color_info": pub(CameraInfo, COLOR_INFO),
            "aligned": pub(Image, ALIGNED_DEPTH), "aligned_info": pub(CameraInfo, ALIGNED_DEPTH_INFO),
            "depth": pub(Image, DEPTH_IMAGE), "depth_info": pub(CameraInfo, DEPTH_INFO),
            "ir1": pub(Image, INFRA1_IMAGE), "ir1_info": pub(CameraInfo, INFRA1_INFO),
            "ir2": pub(Image, INFRA2_IMAGE), "ir2_info": pub(CameraInfo, INFRA2_INFO),
        }
        # Rendering takes about a frame period: in its own group the pose keeps flowing meanwhile
        # (in one group, an always-ready render timer starves the subscription under a multi-threaded executor).
        self.create_subscription(PoseStamped, TCP_POSE, self._on_pose, SENSOR_QOS,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0 / rate, self._on_timer)

    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            self.base_T_tcp = pose_to_matrix(msg)
        except InputError:
            self.get_logger().warn("ignoring a non-finite or non-unit TCP pose", throttle_duration_sec=2.0)

    def camera_pose(self) -> np.ndarray | None:
        """w_T_c of the camera optical frame (world = robot base), or None before the first TCP pose."""
        return None if self.base_T_tcp is None else self.base_T_tcp @ self.tcp_T_cam

    def _on_timer(self) -> None:
        w_T_c = self.camera_pose()
        if w_T_c is None:
            self.get_logger().info(f"waiting for {TCP_POSE}", throttle_duration_sec=5.0)
            return
        # Stamped at capture, the pose the frame is rendered at (a camera's exposure time), not after the
        # ~0.1 s render: a twist carries this stamp, so the loop's measured delay includes the render (#20).
        stamp = self.get_clock().now().to_msg()
        try:
            frame = self.cell.render(w_T_c, streams=self.streams)
            self.publish_frame(frame, stamp)
            self.last_frame = frame
        except Exception as err:  # noqa: BLE001 - skip the frame; consumers time out on silence
            self.get_logger().error(f"frame not rendered: {err!r}", throttle_duration_sec=2.0)

    def publish_frame(self, frame, stamp) -> None:
        color_frame, depth_frame = COLOR_OPTICAL_FRAME, DEPTH_OPTICAL_FRAME
        cam = self.cell.camera
        self.pubs["color_info"].publish(model_to_camera_info(cam, stamp, color_frame))
        self.pubs["color"].publish(array_to_image(frame.color, "rgb8", stamp, color_frame))
        if frame.depth is not None and self.enable_depth:
            d16 = metres_to_depth16(frame.depth)
            # The simulated depth is rendered from the colour camera, so depth == aligned depth.
            self.pubs["aligned_info"].publish(model_to_camera_info(cam, stamp, color_frame))
            self.pubs["aligned"].publish(array_to_image(d16, "16UC1", stamp, color_frame))
            self.pubs["depth_info"].publish(model_to_camera_info(cam, stamp, depth_frame))
            self.pubs["depth"].publish(array_to_image(d16, "16UC1", stamp, depth_frame))
        if self.enable_infra and getattr(frame, "ir_left", None) is not None:
            ir, ir_frame = self.cell.ir_camera, INFRA1_OPTICAL_FRAME
            self.pubs["ir1_info"].publish(model_to_camera_info(ir, stamp, ir_frame))
            self.pubs["ir1"].publish(array_to_image(frame.ir_left, "mono8", stamp, ir_frame))
            # As realsense-ros: infra2 carries infra1's frame id and P[0, 3] = -fx * baseline.
            self.pubs["ir2_info"].publish(model_to_camera_info(ir, stamp, ir_frame, baseline_m=self.cell.baseline_m))
            self.pubs["ir2"].publish(array_to_image(frame.ir_right, "mono8", stamp, ir_frame))


def main(args: list[str] | None = None) -> None:
    spin_node(SimCameraNode, args)


if __name__ == "__main__":
    main()
