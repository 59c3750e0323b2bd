"""Goal and observer nodes over real DDS: capture a goal, observe a shifted view, survive bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.ros

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from vs_common.core.camera import CameraModel  # noqa: E402
from vs_common.ros.image import array_to_image, model_to_camera_info, sec_to_stamp  # noqa: E402
from vs_common.ros.qos import IMAGE_PUB_QOS, LATCHED_QOS  # noqa: E402
from vs_perception.nodes.goal import GoalNode  # noqa: E402
from vs_perception.nodes.observer import ObserverNode  # noqa: E402
from vs_perception.ros.conversions import msg_to_correspondences  # noqa: E402

from vs_msgs.msg import Correspondences as CorrespondencesMsg  # noqa: E402
from vs_msgs.msg import Goal as GoalMsg  # noqa: E402
from vs_msgs.srv import SetGoal  # noqa: E402

W, H = 320, 240
CAM = CameraModel(K=np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]), width=W, height=H)


def texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = cv2.resize(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), (W * 2, H * 2), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[H // 2: H // 2 + H, W // 2: W // 2 + W])


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    M = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, M, (W, H), borderMode=cv2.BORDER_REFLECT)


@pytest.fixture
def graph(ros_context, ros_executor):
    goal = GoalNode(context=ros_context, parameter_overrides=[Parameter("detector", value="orb"),
                                                             Parameter("distance_prior_m", value=0.65)])
    obs = ObserverNode(context=ros_context, parameter_overrides=[Parameter("features.detector", value="orb"),
                                                                 Parameter("estimator.model", value="homography")])
    probe = Node("probe", context=ros_context)
    for n in (goal, obs, probe):
        ros_executor.add_node(n)
    pubs = {
        "color": probe.create_publisher(Image, "/camera/camera/color/image_raw", IMAGE_PUB_QOS),
        "info": probe.create_publisher(CameraInfo, "/camera/camera/color/camera_info", IMAGE_PUB_QOS),
    }
    got = {"corr": [], "goal": []}
    probe.create_subscription(CorrespondencesMsg, "/vs/perception/correspondences", got["corr"].append, 10)
    probe.create_subscription(GoalMsg, "/vs/perception/goal", got["goal"].append, LATCHED_QOS)
    client = probe.create_client(SetGoal, "/vs/perception/set_goal")
    return goal, obs, probe, pubs, got, client


def publish(pubs, img: np.ndarray, t: float, encoding: str = "rgb8", info: CameraInfo | None = None) -> None:
    stamp = sec_to_stamp(t)
    pubs["info"].publish(info or model_to_camera_info(CAM, stamp, "camera_color_optical_frame"))
    pubs["color"].publish(array_to_image(img, encoding, stamp, "camera_color_optical_frame"))


def call(ex, spin, client, req):
    assert spin(ex, client.service_is_ready)
    fut = client.call_async(req)
    assert spin(ex, fut.done, timeout=10.0)
    return fut.result()


def test_capture_goal_then_observe(graph, ros_executor, spin) -> None:
    goal_node, obs_node, probe, pubs, got, client = graph
    img = texture()
    assert spin(ros_executor, lambda: pubs["color"].get_subscription_count() >= 2)
    publish(pubs, img, 1.0)
    assert spin(ros_executor, lambda: goal_node._color is not None and goal_node._info is not None)
    resp = call(ros_executor, spin, client, SetGoal.Request(source=SetGoal.Request.SOURCE_CURRENT_FRAME))
    assert resp.success and resp.goal_id.startswith("goal-") and resp.num_keypoints > 20, resp.message
    assert spin(ros_executor, lambda: len(got["goal"]) == 1 and obs_node._goal is not None)
    publish(pubs, shifted(img, 6.0, -4.0), 2.0)
    assert spin(ros_executor, lambda: len(got["corr"]) > 0, timeout=10.0)
    m = got["corr"][-1]
    assert m.goal_id == resp.goal_id and m.width == W and m.header.frame_id == "camera_color_optical_frame"
    n = len(m.inlier)
    assert sum(m.inlier) > 0.3 * n
    goal_uv = np.asarray(m.goal_uv).reshape(n, 2)
    cur_uv = np.asarray(m.current_uv).reshape(n, 2)
    shift = np.median(cur_uv[np.asarray(m.inlier)] - goal_uv[np.asarray(m.inlier)], axis=0)
    assert np.allclose(shift, [6.0, -4.0], atol=0.5)
    # the goal node's distance prior reaches the controllers with every observation
    assert m.distance_prior == pytest.approx(0.65)
    assert msg_to_correspondences(m).info["distance_prior_m"] == pytest.approx(0.65)


def test_set_goal_errors_are_reported(graph, ros_executor, spin) -> None:
    _g, _o, _p, pubs, _got, client = graph
    resp = call(ros_executor, spin, client, SetGoal.Request(source=SetGoal.Request.SOURCE_CURRENT_FRAME))
    assert not resp.success and "no image received" in resp.message
    req = SetGoal.Request(source=SetGoal.Request.SOURCE_IMAGE)
    req.image = array_to_image(np.zeros((H, W, 3), np.uint8), "rgb8")
    req.camera_info = model_to_camera_info(CAM)
    resp = call(ros_executor, spin, client, req)
    assert not resp.success and "black" in resp.message
    resp = call(ros_executor, spin, client, SetGoal.Request(source=SetGoal.Request.SOURCE_FILE, path="/nonexistent"))
    assert not resp.success and resp.message
    resp = call(ros_executor, spin, client, SetGoal.Request(source=9))
    assert not resp.success and "unknown source" in resp.message


def test_observer_survives_bad_frames(graph, ros_executor, spin) -> None:
    goal_node, obs_node, probe, pubs, got, client = graph
    img = texture(1)
    assert spin(ros_executor, lambda: pubs["color"].get_subscription_count() >= 2)
    publish(pubs, img, 1.0)  # before any goal: dropped with a reason, no crash
    spin(ros_executor, lambda: False, timeout=0.3)
    assert got["corr"] == []
    assert spin(ros_executor, lambda: goal_node._color is not None and goal_node._info is not None)
    assert call(ros_executor, spin, client, SetGoal.Request(source=SetGoal.Request.SOURCE_CURRENT_FRAME)).success
    assert spin(ros_executor, lambda: obs_node._goal is not None)
    bad_info = model_to_camera_info(CameraModel(K=CAM.K, width=640, height=480))
    publish(pubs, img, 2.0, info=bad_info)                       # size mismatch with camera_info
    publish(pubs, img[:, :, 0].astype(np.float32), 3.0, "32FC1")  # wrong encoding for a colour image
    spin(ros_executor, lambda: False, timeout=0.5)
    assert got["corr"] == []
    publish(pubs, img, 4.0)  # and it still works afterwards
    assert spin(ros_executor, lambda: len(got["corr"]) > 0, timeout=10.0)


def _set_remote(ex, spin, probe, node_name: str, name: str, value):
    """``ros2 param set /<node_name> <name> <value>``: the SetParameters service over DDS."""
    from rclpy.parameter_client import AsyncParameterClient

    client = AsyncParameterClient(probe, node_name)
    assert spin(ex, client.services_are_ready, timeout=10.0)
    fut = client.set_parameters([Parameter(name, value=value)])
    assert spin(ex, fut.done, timeout=10.0)
    return fut.result().results[0]


def test_detector_parameters_rejected_or_applied_at_run_time(graph, ros_executor, spin) -> None:
    goal_node, obs_node, probe, pubs, got, client = graph
    img = texture(2)
    assert spin(ros_executor, lambda: pubs["color"].get_subscription_count() >= 2)
    publish(pubs, img, 1.0)
    assert spin(ros_executor, lambda: goal_node._color is not None and goal_node._info is not None)
    goal_id = call(ros_executor, spin, client, SetGoal.Request(source=SetGoal.Request.SOURCE_CURRENT_FRAME)).goal_id
    assert spin(ros_executor, lambda: obs_node._goal is not None)
    orb_goal = obs_node.observer.goal.goal_uv.copy()

    for node, name in (("/observer", "features.detector"), ("/goal", "detector")):
        res = _set_remote(ros_executor, spin, probe, node, name, "surf")
        assert not res.successful and "choose one of ['sift', 'orb', 'akaze']" in res.reason
    assert obs_node.observer.config.features.detector == "orb" and goal_node.extractor.config.detector == "orb"

    assert _set_remote(ros_executor, spin, probe, "/observer", "features.detector", "sift").successful
    assert _set_remote(ros_executor, spin, probe, "/goal", "detector", "sift").successful
    assert obs_node.observer.config.features.detector == "sift" and goal_node.extractor.config.detector == "sift"
    # The observer re-detected the goal with SIFT (same id), and observes with it from the next frame.
    assert obs_node.observer.goal.goal_id == goal_id
    assert not np.array_equal(obs_node.observer.goal.goal_uv, orb_goal)
    got["corr"].clear()
    publish(pubs, shifted(img, 3.0, 2.0), 2.0)
    assert spin(ros_executor, lambda: len(got["corr"]) > 0, timeout=10.0)
    m = got["corr"][-1]
    assert np.allclose(np.asarray(m.goal_uv).reshape(-1, 2), obs_node.observer.goal.goal_uv, atol=1e-3)

    res = _set_remote(ros_executor, spin, probe, "/observer", "matching.ratio", 1.5)
    assert not res.successful and "matching.ratio=1.5" in res.reason
    res = _set_remote(ros_executor, spin, probe, "/observer", "use_depth", False)
    assert not res.successful and "read-only" in res.reason.lower()
    res = _set_remote(ros_executor, spin, probe, "/goal", "goal_dir", "/tmp")
    assert not res.successful and "read-only" in res.reason.lower()
