"""MarkerArray / Keypoints conversions and the shipped rviz config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.ros  # real ROS messages (no DDS)

from visualization_msgs.msg import Marker  # noqa: E402
from vs_common.core.camera import CameraModel  # noqa: E402
from vs_common.ros.image import sec_to_stamp  # noqa: E402
from vs_perception.core.features import Features  # noqa: E402
from vs_perception.core.types import Correspondences  # noqa: E402
from vs_perception.core.viz import correspondence_markers  # noqa: E402
from vs_perception.ros.conversions import (  # noqa: E402
    correspondences_to_msg,
    features_to_msg,
    markers_to_msg,
    msg_to_correspondences,
    msg_to_features,
)

ROOT = Path(__file__).resolve().parents[3]


def test_marker_array_layout() -> None:
    cam = CameraModel(K=np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]]), width=160, height=120)
    corr = Correspondences(camera=cam, goal_uv=[[40.0, 60.0], [100.0, 80.0], [120.0, 30.0]],
                           current_uv=[[50.0, 65.0], [20.0, 100.0], [np.nan, np.nan]], valid=[True, False, False])
    msg = markers_to_msg(correspondence_markers(corr), sec_to_stamp(2.0))
    assert msg.markers[0].action == Marker.DELETEALL
    cur, goal, lines = msg.markers[1:]
    assert (cur.id, goal.id, lines.id) == (0, 1, 2) and lines.type == Marker.LINE_LIST
    assert len(cur.points) == 2 and len(lines.points) == 4 and len(lines.colors) == 4
    assert cur.header.frame_id == "camera_color_optical_frame" and cur.lifetime.nanosec > 0


@pytest.mark.parametrize("desc", [np.random.default_rng(0).random((5, 128), dtype=np.float32),
                                  np.random.default_rng(0).integers(0, 255, (5, 32), dtype=np.uint8)])
def test_keypoints_round_trip(desc: np.ndarray) -> None:
    f = Features(uv=np.random.default_rng(1).random((5, 2)) * 100, response=np.arange(5.0), descriptors=desc,
                 binary=desc.dtype == np.uint8)
    back, extras = msg_to_features(features_to_msg(f, "SIFT", 1.5, "camera_color_optical_frame"))
    np.testing.assert_allclose(back.uv, f.uv, rtol=1e-6)
    np.testing.assert_array_equal(back.descriptors, desc)
    assert back.binary == f.binary and extras["detector"] == "SIFT"


def test_rviz_config_is_tf_free_and_shows_the_views() -> None:
    cfg = yaml.safe_load((ROOT / "config" / "rviz" / "servo.rviz").read_text())
    vm = cfg["Visualization Manager"]
    assert vm["Global Options"]["Fixed Frame"] == "camera_color_optical_frame"
    topics = {d["Topic"]["Value"] for d in vm["Displays"] if "Topic" in d}
    assert {"/camera/camera/color/image_raw", "/vs/perception/debug/matches_image",
            "/vs/perception/markers"} <= topics


@pytest.mark.parametrize(("prior", "decoded"), [(0.7, 0.7), (None, None), (float("nan"), None)])
def test_correspondences_carry_the_distance_prior(prior, decoded) -> None:
    cam = CameraModel(K=np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]]), width=160, height=120)
    info = {} if prior is None else {"distance_prior_m": prior}
    corr = Correspondences(camera=cam, goal_uv=[[40.0, 60.0]], current_uv=[[50.0, 65.0]], valid=[True], info=info)
    back = msg_to_correspondences(correspondences_to_msg(corr))
    assert back.info.get("distance_prior_m") == (pytest.approx(decoded) if decoded else None)


def test_correspondences_carry_every_observer_stage_time() -> None:
    """The status's observer time adds up these fields: a tracked frame's cost must arrive too."""
    from vs_perception.core.observer import OBSERVER_STAGES

    cam = CameraModel(K=np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]]), width=160, height=120)
    times = {k: float(i + 1) for i, k in enumerate(OBSERVER_STAGES)}
    corr = Correspondences(camera=cam, goal_uv=[[40.0, 60.0]], current_uv=[[50.0, 65.0]], valid=[True], info=times)
    back = msg_to_correspondences(correspondences_to_msg(corr))
    assert {k: back.info[k] for k in OBSERVER_STAGES} == times and "track_ms" in OBSERVER_STAGES
