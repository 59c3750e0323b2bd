"""RunRecorder writes a self-describing MCAP rosbag2 that rosbags reads back without the workspace."""

from __future__ import annotations

import time

import numpy as np
import pytest
from vs_bringup.recorder import RunRecorder, read_custom_data, read_run, vs_typestore
from vs_bringup.topics import TopicSpec, run_topics
from vs_common.core.errors import InputError

pytestmark = pytest.mark.ros


def test_typestore_has_every_vs_msgs_type():
    store = vs_typestore()
    for name in ("Correspondences", "Goal", "Keypoints", "RobotStatus", "ServoStatus"):
        assert f"vs_msgs/msg/{name}" in store.fielddefs


def test_topic_spec_validates():
    with pytest.raises(ValueError):
        TopicSpec("relative/name", "std_msgs/msg/String")
    with pytest.raises(ValueError):
        TopicSpec("/a", "std_msgs/String")
    with pytest.raises(Exception, match="qos"):
        TopicSpec("/a", "std_msgs/msg/String", qos="fast")


def test_run_topics_depend_on_pipeline(monkeypatch):
    from vs_controllers.core.pipelines import PIPELINES, Input, PipelineSpec

    # A stereo pipeline (KOVIS-like), registered for this test only: its topics follow from its inputs.
    monkeypatch.setitem(PIPELINES, "stereo", PipelineSpec(
        name="stereo", summary="test", inputs=(Input.STEREO_IR,), controller="m:f", controller_config="m:C"))
    ibvs = {t.name for t in run_topics("ibvs")}
    stereo = {t.name for t in run_topics("stereo")}
    assert "/vs/perception/correspondences" in ibvs and "/vs/perception/correspondences" not in stereo
    assert "/camera/camera/infra1/image_rect_raw" in stereo
    assert all(t.max_rate_hz == 0.5 for t in run_topics("ibvs", image_rate_hz=0.5)
               if t.type == "sensor_msgs/msg/Image")


