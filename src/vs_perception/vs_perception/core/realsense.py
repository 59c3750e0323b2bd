"""Intel RealSense (D435) capture through pyrealsense2, shaped after realsense-ros.

The camera is driven at the sensor level (``sensor.open`` / ``sensor.start`` into an ``rs.syncer``), as
realsense-ros does, rather than through ``rs.pipeline``: the same code then runs against a physical
device and against ``rs.software_device`` (the SDK's own virtual camera; the tests' D435 is
:class:`vs_perception.testing.realsense.SoftwareD435`), which is how it is tested without hardware.
Each :meth:`RealSenseCamera.read` returns one :class:`Capture` holding the newest frame of every enabled
stream whose timestamps agree within half a frame period (``enable_sync``).

Conventions (ros2_conventions.md §1):
    colour: (H, W, 3) uint8 RGB; depth / aligned depth: (H, W) uint16 millimetres, 0 = no data;
    infra1 / infra2: (H, W) uint8 (Y8). Stereo baseline B (m) = x-translation of the infra2 → infra1
    extrinsics, so that infra2's projection matrix is P = [K | (-fx·B, 0, 0)ᵀ] as realsense-ros writes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from vs_common.core.camera import CameraModel
from vs_common.core.config import check_range, describe
from vs_common.core.errors import ConfigError, InputError, NotReadyError
from vs_common.core.frames import COLOR_OPTICAL_FRAME, DEPTH_OPTICAL_FRAME, INFRA1_OPTICAL_FRAME, INFRA2_OPTICAL_FRAME

try:  # pyrealsense2 is optional at import time so the rest of core imports on machines without it.
    import pyrealsense2 as rs
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    rs = None

STREAMS = ("color", "depth", "infra1", "infra2")

#: realsense-ros image frame ids for camera_name "camera" (aligned depth lives in the colour frame).
OPTICAL_FRAMES = {
    "color": COLOR_OPTICAL_FRAME,
    "depth": DEPTH_OPTICAL_FRAME,
    "aligned_depth": COLOR_OPTICAL_FRAME,
    "infra1": INFRA1_OPTICAL_FRAME,
    "infra2": INFRA2_OPTICAL_FRAME,
}
#: camera_info frame ids: as images, except that realsense-ros gives infra2's camera_info the infra1
#: frame, the stereo pair's reference, with P[0, 3] = -fx·B.
INFO_FRAMES = {**OPTICAL_FRAMES, "infra2": OPTICAL_FRAMES["infra1"]}

_PROFILE_RE = re.compile(r"^\s*(\d+)\s*[x,]\s*(\d+)\s*[x,]\s*(\d+)\s*$")


def parse_profile(text: str) -> tuple[int, int, int]:
    """Parse a realsense-ros profile string ``"640x480x30"`` (or ``"640,480,30"``) into (w, h, fps)."""
    m = _PROFILE_RE.match(str(text))
    if not m:
        raise ConfigError(f"stream profile {text!r} is not of the form WIDTHxHEIGHTxFPS, e.g. '640x480x30'")
    w, h, fps = (int(g) for g in m.groups())
    if min(w, h, fps) <= 0:
        raise ConfigError(f"stream profile {text!r} must have positive width, height and fps")
    return w, h, fps


#: RealSenseConfig field → the realsense-ros parameter name of the camera node, where they differ.
ROS_PARAMETER_NAMES = {"color_profile": "rgb_camera.color_profile", "depth_profile": "depth_module.depth_profile",
                       "align_depth": "align_depth.enable", "emitter_enabled": "depth_module.emitter_enabled"}


@dataclass(frozen=True)
class RealSenseConfig:
    """Streams and options of the D435, named after the realsense-ros parameters they mirror."""

    serial_no: str = describe("Serial number of the camera to open; empty = the first one found.", default="")
    enable_color: bool = describe("Stream colour (rgb8), as realsense-ros enable_color.", default=True)
    enable_depth: bool = describe("Stream depth (z16, mm), as realsense-ros enable_depth.", default=True)
    enable_infra1: bool = describe("Stream the left IR imager (y8).", default=False)
    enable_infra2: bool = describe("Stream the right IR imager (y8).", default=False)
    color_profile: str = describe("Colour WIDTHxHEIGHTxFPS (rgb_camera.color_profile).", default="640x480x30")
    depth_profile: str = describe("Depth/IR WIDTHxHEIGHTxFPS (depth_module.depth_profile).", default="640x480x30")
    align_depth: bool = describe("Also output depth aligned to colour with rs.align (align_depth.enable).",
                                 default=False)
    emitter_enabled: int = describe("IR projector: 1 on, 0 off (depth_module.emitter_enabled). Turn it off "
                                    "when IR images feed keypoint matching: the dots make false features.",
                                    default=1)
    timeout_s: float = describe("How long read() waits for a complete synchronised capture (s).", default=1.0)

    def __post_init__(self) -> None:
        parse_profile(self.color_profile)
        parse_profile(self.depth_profile)
        if self.emitter_enabled not in (0, 1):
            raise ConfigError(f"emitter_enabled={self.emitter_enabled!r} is not valid; choose one of [0, 1]")
        check_range("timeout_s", self.timeout_s, 0.0, None, lo_open=True)
        if not (self.enable_color or self.enable_depth or self.enable_infra1 or self.enable_infra2):
            raise ConfigError("enable at least one of enable_color, enable_depth, enable_infra1, enable_infra2")
        if self.align_depth and not (self.enable_color and self.enable_depth):
            raise ConfigError("align_depth needs enable_color and enable_depth")

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the enabled streams, in :data:`STREAMS` order."""
        flags = {"color": self.enable_color, "depth": self.enable_depth, "infra1": self.enable_infra1,
                 "infra2": self.enable_infra2}
        return tuple(s for s in STREAMS if flags[s])


