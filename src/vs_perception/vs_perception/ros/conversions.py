"""vs_perception's message ↔ array conversions: Keypoints, Correspondences, debug MarkerArray.

Image / CameraInfo conversions are generic and live in :mod:`vs_common.ros.image`. The Correspondences
codec is in :mod:`vs_perception.ros.correspondences` and re-exported here, so nodes import one module.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray
from vs_common.core.errors import InputError
from vs_common.ros.image import sec_to_stamp, stamp_to_sec

from vs_msgs.msg import Keypoints as KeypointsMsg
from vs_perception.core.features import Features
from vs_perception.core.viz import MarkerData
from vs_perception.ros.correspondences import correspondences_to_msg, msg_to_correspondences

__all__ = ["correspondences_to_msg", "msg_to_correspondences", "features_to_msg", "msg_to_features",
           "markers_to_msg"]


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


def markers_to_msg(data: MarkerData, stamp: Time, frame_id: str = "camera_color_optical_frame",
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
