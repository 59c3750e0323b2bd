"""RealSenseCamera against pyrealsense2's own software device: real SDK code path, no hardware."""

from __future__ import annotations

import numpy as np
import pytest
from vs_common.core.errors import ConfigError, InputError, NotReadyError

rs = pytest.importorskip("pyrealsense2")

from vs_perception.core.realsense import (  # noqa: E402
    RealSenseCamera,
    RealSenseConfig,
    TimestampMapper,
    find_device,
    parse_profile,
    projection_matrix,
)
from vs_perception.testing.realsense import SoftwareD435  # noqa: E402

W, H, FPS, FX = 64, 48, 30, 50.0


def _all_streams(**kw) -> RealSenseConfig:
    return RealSenseConfig(enable_infra1=True, enable_infra2=True, color_profile=f"{W}x{H}x{FPS}",
                           depth_profile=f"{W}x{H}x{FPS}", **kw)


def _push(dev: SoftwareD435, k: int, depth_mm: int = 1000) -> None:
    rng = np.random.default_rng(k)
    dev.push(1000.0 + k * 1000.0 / FPS,
             color=np.full((H, W, 3), 30 + k, np.uint8),
             depth_mm=np.full((H, W), depth_mm, np.uint16),
             infra1=rng.integers(0, 255, (H, W), dtype=np.uint8),
             infra2=np.full((H, W), 20 + k, np.uint8))


def test_capture_all_streams_through_the_sdk() -> None:
    dev = SoftwareD435(W, H, FPS, FX)
    cam = RealSenseCamera(_all_streams(), device=dev.device, clock=lambda: 500.0)
    with cam:
        for k in range(3):
            _push(dev, k)
        cap = cam.read(timeout_s=2.0)
    assert cap.color.shape == (H, W, 3) and cap.color.dtype == np.uint8
    assert cap.depth.dtype == np.uint16 and cap.depth.shape == (H, W)
    assert cap.infra1.shape == (H, W) and cap.infra2.dtype == np.uint8
    # every stream of one capture comes from the same instant
    assert len(set(cap.device_timestamp_ms.values())) == 1
    k = cap.frame_number["color"] - 1
    assert cap.color[0, 0, 0] == 30 + k and cap.infra2[0, 0] == 20 + k
    assert np.all(cap.depth == 1000)
    assert cap.timestamp_domain == "hardware_clock"


def test_intrinsics_baseline_and_infra2_projection() -> None:
    dev = SoftwareD435(W, H, FPS, FX, baseline_m=0.05)
    cam = RealSenseCamera(_all_streams(), device=dev.device)
    model = cam.camera_model("infra2")
    assert model.fx == pytest.approx(FX) and (model.width, model.height) == (W, H)
    assert cam.baseline_m == pytest.approx(0.05, abs=1e-6)
    P = projection_matrix(model, cam.baseline_m)
    assert P[0, 3] == pytest.approx(-FX * 0.05, rel=1e-5)  # realsense-ros: P[3] = -fx·B
    assert projection_matrix(cam.camera_model("infra1"))[0, 3] == 0.0


def test_aligned_depth_goes_through_rs_align() -> None:
    # colour 25 mm beside depth, plane at 0.5 m, fx 50 → a 2.5 px shift: one edge of the aligned image is empty
    dev = SoftwareD435(W, H, FPS, FX, color_offset_m=0.025)
    cam = RealSenseCamera(_all_streams(align_depth=True), device=dev.device)
    with cam:
        for k in range(3):
            _push(dev, k, depth_mm=500)
        cap = cam.read(timeout_s=2.0)
    a = cap.aligned_depth
    assert a.shape == (H, W)
    assert set(np.unique(a)) <= {0, 500}
    assert np.mean(a[:, W // 2] == 500) > 0.9  # rs.align splats pixels forward and may leave pin holes
    left_empty, right_empty = np.all(a[:, :2] == 0), np.all(a[:, -2:] == 0)
    assert left_empty != right_empty  # shifted by the extrinsics, not a copy of the raw depth
    assert not np.array_equal(a, cap.depth)


def test_emitter_switch() -> None:
    dev = SoftwareD435(W, H, FPS, FX)
    cam = RealSenseCamera(_all_streams(emitter_enabled=0), device=dev.device)
    with cam:
        assert cam.emitter_enabled is False
        cam.set_emitter(True)
        assert cam.emitter_enabled is True


def test_timeout_names_missing_streams() -> None:
    dev = SoftwareD435(W, H, FPS, FX)
    cam = RealSenseCamera(_all_streams(), device=dev.device)
    with cam:
        dev.push(1000.0, color=np.zeros((H, W, 3), np.uint8))
        with pytest.raises(NotReadyError, match="infra2"):
            cam.read(timeout_s=0.2)


def test_read_before_start_and_unknown_profile() -> None:
    dev = SoftwareD435(W, H, FPS, FX)
    cam = RealSenseCamera(_all_streams(), device=dev.device)
    with pytest.raises(NotReadyError):
        cam.read(0.1)
    with pytest.raises(InputError, match="offered"):
        RealSenseCamera(RealSenseConfig(color_profile="1280x720x30"), device=dev.device)


def test_no_device_error_lists_serials() -> None:
    with pytest.raises(NotReadyError, match="RealSense"):
        find_device("123", ctx=rs.context())


def test_config_validation() -> None:
    assert parse_profile("640x480x30") == (640, 480, 30)
    assert parse_profile("848,480,15") == (848, 480, 15)
    with pytest.raises(ConfigError):
        RealSenseConfig(color_profile="640x480")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        RealSenseConfig(emitter_enabled=3)
    with pytest.raises(ConfigError):
        RealSenseConfig(enable_color=False, align_depth=True)


def test_timestamp_mapper() -> None:
    t = iter([100.0, 999.0])
    m = TimestampMapper(clock=lambda: next(t))
    assert m(5000.0, "hardware_clock") == pytest.approx(100.0)
    assert m(5033.0, "hardware_clock") == pytest.approx(100.033)  # device spacing, not host arrival
    assert m(1.7e12, "global_time") == pytest.approx(1.7e9)


def test_shipped_camera_yaml_is_a_valid_config() -> None:
    import yaml
    from vs_common.core.config import from_mapping
    from vs_perception.core.realsense import ROS_PARAMETER_NAMES

    path = __import__("pathlib").Path(__file__).resolve().parents[3] / "config" / "camera.yaml"
    params = yaml.safe_load(path.read_text())["camera"]["camera"]["ros__parameters"]

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    field_of = {ros: f for f, ros in ROS_PARAMETER_NAMES.items()}  # realsense-ros names in the file
    cfg = from_mapping(RealSenseConfig, {field_of.get(k, k): v for k, v in flat(params).items()})
    assert cfg.align_depth is True and cfg.color_profile == "640x480x30" and cfg.emitter_enabled == 1
