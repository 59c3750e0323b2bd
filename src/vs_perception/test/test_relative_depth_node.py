"""Relative depth node with real rclpy: colour in, 32FC1 out with the input's stamp; bad input is dropped."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy

transformers = pytest.importorskip("transformers")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vs_common.core.errors import ConfigError, WeightsNotFoundError  # noqa: E402
from vs_common.ros.image import array_to_image, image_to_array, metres_to_depth16, sec_to_stamp  # noqa: E402
from vs_common.ros.qos import IMAGE_PUB_QOS, LATCHED_QOS, SENSOR_QOS  # noqa: E402
from vs_perception.core.relative_depth import RelativeDepthConfig, RelativeDepthEstimator  # noqa: E402
from vs_perception.nodes.relative_depth_node import RelativeDepthNode  # noqa: E402

pytestmark = pytest.mark.ros


def _tiny():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    bb = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                                   patch_size=14, image_size=518, out_features=["stage1", "stage2", "stage3", "stage4"],
                                   reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(backbone_config=bb, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                           head_hidden_size=8, reassemble_hidden_size=32, patch_size=14)
    return RelativeDepthEstimator(transformers.DepthAnythingForDepthEstimation(cfg), RelativeDepthConfig(input_size=56))


def _run(node, topic: str, msgs: list, want: int, out_topic: str = "/vs/perception/relative_depth",
         msg_type: type = Image, qos=IMAGE_PUB_QOS) -> list[Image]:
    io = rclpy.create_node("io")
    pub = io.create_publisher(msg_type, topic, qos)
    out: list[Image] = []
    io.create_subscription(Image, out_topic, out.append, LATCHED_QOS if "goal" in out_topic else SENSOR_QOS)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(io)
    deadline = time.monotonic() + 10.0
    i = 0
    while len(out) < want and time.monotonic() < deadline:
        pub.publish(msgs[i % len(msgs)])
        i += 1
        for _ in range(5):
            ex.spin_once(timeout_sec=0.02)
    ex.shutdown()
    io.destroy_node()
    return out


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_depth_anything_source(ros) -> None:
    node = RelativeDepthNode(estimator=_tiny())
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    black = array_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8", sec_to_stamp(1.0), "camera_color_optical_frame")
    good = array_to_image(img, "rgb8", sec_to_stamp(12.5), "camera_color_optical_frame")
    out = _run(node, "/camera/camera/color/image_raw", [black, good], want=2)
    assert len(out) >= 2 and all(m.header.stamp.sec == 12 for m in out)  # the black frame never produced one
    d = image_to_array(out[0], ("32FC1",))
    assert d.shape == (48, 64) and np.nanmin(d) >= 0.0 and np.nanmax(d) <= 1.0
    node.destroy_node()


def test_missing_weights_fall_back_to_aligned_depth(ros, tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError):
        RelativeDepthNode(parameter_overrides=[Parameter("model.model", value=str(tmp_path)),
                                               Parameter("fallback", value="none")])
    node = RelativeDepthNode(parameter_overrides=[Parameter("model.model", value=str(tmp_path))])  # default: aligned
    assert node.source == "aligned"
    z = np.tile(np.linspace(0.5, 1.5, 64, dtype=np.float32), (48, 1))
    msg = array_to_image(metres_to_depth16(z), "16UC1", sec_to_stamp(3.0), "camera_color_optical_frame")
    out = _run(node, "/camera/camera/aligned_depth_to_color/image_raw", [msg], want=1)
    d = image_to_array(out[0], ("32FC1",))
    assert d[0, 0] == pytest.approx(0.0) and d[0, -1] == pytest.approx(1.0)  # larger = farther
    node.destroy_node()


def _depth_msg(z: np.ndarray, stamp: float) -> Image:
    return array_to_image(metres_to_depth16(z), "16UC1", sec_to_stamp(stamp), "camera_color_optical_frame")


def test_source_is_validated(ros) -> None:
    with pytest.raises(ConfigError, match="depth_anything"):
        RelativeDepthNode(parameter_overrides=[Parameter("source", value="camera")])  # the old name: refused
    with pytest.raises(ConfigError, match="color_t_ir"):
        RelativeDepthNode(parameter_overrides=[Parameter("source", value="aligned"),
                                               Parameter("color_t_ir", value=[0.0, 0.0])])


def test_a_malformed_image_does_not_end_the_node(ros) -> None:
    node = RelativeDepthNode(parameter_overrides=[Parameter("source", value="aligned")])
    bad = array_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8", sec_to_stamp(1.0), "camera_color_optical_frame")
    empty = _depth_msg(np.zeros((48, 64), np.float32), 2.0)  # no valid pixel
    good = _depth_msg(np.tile(np.linspace(0.5, 1.5, 64, dtype=np.float32), (48, 1)), 7.0)
    out = _run(node, "/camera/camera/aligned_depth_to_color/image_raw", [bad, empty, good], want=2)
    assert len(out) >= 2 and all(m.header.stamp.sec == 7 for m in out)  # stamped like its image
    node.destroy_node()


def test_goal_image_depth_is_latched_with_the_goal_stamp(ros) -> None:
    from vs_common.core.camera import CameraModel
    from vs_perception.core.goal_store import make_goal
    from vs_perception.ros.conversions import goal_to_msg

    from vs_msgs.msg import Goal as GoalMsg

    node = RelativeDepthNode(parameter_overrides=[Parameter("source", value="aligned")])
    cam = CameraModel(K=np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]]), width=64, height=48)
    z = np.tile(np.linspace(1.5, 0.5, 64, dtype=np.float32), (48, 1))
    img = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = goal_to_msg(make_goal(img, cam, z, goal_id="g", stamp=42.25))
    out = _run(node, "/vs/perception/goal", [msg], want=1, out_topic="/vs/perception/goal_relative_depth",
               msg_type=GoalMsg, qos=LATCHED_QOS)
    assert out and out[0].header.stamp.sec == 42 and out[0].header.stamp.nanosec == 250_000_000
    d = image_to_array(out[0], ("32FC1",))
    assert d[0, 0] == pytest.approx(1.0) and d[0, -1] == pytest.approx(0.0)
    node.destroy_node()


def test_sgbm_source_gives_depth_in_the_colour_grid(ros) -> None:
    from sensor_msgs.msg import CameraInfo
    from vs_common.ros.image import model_to_camera_info
    from vs_sim.core.camera import D435_BASELINE_M, D435_COLOR, D435_IR

    node = RelativeDepthNode(parameter_overrides=[Parameter("source", value="sgbm")])
    rng = np.random.default_rng(3)
    left = rng.integers(0, 255, (480, 640), dtype=np.uint8)
    shift = 20  # px: a fronto-parallel plane at fx·B / 20 = 0.96 m
    right = np.roll(left, -shift, axis=1)
    stamp = sec_to_stamp(5.0)
    io = rclpy.create_node("io_info")
    pubs = {t: io.create_publisher(CameraInfo, t, IMAGE_PUB_QOS) for t in
            ("/camera/camera/color/camera_info", "/camera/camera/infra2/camera_info")}
    ex = SingleThreadedExecutor()
    ex.add_node(io)
    for _ in range(5):
        pubs["/camera/camera/color/camera_info"].publish(
            model_to_camera_info(D435_COLOR, stamp, "camera_color_optical_frame"))
        pubs["/camera/camera/infra2/camera_info"].publish(
            model_to_camera_info(D435_IR, stamp, "camera_infra1_optical_frame", baseline_m=D435_BASELINE_M))
        ex.spin_once(timeout_sec=0.02)
    io_l = io.create_publisher(Image, "/camera/camera/infra1/image_rect_raw", IMAGE_PUB_QOS)
    l_msg = array_to_image(left, "mono8", stamp, "camera_infra1_optical_frame")
    r_msg = array_to_image(right, "mono8", stamp, "camera_infra1_optical_frame")

    def both():  # infra1, then the infra2 image that triggers the pair
        io_l.publish(l_msg)
        for _ in range(3):
            ex.spin_once(timeout_sec=0.01)
        return r_msg
    for _ in range(10):
        both()
        node_ex = SingleThreadedExecutor()
        node_ex.add_node(node)
        for _ in range(5):
            node_ex.spin_once(timeout_sec=0.02)
        node_ex.remove_node(node)
        if node._left is not None and node._color_info is not None and node._info2 is not None:
            break
    out = _run(node, "/camera/camera/infra2/image_rect_raw", [r_msg], want=1)
    ex.shutdown()
    io.destroy_node()
    d = image_to_array(out[0], ("32FC1",))
    assert d.shape == (480, 640) and out[0].header.stamp.sec == 5
    node.destroy_node()
