"""A virtual Intel RealSense D435 for tests: pyrealsense2's ``software_device`` with the D435's streams.

Test support, not a driver: :class:`~vs_perception.core.realsense.RealSenseCamera` and the camera node
run against it through the real SDK code path, without hardware. Needs the pyrealsense2 wheel (tests
``pytest.importorskip("pyrealsense2")`` before importing this module).
"""

from __future__ import annotations

import numpy as np
import pyrealsense2 as rs

__all__ = ["SoftwareD435"]


class SoftwareD435:
    """A virtual D435 built on ``rs.software_device``: the real SDK path without hardware.

    It registers a "Stereo Module" (depth z16 + infra1/infra2 y8, depth units 1 mm, an
    ``emitter_enabled`` option) and an "RGB Camera" (rgb8), intrinsics, and the extrinsics the D435
    reports (infra2 at +B along x of infra1, colour at ``color_offset_m`` from depth). Frames are
    injected with :meth:`push`, which goes through ``software_sensor.on_video_frame``.

    Args:
        width, height, fps: one profile for every stream.
        fx: focal length (px) of every stream; principal point at the image centre.
        baseline_m: IR stereo baseline B.
        color_offset_m: x-translation from the depth to the colour optical frame.
        serial_no: the serial number the device reports.
    """

    def __init__(self, width: int = 64, height: int = 48, fps: int = 30, fx: float = 50.0,
                 baseline_m: float = 0.05, color_offset_m: float = 0.015, serial_no: str = "000000000001") -> None:
        self.width, self.height, self.fps = width, height, fps
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.name, "Intel RealSense D435 (software)")
        self.device.register_info(rs.camera_info.serial_number, serial_no)
        self.depth_sensor = self.device.add_sensor("Stereo Module")
        self.color_sensor = self.device.add_sensor("RGB Camera")
        intr = rs.intrinsics()
        intr.width, intr.height, intr.fx, intr.fy = width, height, fx, fx
        intr.ppx, intr.ppy = (width - 1) / 2.0, (height - 1) / 2.0
        intr.model, intr.coeffs = rs.distortion.brown_conrady, [0.0] * 5
        self.profiles: dict[str, rs.video_stream_profile] = {}
        specs = {"depth": (self.depth_sensor, rs.stream.depth, 0, rs.format.z16, 2),
                 "infra1": (self.depth_sensor, rs.stream.infrared, 1, rs.format.y8, 1),
                 "infra2": (self.depth_sensor, rs.stream.infrared, 2, rs.format.y8, 1),
                 "color": (self.color_sensor, rs.stream.color, 0, rs.format.rgb8, 3)}
        for uid, (name, (sensor, stype, index, fmt, bpp)) in enumerate(specs.items()):
            vs = rs.video_stream()
            vs.type, vs.index, vs.uid, vs.fmt, vs.bpp = stype, index, uid, fmt, bpp
            vs.width, vs.height, vs.fps, vs.intrinsics = width, height, fps, intr
            self.profiles[name] = rs.video_stream_profile(sensor.add_video_stream(vs, name in ("depth", "color")))
        self.depth_sensor.add_read_only_option(rs.option.depth_units, 0.001)
        self.depth_sensor.add_option(rs.option.emitter_enabled, rs.option_range(0, 1, 1, 1), True)
        eye = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]

        def extrinsics(tx: float) -> rs.extrinsics:
            e = rs.extrinsics()
            e.rotation, e.translation = eye, [tx, 0.0, 0.0]
            return e

        # infra1 → infra2 is -B (the right imager sits at +B in the left frame); depth is infra1's frame.
        self.profiles["infra1"].register_extrinsics_to(self.profiles["infra2"], extrinsics(-baseline_m))
        self.profiles["depth"].register_extrinsics_to(self.profiles["infra1"], extrinsics(0.0))
        self.profiles["depth"].register_extrinsics_to(self.profiles["color"], extrinsics(color_offset_m))
        self.device.create_matcher(rs.matchers.dlr_c)
        self._frame_number = 0

    def push(self, timestamp_ms: float, color: np.ndarray | None = None, depth_mm: np.ndarray | None = None,
             infra1: np.ndarray | None = None, infra2: np.ndarray | None = None,
             domain: str = "hardware_clock") -> None:
        """Inject one frame per given stream, all with ``timestamp_ms`` (device clock, ``domain``)."""
        self._frame_number += 1
        arrays = {"color": (color, np.uint8), "depth": (depth_mm, np.uint16), "infra1": (infra1, np.uint8),
                  "infra2": (infra2, np.uint8)}
        for name, (arr, dtype) in arrays.items():
            if arr is None:
                continue
            arr = np.ascontiguousarray(arr, dtype=dtype)
            f = rs.software_video_frame()
            f.pixels = arr
            f.stride = int(arr.strides[0])
            f.bpp = int(arr.strides[1])
            f.frame_number = self._frame_number
            f.timestamp = float(timestamp_ms)
            f.domain = getattr(rs.timestamp_domain, domain)
            f.depth_units = 0.001
            f.profile = self.profiles[name]
            (self.color_sensor if name == "color" else self.depth_sensor).on_video_frame(f)
