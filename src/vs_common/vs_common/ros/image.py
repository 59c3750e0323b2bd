"""sensor_msgs/Image and CameraInfo ↔ numpy, without cv_bridge (which is not on PyPI).

Every function validates its input and raises :class:`InputError` with the reason, so node callbacks can
turn a malformed message into a status line instead of a crash. Decoders read fields only (rclpy messages
and rosbags' dataclasses alike) and the message classes are imported by the encoders, so the run report
decodes a bag on a machine without ROS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError

if TYPE_CHECKING:
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, Image

# encoding → (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


def stamp_to_sec(stamp: Time) -> float:
    """builtin_interfaces/Time → seconds (float).

    Raises:
        InputError: ``nanosec`` ≥ 1e9 (not a normalised stamp: 3 s + 4e9 ns would read as 7 s) or a field
            that is not an integer.
    """
    sec, nanosec = stamp.sec, stamp.nanosec
    if not isinstance(sec, int) or not isinstance(nanosec, int):
        raise InputError(f"stamp fields must be integers, got sec={sec!r}, nanosec={nanosec!r}")
    if not 0 <= nanosec < 1_000_000_000:
        raise InputError(f"invalid stamp: nanosec={nanosec} is not in [0, 1e9)")
    return float(sec) + 1e-9 * float(nanosec)


def sec_to_stamp(t: float) -> Time:
    """Seconds → builtin_interfaces/Time, clipped to [0, 2^31 − 1] s (NaN → 0: an obviously stale stamp)."""
    from builtin_interfaces.msg import Time

    t = float(t)
    t = min(max(t, 0.0), 2_147_483_647.0) if t == t else 0.0
    sec = int(t)
    return Time(sec=sec, nanosec=min(int(round((t - sec) * 1e9)), 999_999_999))


def image_to_array(msg: Image, expect: tuple[str, ...] | None = None) -> np.ndarray:
    """Decode an Image into an array of shape (H, W) or (H, W, C), copying the data.

    Args:
        msg: the image message.
        expect: encodings the caller accepts; others raise InputError naming the accepted ones.

    Returns:
        The pixels in the message's own channel order and dtype (rgb8 stays RGB, bgr8 stays BGR).
    """
    enc = msg.encoding
    if enc not in ENCODINGS:
        raise InputError(f"unsupported image encoding {enc!r}; supported: {sorted(ENCODINGS)}")
    if expect is not None and enc not in expect:
        raise InputError(f"image encoding {enc!r} not accepted here; expected one of {list(expect)}")
    h, w = int(msg.height), int(msg.width)
    if h == 0 or w == 0:
        raise InputError(f"empty image ({w}x{h})")
    dtype, ch = ENCODINGS[enc]
    row = w * ch * dtype.itemsize
    if msg.step < row:
        raise InputError(f"image step {msg.step} is smaller than width*channels*itemsize = {row}")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if data.size != msg.step * h:
        raise InputError(f"image data has {data.size} bytes, expected step*height = {msg.step * h}")
    rows = np.asarray(data, dtype=np.uint8).reshape(h, msg.step)[:, :row]
    arr = np.ascontiguousarray(rows).view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    arr = arr.reshape(h, w, ch) if ch > 1 else arr.reshape(h, w)
    return arr.astype(dtype, copy=False)


def array_to_image(arr: np.ndarray, encoding: str, stamp: Time | None = None, frame_id: str = "") -> Image:
    """Encode an array as an Image (little-endian, tightly packed)."""
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise InputError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, ch = ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if (ch == 1 and arr.ndim != 2) or (ch > 1 and (arr.ndim != 3 or arr.shape[2] != ch)):
        raise InputError(f"array of shape {arr.shape} does not fit encoding {encoding!r} ({ch} channel(s))")
    arr = np.ascontiguousarray(arr.astype(dtype.newbyteorder("<"), copy=False))
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1] * ch * dtype.itemsize)
    msg.data = arr.tobytes()
    return msg


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Any colour/mono 8-bit image array → (H, W, 3) uint8 RGB."""
    if encoding in ("rgb8",):
        return arr
    if encoding == "bgr8":
        return arr[:, :, ::-1].copy()
    if encoding in ("rgba8",):
        return arr[:, :, :3].copy()
    if encoding in ("bgra8",):
        return arr[:, :, 2::-1].copy()
    if encoding in ("mono8", "8UC1"):
        return np.repeat(arr[:, :, None], 3, axis=2)
    raise InputError(f"encoding {encoding!r} is not a colour or mono8 image")


def depth_to_metres(arr: np.ndarray, encoding: str) -> np.ndarray:
    """16UC1 (mm, 0 = no data) or 32FC1 (m) depth → float32 metres with NaN for no data."""
    if encoding in ("16UC1", "mono16"):
        d = arr.astype(np.float32) * 1e-3
        d[arr == 0] = np.nan
        return d
    if encoding == "32FC1":
        d = arr.astype(np.float32, copy=True)
        d[~np.isfinite(d) | (d <= 0)] = np.nan
        return d
    raise InputError(f"depth encoding {encoding!r} not supported; use 16UC1 (mm) or 32FC1 (m)")


def metres_to_depth16(depth_m: np.ndarray) -> np.ndarray:
    """float metres (NaN = none) → uint16 millimetres (0 = none), as realsense-ros publishes."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(d * 1000.0), 0, 65535).astype(np.uint16)


#: Encodings :func:`image_to_rgb` decodes (colour and 8-bit mono) and :func:`image_to_depth_m` (mm or m).
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def image_to_rgb(msg: Image) -> np.ndarray:
    """A colour or 8-bit mono Image → (H, W, 3) uint8 RGB; InputError for any other encoding or a bad layout."""
    return to_rgb(image_to_array(msg, expect=COLOR_ENCODINGS), msg.encoding)


def image_to_depth_m(msg: Image) -> np.ndarray:
    """A depth Image (16UC1 / mono16 mm, 32FC1 m) → (H, W) float32 metres, NaN for no data; InputError otherwise."""
    return depth_to_metres(image_to_array(msg, expect=DEPTH_ENCODINGS), msg.encoding)


def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """CameraInfo → CameraModel (uses K; the image is assumed rectified as realsense-ros publishes)."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if msg.width == 0 or msg.height == 0:
        raise InputError("camera_info has zero width or height")
    return CameraModel(K=K, width=int(msg.width), height=int(msg.height))


def model_to_camera_info(cam: CameraModel, stamp: Time | None = None, frame_id: str = "",
                         baseline_m: float = 0.0) -> CameraInfo:
    """CameraModel → CameraInfo with plumb_bob zero distortion, R = I, P = [K | t].

    ``baseline_m`` > 0 describes the right camera of a stereo pair the ROS way: P[0, 3] = -fx·B.
    """
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = cam.width, cam.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = cam.K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    P = np.zeros((3, 4))
    P[:, :3] = cam.K
    P[0, 3] = -cam.fx * baseline_m
    msg.p = P.reshape(-1).tolist()
    return msg


def check_image_matches_info(image: Image, info: CameraInfo) -> None:
    """Raise InputError when the image size disagrees with its camera_info."""
    if (image.width, image.height) != (info.width, info.height):
        raise InputError(
            f"image is {image.width}x{image.height} but camera_info says {info.width}x{info.height}")