def test_write_then_read_back(ros_executor, ros_context, tmp_path, spin):
    from geometry_msgs.msg import TwistStamped
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from vs_msgs.msg import ServoStatus

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub_node = Node("fake_graph", context=ros_context)
    status_pub = pub_node.create_publisher(ServoStatus, "/vs/servo/status", latched)
    twist_pub = pub_node.create_publisher(TwistStamped, "/vs/servo/cmd_twist", 10)
    image_pub = pub_node.create_publisher(Image, "/camera/camera/color/image_raw", 5)
    # Published before the recorder exists: only a latched subscription can still get it.
    early = ServoStatus(pipeline="ibvs", state=ServoStatus.IDLE, goal_id="g0", message="before")
    status_pub.publish(early)

    topics = [TopicSpec("/vs/servo/status", "vs_msgs/msg/ServoStatus", "latched"),
              TopicSpec("/vs/servo/cmd_twist", "geometry_msgs/msg/TwistStamped", "reliable"),
              TopicSpec("/camera/camera/color/image_raw", "sensor_msgs/msg/Image", "sensor", max_rate_hz=2.0)]
    bag = tmp_path / "run" / "bag"
    recorder = RunRecorder(ros_context, topics, bag, custom_data={"pipeline": "ibvs", "scene": "3"})
    ros_executor.add_node(pub_node)
    ros_executor.add_node(recorder.node)
    assert spin(ros_executor, lambda: recorder.counts["/vs/servo/status"] >= 1, timeout=10.0)
    # Wait until the recorder's volatile subscriptions are matched, or the first messages go nowhere.
    assert spin(ros_executor, lambda: twist_pub.get_subscription_count() >= 1
                and image_pub.get_subscription_count() >= 1, timeout=10.0)

    img = np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3)
    t_end = time.monotonic() + 1.2
    k = 0
    while time.monotonic() < t_end:
        tw = TwistStamped()
        tw.header.frame_id = "camera_color_optical_frame"
        tw.twist.linear.x = 0.01 * k
        twist_pub.publish(tw)
        im = Image(height=12, width=16, encoding="rgb8", step=48, data=(img + k).tobytes())
        image_pub.publish(im)
        k += 1
        spin(ros_executor, lambda: False, timeout=0.05)
    status_pub.publish(ServoStatus(pipeline="ibvs", state=ServoStatus.CONVERGED, goal_id="g0", error=0.001))
    assert spin(ros_executor, lambda: recorder.counts["/vs/servo/cmd_twist"] >= k
                and recorder.counts["/vs/servo/status"] >= 2, timeout=5.0)
    # 20 Hz of images under a 2 Hz cap over ~1.2 s: a handful recorded, most dropped.
    assert 1 <= recorder.counts["/camera/camera/color/image_raw"] <= 4
    assert recorder.dropped["/camera/camera/color/image_raw"] >= k - 4
    recorder.set_custom_data("converged", "true")
    n_images = recorder.counts["/camera/camera/color/image_raw"]
    assert recorder.close() == bag
    recorder.close()  # idempotent
    # The newest dropped frame is written at close: the bag ends with the last image.
    assert recorder.counts["/camera/camera/color/image_raw"] == n_images + 1

    (mcap_file,) = bag.glob("*.mcap")
    assert (bag / "metadata.yaml").is_file() and b"zstd" in mcap_file.read_bytes()  # compressed chunks
    run = read_run(bag)  # rosbags alone, typestore built from the definitions in the bag
    statuses = [m for _, m in run["/vs/servo/status"]]
    assert statuses[0].message == "before" and statuses[-1].state == ServoStatus.CONVERGED
    assert statuses[-1].error == pytest.approx(0.001)
    twists = run["/vs/servo/cmd_twist"]
    assert [round(m.twist.linear.x, 6) for _, m in twists] == [round(0.01 * i, 6) for i in range(k)]
    assert all(t2 >= t1 for (t1, _), (t2, _) in zip(twists, twists[1:]))
    images = [np.asarray(m.data).reshape(12, 16, 3) for _, m in run["/camera/camera/color/image_raw"]]
    assert np.array_equal(images[0], img) and np.array_equal(images[-1], img + (k - 1))
    assert len(images) == n_images + 1
    assert read_custom_data(bag) == {"pipeline": "ibvs", "scene": "3", "converged": "true"}


def test_bag_embeds_custom_definitions(ros_context, tmp_path):
    """The connection of a vs_msgs topic carries the full .msg text, with its dependencies."""
    from rosbags.rosbag2 import Reader

    bag = tmp_path / "bag"
    RunRecorder(ros_context, [TopicSpec("/vs/servo/status", "vs_msgs/msg/ServoStatus", "latched")], bag).close()
    with Reader(bag) as reader:
        (conn,) = reader.connections
        assert conn.msgtype == "vs_msgs/msg/ServoStatus"
        text = conn.msgdef.data
    assert "uint8 CONVERGED=2" in text and "float32 controller_ms" in text
    assert "MSG: geometry_msgs/Twist" in text and "MSG: std_msgs/Header" in text
    assert conn.ext.offered_qos_profiles[0].durability.name == "TRANSIENT_LOCAL"


def test_recorder_rejects_bad_input(ros_context, tmp_path):
    spec = [TopicSpec("/vs/servo/status", "vs_msgs/msg/ServoStatus", "latched")]
    with pytest.raises(InputError, match="at least one"):
        RunRecorder(ros_context, [], tmp_path / "a")
    with pytest.raises(InputError, match="duplicate"):
        RunRecorder(ros_context, spec * 2, tmp_path / "b")
    (tmp_path / "exists").mkdir()
    with pytest.raises(InputError, match="already exists"):
        RunRecorder(ros_context, spec, tmp_path / "exists")
    with pytest.raises(InputError, match="Node or Context"):
        RunRecorder(object(), spec, tmp_path / "c")
    with pytest.raises(InputError, match="no bag"):
        read_run(tmp_path / "missing")
