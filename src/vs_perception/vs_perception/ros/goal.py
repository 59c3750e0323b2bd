"""vs_msgs/Goal ↔ :class:`vs_perception.core.goal_store.Goal` (validated through ``make_goal``)."""

from __future__ import annotations

import math

import numpy as np
from vs_common.core.errors import InputError
from vs_common.ros.image import (
    array_to_image,
    camera_info_to_model,
    check_image_matches_info,
    depth_to_metres,
    image_to_array,
    model_to_camera_info,
    sec_to_stamp,
    stamp_to_sec,
    to_rgb,
)

from vs_msgs.msg import Goal as GoalMsg
from vs_perception.core.goal_store import Goal, make_goal

COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def goal_to_msg(goal: Goal, frame_id: str = "camera_color_optical_frame",
                distance_prior_m: float = float("nan")) -> GoalMsg:
    """Encode a goal: rgb8 image, 32FC1 depth in metres (width 0 when absent), camera_info."""
    stamp = sec_to_stamp(goal.stamp)
    msg = GoalMsg(goal_id=goal.goal_id, distance_prior=float(distance_prior_m))
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.image = array_to_image(goal.image, "rgb8", stamp, frame_id)
    if goal.depth is not None:
        msg.depth = array_to_image(goal.depth.astype(np.float32), "32FC1", stamp, frame_id)
    msg.camera_info = model_to_camera_info(goal.camera, stamp, frame_id)
    return msg


def msg_to_goal(msg: GoalMsg) -> tuple[Goal, float]:
    """Decode a goal message; returns (goal, distance prior in m or NaN). Raises InputError when malformed."""
    if not msg.goal_id:
        raise InputError("goal message has an empty goal_id")
    check_image_matches_info(msg.image, msg.camera_info)
    image = to_rgb(image_to_array(msg.image, expect=COLOR_ENCODINGS), msg.image.encoding)
    depth = None
    if msg.depth.width > 0:
        depth = depth_to_metres(image_to_array(msg.depth, expect=DEPTH_ENCODINGS), msg.depth.encoding)
    goal = make_goal(image, camera_info_to_model(msg.camera_info), depth, goal_id=msg.goal_id,
                     stamp=stamp_to_sec(msg.header.stamp), source="message")
    prior = float(msg.distance_prior)
    return goal, (prior if math.isfinite(prior) and prior > 0 else float("nan"))
