"""Camera node with real rclpy: realsense-ros topic names, encodings, frame ids, infra2 P, one stamp."""

from __future__ import annotations

import time

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2")
import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from vs_common.ros.qos import SENSOR_QOS  # noqa: E402
from vs_perception.nodes.camera_node import CameraNode  # noqa: E402
from vs_perception.testing.realsense import SoftwareD435  # noqa: E402

pytestmark = pytest.mark.ros
W, H, FPS = 64, 48, 30


def test_camera_node_publishes_realsense_ros_topics() -> None:
    rclpy.init()
    try:
        dev = SoftwareD435(W, H, FPS, fx=50.0, baseline_m=0.05)
        params = [Parameter("enable_infra1", value=True), Parameter("enable_infra2", value=True),
                  Parameter("align_depth.enable", value=True), Parameter("depth_module.emitter_enabled", value=0),
                  Parameter("rgb_camera.color_profile", value=f"{W}x{H}x{FPS}"),
                  Parameter("depth_module.depth_profile", value=f"{W}x{H}x{FPS}")]
        cam = CameraNode(device=dev.device, parameter_overrides=params)
        assert cam.camera.emitter_enabled is False
        sub = rclpy.create_node("listener")
        got: dict[str, object] = {}
        topics = {"/camera/camera/color/image_raw": Image, "/camera/camera/color/camera_info": CameraInfo,
                  "/camera/camera/depth/image_rect_raw": Image,
                  "/camera/camera/aligned_depth_to_color/image_raw": Image,
                  "/camera/camera/infra1/image_rect_raw": Image, "/camera/camera/infra2/image_rect_raw": Image,
                  "/camera/camera/infra2/camera_info": CameraInfo}
        for name, typ in topics.items():
            sub.create_subscription(typ, name, lambda m, n=name: got.setdefault(n, m), SENSOR_QOS)
        ex = SingleThreadedExecutor()
        ex.add_node(cam)
        ex.add_node(sub)
        k, deadline = 0, time.monotonic() + 10.0
        while len(got) < len(topics) and time.monotonic() < deadline:
            dev.push(1000.0 + k * 1000.0 / FPS, color=np.full((H, W, 3), 90, np.uint8),
                     depth_mm=np.full((H, W), 800, np.uint16), infra1=np.full((H, W), 7, np.uint8),
                     infra2=np.full((H, W), 9, np.uint8))
            k += 1
            ex.spin_once(timeout_sec=0.02)
        assert set(got) == set(topics), f"missing {set(topics) - set(got)}"
        color = got["/camera/camera/color/image_raw"]
        assert color.encoding == "rgb8" and color.header.frame_id == "camera_color_optical_frame"
        assert got["/camera/camera/depth/image_rect_raw"].encoding == "16UC1"
        assert got["/camera/camera/depth/image_rect_raw"].header.frame_id == "camera_depth_optical_frame"
        aligned = got["/camera/camera/aligned_depth_to_color/image_raw"]
        assert aligned.header.frame_id == "camera_color_optical_frame" and aligned.encoding == "16UC1"
        ir2 = got["/camera/camera/infra2/image_rect_raw"]
        assert ir2.encoding == "mono8" and ir2.header.frame_id == "camera_infra2_optical_frame"
        info2 = got["/camera/camera/infra2/camera_info"]
        assert info2.header.frame_id == "camera_infra1_optical_frame"
        assert info2.p[3] == pytest.approx(-50.0 * 0.05, rel=1e-5)
        assert got["/camera/camera/color/camera_info"].header.stamp == color.header.stamp
        ex.shutdown()
        cam.destroy_node()
        sub.destroy_node()
    finally:
        rclpy.try_shutdown()


def test_emitter_switches_at_run_time_and_profiles_are_read_only(ros_context) -> None:
    """As realsense-ros: ``ros2 param set /camera/camera depth_module.emitter_enabled 0`` switches the projector."""
    dev = SoftwareD435(W, H, FPS)
    cam = CameraNode(device=dev.device, context=ros_context, parameter_overrides=[
        Parameter("rgb_camera.color_profile", value=f"{W}x{H}x{FPS}"),
        Parameter("depth_module.depth_profile", value=f"{W}x{H}x{FPS}")])
    try:
        assert cam.get_fully_qualified_name() == "/camera/camera" and cam.camera.emitter_enabled is True
        assert cam.set_parameters([Parameter("depth_module.emitter_enabled", value=0)])[0].successful
        assert cam.camera.emitter_enabled is False and cam.config.emitter_enabled == 0
        bad = cam.set_parameters([Parameter("depth_module.emitter_enabled", value=3)])[0]
        assert not bad.successful and "choose one of [0, 1]" in bad.reason and cam.camera.emitter_enabled is False
        for name, value in (("rgb_camera.color_profile", "1280x720x30"), ("align_depth.enable", True),
                            ("enable_infra1", True)):
            res = cam.set_parameters([Parameter(name, value=value)])[0]
            assert not res.successful and "read-only" in res.reason.lower(), name
    finally:
        cam.destroy_node()


def test_static_tf_from_the_device_extrinsics(ros_context, ros_executor, spin) -> None:
    tf2_msgs = pytest.importorskip("tf2_msgs.msg")
    from vs_common.ros.tf import TF_STATIC_QOS

    dev = SoftwareD435(W, H, FPS, baseline_m=0.05, color_offset_m=0.015)
    cam = CameraNode(device=dev.device, context=ros_context, parameter_overrides=[
        Parameter("enable_infra1", value=True), Parameter("enable_infra2", value=True),
        Parameter("rgb_camera.color_profile", value=f"{W}x{H}x{FPS}"),
        Parameter("depth_module.depth_profile", value=f"{W}x{H}x{FPS}")])
    probe = rclpy.create_node("tf_probe", context=ros_context)
    got: list = []
    probe.create_subscription(tf2_msgs.TFMessage, "/tf_static", got.append, TF_STATIC_QOS)
    for n in (cam, probe):
        ros_executor.add_node(n)
    assert spin(ros_executor, lambda: bool(got), timeout=10.0)
    tf = {(t.header.frame_id, t.child_frame_id): t.transform.translation for m in got for t in m.transforms}
    expect = {"color": 0.0, "depth": 0.015, "infra1": 0.015, "infra2": 0.065}  # optical x = body -y
    for s, x_opt in expect.items():
        t = tf[("camera_link", f"camera_{s}_frame")]
        assert np.allclose([t.x, t.y, t.z], [0.0, -x_opt, 0.0], atol=1e-6), s
        assert (f"camera_{s}_frame", f"camera_{s}_optical_frame") in tf
