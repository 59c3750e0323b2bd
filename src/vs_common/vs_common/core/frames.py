"""The camera's TF tree, as realsense-ros lays it out, from the hand-eye calibration (no ROS here).

Frames (ros2_conventions.md §1, REP-103): ``<tcp> → camera_link`` (the hand-eye, published by the robot
bridge) ``→ camera_<stream>_frame`` (ROS body axes: x forward, y left, z up) ``→ camera_<stream>_optical_frame``
(z forward, x right, y down; a pure rotation). The hand-eye of this project is calibrated for the colour
optical frame (``tcp_T_camera`` in config/robot_bridge.yaml), so ``camera_link`` sits at the colour
camera with body axes: ``camera_link → camera_color_frame`` is the identity and every other stream is
placed relative to colour. (realsense-ros puts camera_link at the depth imager, 15 mm from colour on a
D435: with the official driver, calibrate ``tool0 → camera_link`` itself.)
"""

from __future__ import annotations

import numpy as np

from vs_common.core.se3 import make_pose

#: ``camera_<s>_frame`` (body) ← ``camera_<s>_optical_frame``: optical z = body x, x = −body y, y = −body z.
BODY_R_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
#: The same rotation as a quaternion (x, y, z, w), as realsense-ros publishes it.
BODY_Q_OPTICAL = (-0.5, 0.5, -0.5, 0.5)


def camera_link(camera: str = "camera") -> str:
    return f"{camera}_link"


def stream_frames(stream: str, camera: str = "camera") -> tuple[str, str]:
    """(``camera_<stream>_frame``, ``camera_<stream>_optical_frame``)."""
    return f"{camera}_{stream}_frame", f"{camera}_{stream}_optical_frame"


#: Frame ids of the graph's defaults (camera name "camera", as realsense-ros; UR frames as ur_robot_driver).
COLOR_OPTICAL_FRAME = stream_frames("color")[1]
DEPTH_OPTICAL_FRAME = stream_frames("depth")[1]
INFRA1_OPTICAL_FRAME = stream_frames("infra1")[1]
INFRA2_OPTICAL_FRAME = stream_frames("infra2")[1]
BASE_FRAME = "base"
TCP_FRAME = "tool0"


def tcp_to_camera_link(tcp_T_color_optical: np.ndarray) -> np.ndarray:
    """Hand-eye ``tcp_T_camera`` (colour optical frame) → ``tcp_T_camera_link`` (body axes at the colour camera).

    Shapes: (4, 4) → (4, 4).
    """
    return np.asarray(tcp_T_color_optical, float) @ make_pose(BODY_R_OPTICAL.T)


def camera_tree(color_T_optical: dict[str, np.ndarray], camera: str = "camera") -> list[tuple[str, str, np.ndarray]]:
    """The static transforms ``camera_link → camera_<s>_frame → camera_<s>_optical_frame`` of each stream.

    Args:
        color_T_optical: stream → pose (4, 4) of its optical frame in the colour optical frame
            (identity for colour; a D435's infra2 is ``t = (B, 0, 0)`` with B the stereo baseline).
        camera: the camera name (realsense-ros ``camera_name``).

    Returns:
        (parent, child, parent_T_child) triples, two per stream.
    """
    link = camera_link(camera)
    out = []
    for stream, c_T_s in color_T_optical.items():
        frame, optical = stream_frames(stream, camera)
        # link (body at colour) ← colour optical ← stream optical ← stream body
        link_T_frame = make_pose(BODY_R_OPTICAL) @ np.asarray(c_T_s, float) @ make_pose(BODY_R_OPTICAL.T)
        out += [(link, frame, link_T_frame), (frame, optical, make_pose(BODY_R_OPTICAL))]
    return out
