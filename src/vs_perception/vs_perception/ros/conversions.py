"""vs_perception's message ↔ array conversions: Correspondences, Goal, Keypoints, debug MarkerArray.

Image / CameraInfo conversions are generic and live in :mod:`vs_common.ros.image`. Every decoder
validates and raises :class:`InputError` with the reason, so node callbacks never crash on a message.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_common.core.frames import COLOR_OPTICAL_FRAME
from vs_common.ros.image import (
    array_to_image,
    camera_info_to_model,
    check_image_matches_info,
    image_to_depth_m,
    image_to_rgb,
    model_to_camera_info,
    sec_to_stamp,
    stamp_to_sec,
)

from vs_msgs.msg import Correspondences as CorrespondencesMsg
from vs_msgs.msg import Goal as GoalMsg
from vs_msgs.msg import Keypoints as KeypointsMsg
from vs_perception.core.features import Features
from vs_perception.core.goal_store import Goal, make_goal
from vs_perception.core.observer import OBSERVER_STAGES
from vs_perception.core.types import Correspondences
from vs_perception.core.viz import MarkerData

__all__ = ["correspondences_to_msg", "features_to_msg", "goal_to_msg",
           "markers_to_msg", "msg_to_correspondences", "msg_to_features", "msg_to_goal"]


def features_to_msg(features: Features, detector: str = "", stamp: float = 0.0, frame_id: str = "",
                    size: np.ndarray | None = None, angle: np.ndarray | None = None) -> KeypointsMsg:
    """Features → vs_msgs/Keypoints (descriptors packed little-endian, row-major)."""
    n = len(features)
    msg = KeypointsMsg()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.detector = detector
    msg.uv = np.asarray(features.uv, dtype=np.float32).reshape(-1).tolist()
    msg.response = np.asarray(features.response, dtype=np.float32).reshape(-1).tolist()
    msg.size = (np.zeros(n) if size is None else np.asarray(size)).astype(np.float32).tolist()
    msg.angle = (np.full(n, -1.0) if angle is None else np.asarray(angle)).astype(np.float32).tolist()
    desc = np.asarray(features.descriptors)
    if desc.size == 0:
        msg.descriptor_type, msg.descriptor_length = KeypointsMsg.DESCRIPTOR_NONE, 0
    else:
        if desc.ndim != 2 or desc.shape[0] != n:
            raise InputError(f"descriptors of shape {desc.shape} do not fit {n} keypoints")
        binary = desc.dtype == np.uint8
        desc = desc.astype("<u1" if binary else "<f4")
        msg.descriptor_type = KeypointsMsg.DESCRIPTOR_UINT8 if binary else KeypointsMsg.DESCRIPTOR_FLOAT32
        msg.descriptor_length = int(desc.shape[1])
        msg.descriptors = np.ascontiguousarray(desc).view(np.uint8).reshape(-1).tobytes()
    return msg


def msg_to_features(msg: KeypointsMsg) -> tuple[Features, dict]:
    """vs_msgs/Keypoints → (Features, extras {detector, stamp, frame_id, size, angle}); InputError if malformed."""
    uv = np.asarray(msg.uv, dtype=np.float64)
    if uv.size % 2:
        raise InputError(f"Keypoints.uv has odd length {uv.size}")
    n = uv.size // 2
    for name in ("response", "size", "angle"):
        if len(getattr(msg, name)) != n:
            raise InputError(f"Keypoints.{name} has {len(getattr(msg, name))} entries, expected {n}")
    raw = np.frombuffer(bytes(msg.descriptors), dtype=np.uint8)
    length = int(msg.descriptor_length)
    if msg.descriptor_type == KeypointsMsg.DESCRIPTOR_NONE:
        desc, binary = np.zeros((n, 0), np.float32), False
    elif msg.descriptor_type == KeypointsMsg.DESCRIPTOR_UINT8:
        if raw.size != n * length:
            raise InputError(f"Keypoints.descriptors has {raw.size} bytes, expected {n * length}")
        desc, binary = raw.reshape(n, length).copy(), True
    elif msg.descriptor_type == KeypointsMsg.DESCRIPTOR_FLOAT32:
        if raw.size != 4 * n * length:
            raise InputError(f"Keypoints.descriptors has {raw.size} bytes, expected {4 * n * length}")
        desc, binary = raw.view("<f4").reshape(n, length).astype(np.float32), False
    else:
        raise InputError(f"unknown Keypoints.descriptor_type {msg.descriptor_type}; expected 0, 1 or 2")
    feats = Features(uv=uv.reshape(n, 2), response=np.asarray(msg.response, dtype=np.float64),
                     descriptors=desc, binary=binary)
    extras = {"detector": msg.detector, "stamp": stamp_to_sec(msg.header.stamp), "frame_id": msg.header.frame_id,
              "size": np.asarray(msg.size, dtype=np.float64), "angle": np.asarray(msg.angle, dtype=np.float64)}
    return feats, extras


def _points(arr: np.ndarray) -> list[Point]:
    return [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in np.asarray(arr).reshape(-1, 3)]


def _colors(arr: np.ndarray) -> list[ColorRGBA]:
    return [ColorRGBA(r=float(c[0]), g=float(c[1]), b=float(c[2]), a=1.0) for c in np.asarray(arr).reshape(-1, 3)]


def markers_to_msg(data: MarkerData, stamp: Time, frame_id: str = COLOR_OPTICAL_FRAME,
                   ns: str = "vs_correspondences", point_size_m: float = 0.01, line_width_m: float = 0.002,
                   lifetime_s: float = 0.5) -> MarkerArray:
    """MarkerData → MarkerArray: DELETEALL, then SPHERE_LIST current (id 0), goal (id 1), LINE_LIST (id 2).

    Stable ``ns``/ids and a short lifetime keep rviz from showing stale correspondences.
    """
    out = MarkerArray()
    clear = Marker()
    clear.header.stamp, clear.header.frame_id, clear.ns = stamp, frame_id, ns
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    parts = [(0, Marker.SPHERE_LIST, data.current_points, data.current_colors, point_size_m),
             (1, Marker.SPHERE_LIST, data.goal_points, data.goal_colors, point_size_m),
             (2, Marker.LINE_LIST, data.lines.reshape(-1, 3), np.repeat(data.line_colors, 2, axis=0), line_width_m)]
    for mid, mtype, pts, cols, scale in parts:
        m = Marker()
        m.header.stamp, m.header.frame_id, m.ns, m.id = stamp, frame_id, ns, mid
        m.type, m.action, m.lifetime = mtype, Marker.ADD, life
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = float(scale)
        m.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        m.points, m.colors = _points(pts), _colors(cols)
        out.markers.append(m)
    return out


# -- Correspondences ---------------------------------------------------------------------------------
def _optional(values, n: int, name: str) -> np.ndarray | None:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    if arr.size != n:
        raise InputError(f"Correspondences.{name} has {arr.size} entries, expected 0 or {n}")
    return arr


def msg_to_correspondences(msg: CorrespondencesMsg) -> Correspondences:
    """Decode and validate a Correspondences message (raises InputError with the reason)."""
    goal_uv = np.asarray(msg.goal_uv, dtype=np.float64)
    cur_uv = np.asarray(msg.current_uv, dtype=np.float64)
    if goal_uv.size % 2:
        raise InputError(f"goal_uv has odd length {goal_uv.size}")
    n = goal_uv.size // 2
    if cur_uv.size != 2 * n:
        raise InputError(f"current_uv has {cur_uv.size} values, expected {2 * n}")
    for name in ("goal_index", "score", "inlier"):
        if len(getattr(msg, name)) != n:
            raise InputError(f"Correspondences.{name} has {len(getattr(msg, name))} entries, expected {n}")
    if not np.all(np.isfinite(goal_uv)):
        raise InputError("goal_uv contains NaN or Inf")
    camera = CameraModel(K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3), width=int(msg.width),
                         height=int(msg.height))
    info = {k: float(getattr(msg, k)) for k in OBSERVER_STAGES}
    prior = float(msg.distance_prior)
    if math.isfinite(prior) and prior > 0:  # 0 (the message default) or NaN: unknown
        info["distance_prior_m"] = prior
    return Correspondences(
        camera=camera, goal_uv=goal_uv.reshape(n, 2), current_uv=cur_uv.reshape(n, 2),
        valid=np.asarray(msg.inlier, dtype=bool), goal_ids=np.asarray(msg.goal_index, dtype=np.int64),
        score=np.asarray(msg.score, dtype=np.float64),
        goal_depth=_optional(msg.goal_depth, n, "goal_depth"),
        current_depth=_optional(msg.current_depth, n, "current_depth"),
        relative_depth=_optional(msg.relative_depth, n, "relative_depth"),
        goal_relative_depth=_optional(msg.goal_relative_depth, n, "goal_relative_depth"),
        goal_id=msg.goal_id, goal_stamp=stamp_to_sec(msg.goal_stamp), stamp=stamp_to_sec(msg.header.stamp),
        frame_id=msg.header.frame_id, info=info,
    )


def correspondences_to_msg(obs: Correspondences, goal_stamp: float | None = None) -> CorrespondencesMsg:
    """Encode a Correspondences (stamp and frame from ``obs``; the goal stamp from ``obs`` unless given)."""
    msg = CorrespondencesMsg()
    msg.header.stamp = sec_to_stamp(obs.stamp)
    msg.header.frame_id = obs.frame_id
    msg.goal_id = obs.goal_id
    msg.goal_stamp = sec_to_stamp(obs.goal_stamp if goal_stamp is None else goal_stamp)
    msg.width, msg.height = obs.camera.width, obs.camera.height
    msg.k = obs.camera.K.reshape(-1).tolist()
    msg.goal_uv = obs.goal_uv.astype(np.float32).reshape(-1).tolist()
    msg.current_uv = obs.current_uv.astype(np.float32).reshape(-1).tolist()
    msg.goal_index = obs.goal_ids.astype(np.int32).tolist()
    msg.score = np.asarray(obs.score, dtype=np.float32).tolist()
    msg.inlier = [bool(v) for v in obs.valid]
    for name in ("goal_depth", "current_depth", "relative_depth", "goal_relative_depth"):
        arr = getattr(obs, name)
        if arr is not None:
            setattr(msg, name, np.asarray(arr, dtype=np.float32).tolist())
    for k in OBSERVER_STAGES:
        setattr(msg, k, float(obs.info.get(k, 0.0)))
    msg.distance_prior = float(obs.info.get("distance_prior_m", math.nan))
    return msg


# -- Goal --------------------------------------------------------------------------------------------
def goal_to_msg(goal: Goal, frame_id: str = COLOR_OPTICAL_FRAME,
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
    image = image_to_rgb(msg.image)
    depth = None
    if msg.depth.width > 0:
        depth = image_to_depth_m(msg.depth)
    goal = make_goal(image, camera_info_to_model(msg.camera_info), depth, goal_id=msg.goal_id,
                     stamp=stamp_to_sec(msg.header.stamp), source="message")
    prior = float(msg.distance_prior)
    return goal, (prior if math.isfinite(prior) and prior > 0 else float("nan"))