@dataclass
class Capture:
    """One synchronised set of frames; absent streams are None.

    Shapes: colour (H, W, 3) uint8 RGB; depth and aligned_depth (H, W) uint16 mm (0 = invalid), aligned
    depth has the colour image's size; infra1 / infra2 (H, W) uint8.
    ``stamp`` is the capture time in seconds on the system clock (see :class:`TimestampMapper`);
    ``device_timestamp_ms`` and ``timestamp_domain`` are the SDK's raw values, per stream.
    """

    stamp: float
    color: np.ndarray | None = None
    depth: np.ndarray | None = None
    aligned_depth: np.ndarray | None = None
    infra1: np.ndarray | None = None
    infra2: np.ndarray | None = None
    frame_number: dict[str, int] = field(default_factory=dict)
    device_timestamp_ms: dict[str, float] = field(default_factory=dict)
    timestamp_domain: str = ""


class TimestampMapper:
    """Device timestamps (ms) → system seconds, as realsense-ros' ``frameSystemTimeSec``.

    Global-time and system-time domains already are on the host clock. The hardware clock is anchored
    once, at the first frame, to the host clock and then advanced by device time only, so stamps keep
    the camera's exact frame spacing instead of USB arrival jitter.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._anchor: tuple[float, float] | None = None  # (device ms, host s)

    def __call__(self, device_ms: float, domain: str) -> float:
        if domain in ("global_time", "system_time"):
            return float(device_ms) * 1e-3
        if self._anchor is None:
            self._anchor = (float(device_ms), self._clock())
        dev0, host0 = self._anchor
        return host0 + (float(device_ms) - dev0) * 1e-3


def _require_rs() -> None:
    if rs is None:
        raise NotReadyError("pyrealsense2 is not installed; pip install pyrealsense2 (needs Debian's libusb-1.0-0)")


def list_devices(ctx: rs.context | None = None) -> list[tuple[str, str]]:
    """(serial number, name) of every RealSense device the SDK sees."""
    _require_rs()
    ctx = ctx if ctx is not None else rs.context()
    return [(d.get_info(rs.camera_info.serial_number), d.get_info(rs.camera_info.name)) for d in ctx.query_devices()]


def find_device(serial_no: str = "", ctx: rs.context | None = None) -> rs.device:
    """The device with ``serial_no`` (or the first one), else NotReadyError naming the serials found."""
    _require_rs()
    ctx = ctx if ctx is not None else rs.context()
    devices = list(ctx.query_devices())
    serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
    if not devices:
        raise NotReadyError("no RealSense device found (check the USB 3 cable and the udev rules)")
    if not serial_no:
        return devices[0]
    for d, s in zip(devices, serials):
        if s == serial_no:
            return d
    raise NotReadyError(f"no RealSense device with serial {serial_no!r}; devices found: {serials}")


def intrinsics_to_camera(intr: rs.intrinsics) -> CameraModel:
    """rs2 intrinsics → CameraModel (K from fx, fy, ppx, ppy, as realsense-ros builds camera_info)."""
    K = np.array([[intr.fx, 0.0, intr.ppx], [0.0, intr.fy, intr.ppy], [0.0, 0.0, 1.0]])
    return CameraModel(K=K, width=int(intr.width), height=int(intr.height))


def stereo_baseline_m(infra1_profile: rs.stream_profile, infra2_profile: rs.stream_profile) -> float:
    """Baseline B (m) of the IR pair: x-translation of the infra2 → infra1 extrinsics (B > 0 on a D435)."""
    return float(infra2_profile.get_extrinsics_to(infra1_profile).translation[0])


def projection_matrix(cam: CameraModel, baseline_m: float = 0.0) -> np.ndarray:
    """(3, 4) P = [K | t] with t = (-fx·B, 0, 0), the right camera of a rectified pair (0 for others)."""
    P = np.zeros((3, 4))
    P[:, :3] = cam.K
    P[0, 3] = -cam.fx * baseline_m + 0.0  # + 0.0 avoids publishing -0.0, as realsense-ros does
    return P


def _key(stream: str) -> tuple:
    return {"color": (rs.stream.color, 0), "depth": (rs.stream.depth, 0), "infra1": (rs.stream.infrared, 1),
            "infra2": (rs.stream.infrared, 2)}[stream]


_FORMATS = {"color": "rgb8", "depth": "z16", "infra1": "y8", "infra2": "y8"}


class RealSenseCamera:
    """A D435 (or any device with the same streams, e.g. an ``rs.software_device``) as numpy captures.

    Args:
        config: streams and options.
        device: an opened ``rs.device``; None looks one up by ``config.serial_no``.
        clock: host clock for hardware-timestamp anchoring (seconds).
    """

    def __init__(self, config: RealSenseConfig | None = None, device: rs.device | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        _require_rs()
        self.config = config or RealSenseConfig()
        self.device = device if device is not None else find_device(self.config.serial_no)
        self._to_stamp = TimestampMapper(clock)
        self._profiles: dict[str, rs.video_stream_profile] = {}
        self._sensors: dict[str, rs.sensor] = {}
        self._syncer: rs.syncer | None = None
        self._latest: dict[str, rs.frame] = {}
        self._lock = threading.Lock()
        self._align = rs.align(rs.stream.color) if self.config.align_depth else None
        self._select_profiles()

    # -- set-up -------------------------------------------------------------------------------------
    def _select_profiles(self) -> None:
        wanted = {}
        for s in self.config.enabled:
            w, h, fps = parse_profile(self.config.color_profile if s == "color" else self.config.depth_profile)
            wanted[s] = (w, h, fps, getattr(rs.format, _FORMATS[s]))
        offered = []
        for sensor in self.device.query_sensors():
            for p in sensor.get_stream_profiles():
                if not p.is_video_stream_profile():
                    continue
                vp = p.as_video_stream_profile()
                offered.append(f"{vp.stream_name()} {vp.width()}x{vp.height()}x{vp.fps()} {vp.format()}")
                for s, (w, h, fps, fmt) in wanted.items():
                    if s in self._profiles:
                        continue
                    if ((vp.stream_type(), vp.stream_index()) == _key(s) and (vp.width(), vp.height()) == (w, h)
                            and vp.fps() == fps and vp.format() == fmt):
                        self._profiles[s] = vp
                        self._sensors[s] = sensor
        missing = sorted(set(wanted) - set(self._profiles))
        if missing:
            raise InputError(f"the camera offers no profile for {missing} as configured "
                             f"(color {self.config.color_profile}, depth {self.config.depth_profile}); "
                             f"offered: {sorted(set(offered))}")

    @property
    def serial_no(self) -> str:
        return self.device.get_info(rs.camera_info.serial_number)

    def camera_model(self, stream: str) -> CameraModel:
        """Intrinsics of an enabled stream ("color", "depth", "infra1", "infra2", or "aligned_depth")."""
        key = "color" if stream == "aligned_depth" else stream
        if key not in self._profiles:
            raise NotReadyError(f"stream {stream!r} is not enabled; enabled: {list(self._profiles)}")
        return intrinsics_to_camera(self._profiles[key].get_intrinsics())

    def pose_in_color(self, stream: str) -> np.ndarray:
        """(4, 4) pose of an enabled stream's optical frame in the colour optical frame (the SDK's extrinsics).

        Raises:
            NotReadyError: the stream or colour is not enabled.
        """
        if stream not in self._profiles or "color" not in self._profiles:
            raise NotReadyError(f"extrinsics need {stream!r} and 'color' enabled; enabled: {list(self._profiles)}")
        e = self._profiles[stream].get_extrinsics_to(self._profiles["color"])  # p_color = R p_stream + t
        T = np.eye(4)
        T[:3, :3] = np.asarray(e.rotation, float).reshape(3, 3).T  # the SDK stores R column-major
        T[:3, 3] = e.translation
        return T

    @property
    def baseline_m(self) -> float:
        """IR stereo baseline (m); needs infra1 and infra2 enabled."""
        if not {"infra1", "infra2"} <= set(self._profiles):
            raise NotReadyError("the stereo baseline needs enable_infra1 and enable_infra2")
        return stereo_baseline_m(self._profiles["infra1"], self._profiles["infra2"])

    def _depth_sensor(self) -> rs.sensor:
        for s in self.device.query_sensors():
            if s.is_depth_sensor():
                return s
        raise NotReadyError("the device has no depth sensor")

    def set_emitter(self, enabled: bool) -> None:
        """Switch the IR projector (depth sensor option ``emitter_enabled``)."""
        sensor = self._depth_sensor()
        if not sensor.supports(rs.option.emitter_enabled):
            raise NotReadyError("this depth sensor has no emitter_enabled option")
        sensor.set_option(rs.option.emitter_enabled, 1.0 if enabled else 0.0)

    @property
    def emitter_enabled(self) -> bool:
        return bool(self._depth_sensor().get_option(rs.option.emitter_enabled))

    def start(self) -> None:
        """Open the sensors with the selected profiles and start streaming into the SDK's syncer."""
        if self._syncer is not None:
            return
        by_sensor: dict[int, tuple[rs.sensor, list]] = {}
        for s, prof in self._profiles.items():
            sensor = self._sensors[s]
            by_sensor.setdefault(id(sensor), (sensor, []))[1].append(prof)
        self._syncer = rs.syncer(8)
        self._opened = []
        for sensor, profs in by_sensor.values():
            sensor.open(profs)
            sensor.start(self._syncer)
            self._opened.append(sensor)
        if self.config.enable_depth or self.config.enable_infra1 or self.config.enable_infra2:
            try:
                self.set_emitter(bool(self.config.emitter_enabled))
            except NotReadyError:
                pass  # a device without a projector (or a software device without the option) still streams

    def stop(self) -> None:
        """Stop and close the sensors (safe to call twice)."""
        for sensor in getattr(self, "_opened", []):
            try:
                sensor.stop()
                sensor.close()
            except RuntimeError:
                pass
        self._opened = []
        self._syncer = None
        self._latest.clear()

    def __enter__(self) -> RealSenseCamera:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- capture ------------------------------------------------------------------------------------
    def _stream_of(self, frame: rs.frame) -> str | None:
        prof = frame.get_profile()
        key = (prof.stream_type(), prof.stream_index())
        for s in self._profiles:
            if _key(s) == key:
                return s
        return None

    def _complete(self) -> bool:
        if set(self._latest) != set(self._profiles):
            return False
        ts = [f.get_timestamp() for f in self._latest.values()]
        fps = max(p.fps() for p in self._profiles.values())
        # Same criterion as the SDK's timestamp matcher: equal within half the shortest frame period.
        return max(ts) - min(ts) < 0.5 * 1000.0 / fps

    def read(self, timeout_s: float | None = None) -> Capture:
        """The next capture with every enabled stream, or NotReadyError after ``timeout_s``.

        ``timeout_s=0`` polls: it returns a capture only when one is already complete.
        """
        if self._syncer is None:
            raise NotReadyError("camera not started; call start() first")
        timeout_s = self.config.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000))
                ok, fs = self._syncer.try_wait_for_frames(left_ms) if left_ms > 0 else self._poll()
                if ok and fs is not None:
                    for f in fs:
                        s = self._stream_of(f)
                        if s is not None:
                            f.keep()  # the syncer recycles frames; we hold them across calls
                            self._latest[s] = f
                    if self._complete():
                        frames, self._latest = self._latest, {}
                        return self._to_capture(frames)
                elif time.monotonic() >= deadline:
                    got = sorted(self._latest)
                    raise NotReadyError(f"no complete capture within {timeout_s:.3f} s "
                                        f"(have {got}, need {sorted(self._profiles)})")

    def _poll(self) -> tuple[bool, rs.composite_frame | None]:
        assert self._syncer is not None  # wait_for_frames checked it
        fs = self._syncer.poll_for_frames()
        return (bool(fs), fs if fs else None)

    def _aligned(self, frames: dict[str, rs.frame]) -> np.ndarray:
        # rs.align works on a frameset: bundle our matched depth and colour into one with a processing block.
        pair = [frames["depth"], frames["color"]]
        queue = rs.frame_queue(1)
        block = rs.processing_block(lambda f, src: src.frame_ready(src.allocate_composite_frame(pair)))
        block.start(queue)
        block.invoke(pair[0])
        fs = queue.wait_for_frame(1000).as_frameset()
        assert self._align is not None  # made by start() whenever aligned depth is captured
        depth = self._align.process(fs).get_depth_frame()
        return self._depth_mm(depth)

    @staticmethod
    def _depth_mm(frame: rs.depth_frame) -> np.ndarray:
        raw = np.asanyarray(frame.get_data()).copy()
        units = float(frame.get_units())
        if abs(units - 1e-3) > 1e-9:  # realsense-ros rescales non-mm depth units to mm (16UC1 is mm)
            raw = np.clip(np.round(raw.astype(np.float64) * units * 1e3), 0, 65535).astype(np.uint16)
        return raw

    def _to_capture(self, frames: dict[str, rs.frame]) -> Capture:
        ref = frames["color"] if "color" in frames else frames.get("depth", next(iter(frames.values())))
        domain = str(ref.get_frame_timestamp_domain()).split(".")[-1]
        cap = Capture(stamp=self._to_stamp(ref.get_timestamp(), domain), timestamp_domain=domain)
        for s, f in frames.items():
            cap.frame_number[s] = int(f.get_frame_number())
            cap.device_timestamp_ms[s] = float(f.get_timestamp())
            if s == "depth":
                cap.depth = self._depth_mm(f.as_depth_frame())
            else:
                setattr(cap, s, np.asanyarray(f.get_data()).copy())
        if self._align is not None:
            cap.aligned_depth = self._aligned(frames)
        return cap
