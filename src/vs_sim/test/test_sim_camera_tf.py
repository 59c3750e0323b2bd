"""The simulated D435 latches realsense-ros' static TF tree on /tf_static; its parameters are read-only."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros
tf2_msgs = pytest.importorskip("tf2_msgs.msg")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from vs_common.core.frames import BODY_Q_OPTICAL  # noqa: E402
from vs_common.ros.tf import TF_STATIC_QOS  # noqa: E402
from vs_sim.nodes.sim_camera import SimCameraNode  # noqa: E402


def test_static_camera_frames(ros_context, ros_executor, spin):
    cam = SimCameraNode(context=ros_context, parameter_overrides=[Parameter("env", value="image"),
                                                                  Parameter("enable_infra", value=True)])
    probe = Node("probe", context=ros_context)
    got: list = []
    probe.create_subscription(tf2_msgs.TFMessage, "/tf_static", got.append, TF_STATIC_QOS)  # joins late: latched
    for n in (cam, probe):
        ros_executor.add_node(n)
    assert spin(ros_executor, lambda: bool(got), timeout=10.0)
    tf = {(t.header.frame_id, t.child_frame_id): t.transform for m in got for t in m.transforms}
    streams = ("color", "depth", "infra1", "infra2")
    assert set(tf) == {("camera_link", f"camera_{s}_frame") for s in streams} | \
        {(f"camera_{s}_frame", f"camera_{s}_optical_frame") for s in streams}
    for s in streams:
        q = tf[(f"camera_{s}_frame", f"camera_{s}_optical_frame")].rotation
        assert Rotation.from_quat([q.x, q.y, q.z, q.w]).approx_equal(Rotation.from_quat(BODY_Q_OPTICAL))
    t = tf[("camera_link", "camera_infra2_frame")].translation
    assert np.allclose([t.x, t.y, t.z], [0.0, -cam.cell.baseline_m, 0.0])  # one baseline right of infra1
    t = tf[("camera_link", "camera_color_frame")].translation
    assert np.allclose([t.x, t.y, t.z], 0.0)
    result = cam.set_parameters([Parameter("rate_hz", value=2.0)])[0]
    assert not result.successful and "read-only" in result.reason.lower()
