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
from vs_common.core.errors import WeightsNotFoundError  # noqa: E402
from vs_common.ros.image import array_to_image, image_to_array, metres_to_depth16, sec_to_stamp  # noqa: E402
from vs_common.ros.qos import IMAGE_PUB_QOS, SENSOR_QOS  # noqa: E402
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


def _run(node, topic: str, msgs: list[Image], want: int) -> list[Image]:
    io = rclpy.create_node("io")
    pub = io.create_publisher(Image, topic, IMAGE_PUB_QOS)
    out: list[Image] = []
    io.create_subscription(Image, "/vs/perception/relative_depth", out.append, SENSOR_QOS)
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


def test_missing_weights_fall_back_to_camera_depth(ros, tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError):
        RelativeDepthNode(parameter_overrides=[Parameter("model.model", value=str(tmp_path)),
                                               Parameter("fallback", value="none")])
    node = RelativeDepthNode(parameter_overrides=[Parameter("model.model", value=str(tmp_path))])  # default: camera
    assert node.source == "camera"
    z = np.tile(np.linspace(0.5, 1.5, 64, dtype=np.float32), (48, 1))
    msg = array_to_image(metres_to_depth16(z), "16UC1", sec_to_stamp(3.0), "camera_color_optical_frame")
    out = _run(node, "/camera/camera/aligned_depth_to_color/image_raw", [msg], want=1)
    d = image_to_array(out[0], ("32FC1",))
    assert d[0, 0] == pytest.approx(0.0) and d[0, -1] == pytest.approx(1.0)  # larger = farther
    node.destroy_node()
