"""Depth Anything V2 wrapper: the real transformers model class from a small random-weight config."""

from __future__ import annotations

import time

import numpy as np
import pytest
from vs_common.core.errors import ConfigError, InputError, WeightsNotFoundError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vs_perception.core.relative_depth import (  # noqa: E402
    RelativeDepthConfig,
    RelativeDepthEstimator,
    depth_pc_normalize,
    metric_to_relative,
    minmax_normalize,
    network_input_size,
    preprocess,
    sample_at,
)


def _tiny_model():
    torch.manual_seed(0)
    backbone = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                         intermediate_size=64, patch_size=14, image_size=518,
                                         out_features=["stage1", "stage2", "stage3", "stage4"],
                                         reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32],
                                           fusion_hidden_size=16, head_hidden_size=8, reassemble_hidden_size=32,
                                           patch_size=14)
    return transformers.DepthAnythingForDepthEstimation(cfg)


def _image(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_preprocess_multiple_of_14_and_imagenet_stats() -> None:
    assert network_input_size(480, 640, 518) == (518, 700)
    h, w = network_input_size(120, 160, 112)
    assert h % 14 == 0 and w % 14 == 0 and min(h, w) >= 112
    x = preprocess(np.full((120, 160, 3), 255, np.uint8), input_size=112)
    assert x.shape == (1, 3, h, w) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == pytest.approx((1.0 - 0.485) / 0.229, rel=1e-4)


def test_predict_runs_the_real_model_and_reports_time() -> None:
    torch.set_num_threads(1)
    est = RelativeDepthEstimator(_tiny_model(), RelativeDepthConfig(input_size=112))
    img = _image()
    t0 = time.perf_counter()
    res = est.predict(img)
    wall = time.perf_counter() - t0
    assert res.depth.shape == (120, 160) and res.depth.dtype == np.float32
    assert res.disparity.shape == (120, 160)
    assert 0 < res.inference_s <= res.total_s <= wall + 1e-3
    d = res.depth[np.isfinite(res.depth)]
    assert d.min() >= 0.0 and d.max() <= 1.0
    # depth_pc is exactly 1 - minmax(disparity): the largest disparity (closest) maps to 0
    assert res.depth.flat[np.argmax(res.disparity)] == pytest.approx(0.0, abs=1e-6)
    raw = RelativeDepthEstimator(_tiny_model(), RelativeDepthConfig(input_size=112, output="disparity")).predict(img)
    np.testing.assert_allclose(raw.depth, res.disparity, rtol=1e-5, atol=1e-6)
    print(f"tiny DA forward {res.inference_s * 1e3:.1f} ms, total {res.total_s * 1e3:.1f} ms (120x160 → 112x154)")


def test_missing_weights_raise_with_instructions(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError, match="huggingface-cli download"):
        RelativeDepthEstimator.from_pretrained(RelativeDepthConfig(model=str(tmp_path / "nope")))


def test_weights_from_local_folder(tmp_path) -> None:
    model = _tiny_model()
    model.save_pretrained(tmp_path / "da")
    est = RelativeDepthEstimator.from_pretrained(RelativeDepthConfig(model=str(tmp_path / "da"), input_size=28))
    assert est.predict(_image(30, 40)).depth.shape == (30, 40)


def test_bad_images() -> None:
    est = RelativeDepthEstimator(_tiny_model(), RelativeDepthConfig(input_size=28))
    with pytest.raises(InputError, match="black"):
        est.predict(np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(InputError, match="RGB"):
        est.predict(np.zeros((30, 40), np.uint8))
    with pytest.raises(InputError):
        est.predict(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ConfigError, match="depth_pc"):
        RelativeDepthConfig(output="metric")


def test_normalisations() -> None:
    disp = np.array([[4.0, 2.0], [0.0, np.nan]], np.float32)
    d = depth_pc_normalize(disp)
    np.testing.assert_allclose(d[0], [0.0, 0.5])
    assert d[1, 0] == 1.0 and np.isnan(d[1, 1])  # farthest = 1
    z = metric_to_relative(np.array([[0.5, 1.0], [0.0, 1.5]], np.float32))
    np.testing.assert_allclose(z[0], [0.0, 0.5])
    assert np.isnan(z[1, 0]) and z[1, 1] == 1.0
    np.testing.assert_allclose(minmax_normalize(np.array([2.0, 4.0, np.nan, 3.0])), [0, 1, np.nan, 0.5])
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    s = sample_at(img, np.array([[1.5, 1.0], [10.0, 1.0]]))
    assert s[0] == pytest.approx(5.5) and np.isnan(s[1])
