"""StereoSGBM fallback: a synthetic rectified pair with a known disparity gives the known metric depth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from vs_common.core.errors import ConfigError, InputError
from vs_perception.core.stereo_depth import StereoDepthConfig, StereoDepthEstimator, disparity_to_depth

FX, B = 380.0, 0.05


def _pair(shift: int = 12, h: int = 120, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (h, w + shift), dtype=np.uint8), (3, 3), 0)
    # A fronto-parallel plane: the right imager sees every point `shift` px further left.
    left, right = tex[:, :w], tex[:, shift:shift + w]
    return np.ascontiguousarray(left), np.ascontiguousarray(right)


def test_known_disparity_gives_fx_b_over_d() -> None:
    left, right = _pair(shift=12)
    est = StereoDepthEstimator(StereoDepthConfig(num_disparities=32))
    disp = est.disparity(left, right)
    inner = disp[10:-10, 50:-10]
    assert np.nanmedian(inner) == pytest.approx(12.0, abs=0.25)
    z = est.depth(left, right, FX, B)
    assert np.nanmedian(z[10:-10, 50:-10]) == pytest.approx(FX * B / 12.0, rel=0.03)
    assert np.isnan(z[:, :5]).all()  # no match possible at the left border


def test_disparity_to_depth_values_and_invalid() -> None:
    z = disparity_to_depth(np.array([[19.0, 0.0, -1.0, np.nan]]), FX, B)
    assert z[0, 0] == pytest.approx(1.0)
    assert np.isnan(z[0, 1:]).all()
    with pytest.raises(InputError):
        disparity_to_depth(np.ones((2, 2)), FX, 0.0)


def test_bad_inputs() -> None:
    est = StereoDepthEstimator()
    left, right = _pair()
    with pytest.raises(InputError, match="differ"):
        est.disparity(left, right[:, :-2])
    with pytest.raises(InputError, match="black"):
        est.disparity(np.zeros_like(left), right)
    with pytest.raises(InputError, match="mono8"):
        est.disparity(np.dstack([left] * 3), right)
    with pytest.raises(ConfigError):
        StereoDepthConfig(num_disparities=40)
    with pytest.raises(ConfigError, match="sgbm"):
        StereoDepthConfig(mode="bm")
