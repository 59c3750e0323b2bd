"""The orbit offset (demo + /vs/sim/orbit) and the camera TF tree, without ROS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vs_common.core.errors import ConfigError
from vs_common.core.frames import BODY_Q_OPTICAL, BODY_R_OPTICAL, camera_tree, tcp_to_camera_link
from vs_common.core.orbit import DEFAULT_ORBIT_AXIS, orbit_axis, orbit_offset


def _pose(rotvec, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = Rotation.from_rotvec(rotvec).as_matrix(), t
    return T


@pytest.mark.parametrize("angle,axis,d", [(25.0, None, 0.6), (-40.0, (0.0, 1.0, 0.0), 0.3), (10.0, (1, 2, 3), 1.2)])
def test_orbit_turns_by_the_angle_about_the_viewed_point(angle, axis, d):
    w_T_c = _pose([0.3, -0.2, 0.1], [0.1, -0.4, 0.6])
    out = orbit_offset(w_T_c, d, angle, axis)
    rel = np.linalg.inv(w_T_c) @ out
    rotvec = Rotation.from_matrix(rel[:3, :3]).as_rotvec()
    assert np.degrees(np.linalg.norm(rotvec)) == pytest.approx(abs(angle))
    assert np.allclose(np.sign(angle) * rotvec / np.linalg.norm(rotvec), orbit_axis(axis))
    p = w_T_c @ np.array([0.0, 0.0, d, 1.0])  # the viewed point stays on the new optical axis, d ahead
    assert np.allclose(np.linalg.inv(out) @ p, [0.0, 0.0, d, 1.0])


def test_orbit_rejects_bad_requests():
    T = np.eye(4)
    for kwargs, match in [({"target_distance_m": 0.0}, "distance"), ({"rotation_deg": 91.0}, "angle"),
                          ({"rotation_deg": float("nan")}, "angle"), ({"axis_c": (0, 0, 0)}, "axis"),
                          ({"axis_c": (1.0, 2.0)}, "axis")]:
        args = {"target_distance_m": 0.5, "rotation_deg": 20.0, "axis_c": DEFAULT_ORBIT_AXIS, **kwargs}
        with pytest.raises(ConfigError, match=match):
            orbit_offset(T, **args)
    with pytest.raises(ConfigError, match="pose"):
        orbit_offset(np.full((4, 4), np.nan), 0.5, 20.0)


def test_camera_tree_follows_realsense_ros():
    assert np.allclose(Rotation.from_quat(BODY_Q_OPTICAL).as_matrix(), BODY_R_OPTICAL)
    # optical z (viewing direction) is body x; optical x (right) is body -y
    assert np.allclose(BODY_R_OPTICAL @ [0, 0, 1], [1, 0, 0]) and np.allclose(BODY_R_OPTICAL @ [1, 0, 0], [0, -1, 0])
    ir2 = np.eye(4)
    ir2[0, 3] = 0.05
    tree = {(p, c): T for p, c, T in camera_tree({"color": np.eye(4), "infra2": ir2})}
    assert np.allclose(tree[("camera_link", "camera_color_frame")], np.eye(4))
    assert np.allclose(tree[("camera_color_frame", "camera_color_optical_frame")][:3, :3], BODY_R_OPTICAL)
    # infra2 sits one baseline to the right of colour: -y in ROS body axes, as a D435's
    assert np.allclose(tree[("camera_link", "camera_infra2_frame")][:3, 3], [0.0, -0.05, 0.0])
    # tool0 → camera_link → colour optical reproduces the configured hand-eye
    hand_eye = _pose([0.0, 0.0, 0.2], [0.01, 0.02, 0.05])
    link = tcp_to_camera_link(hand_eye)
    assert np.allclose(link @ tree[("camera_link", "camera_color_frame")]
                       @ tree[("camera_color_frame", "camera_color_optical_frame")], hand_eye)
