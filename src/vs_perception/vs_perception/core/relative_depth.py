"""Relative depth for Depth-PC: Depth Anything V2 through ``transformers``, with metric fallbacks.

Depth Anything V2 (Yang et al., 2024) predicts a *relative inverse depth* (affine-invariant disparity:
larger = closer, ReLU'd, no unit). Depth-PC (kovis_depthpc_kp2d_notes.md §2.5) uses it as follows, and
so does this module:

1. pre-processing (``infer_image``): RGB / 255, resize keeping the aspect ratio so that the *shorter*
   side is ``input_size`` (518) and both sides are multiples of 14 (bicubic), ImageNet mean/std;
2. the prediction is resized bilinearly back to the input H×W;
3. ``process_depth``: min-max over the whole image and inverted, ``d = 1 - (s - min) / (max - min)``, so
   that larger = farther, in [0, 1] (Depth-PC also quantises to uint8; we keep float32);
4. at keypoints, a second per-frame min-max over the sampled values (§2.3) — :func:`minmax_normalize`.

What this module outputs (``output`` in the config):
    ``"depth_pc"`` (default): step 3's image, float32 in [0, 1], unitless, larger = farther.
    ``"disparity"``: the raw network output resized to H×W (relative inverse depth, larger = closer).
The metric fallbacks (camera depth, IR stereo) go through the same step 3 applied to Z (min-max of Z,
larger = farther), so a consumer sees the same convention whatever the source.

Weights are never downloaded: :meth:`RelativeDepthEstimator.from_pretrained` reads a local folder or the
Hugging Face cache with ``local_files_only=True`` and raises :class:`WeightsNotFoundError` otherwise.
Only Depth-Anything-V2-**Small** is Apache-2.0 (Base/Large are CC-BY-NC-4.0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, InputError, WeightsNotFoundError

DEFAULT_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
OUTPUTS = ("depth_pc", "disparity")
#: Where the relative_depth node's maps come from (:class:`RelativeDepthNodeConfig`).
SOURCES = ("depth_anything", "aligned", "sgbm")


@dataclass(frozen=True)
class RelativeDepthConfig:
    """Depth Anything V2 inference settings."""

    model: str = describe("Local folder with config.json + weights, or a hub id looked up in the local HF cache "
                          "only (never downloaded).", default=DEFAULT_MODEL)
    input_size: int = describe("Shorter side of the network input (px), rounded to a multiple of 14 (DA: 518).",
                               default=518)
    output: str = describe("'depth_pc': 1 - minmax(disparity) in [0, 1], larger = farther (Depth-PC); "
                           "'disparity': raw relative inverse depth, larger = closer.", default="depth_pc")
    num_threads: int = describe("torch CPU threads for inference (0 = leave torch's default).", default=0)

    def __post_init__(self) -> None:
        check_range("input_size", self.input_size, 14, 4096)
        check_choice("output", self.output, OUTPUTS)
        check_range("num_threads", self.num_threads, 0, 256)


@dataclass(frozen=True)
class RelativeDepthNodeConfig:
    """Which relative-depth source the relative_depth node runs (vs_perception.nodes.relative_depth_node)."""

    source: str = describe("'depth_anything' (colour → DA V2), 'aligned' (the camera's aligned depth), 'sgbm' "
                           "(IR pair → StereoSGBM, needs the infra streams).", default="depth_anything")
    fallback: str = describe("Source used when Depth Anything weights are missing: 'aligned', 'sgbm' or "
                             "'none' (fail).", default="aligned")
    color_t_ir: tuple[float, ...] = describe(
        "sgbm: infra1's optical centre in the colour optical frame (m; same orientation assumed): 0 in the "
        "simulated cell, a D435's factory extrinsics (~15 mm along x) on the real camera.", default=(0.0, 0.0, 0.0))
    log_every: int = describe("Log the mean latency and dropped frames every N maps (0 = never).", default=30)
    model: RelativeDepthConfig = describe("Depth Anything V2 (source depth_anything).",
                                          default_factory=RelativeDepthConfig)

    def __post_init__(self) -> None:
        check_choice("source", self.source, SOURCES)
        check_choice("fallback", self.fallback, ("none", "aligned", "sgbm"))
        if len(self.color_t_ir) != 3 or not np.all(np.isfinite(self.color_t_ir)):
            raise ConfigError(f"color_t_ir={list(self.color_t_ir)} must be 3 finite numbers (m)")
        check_range("log_every", self.log_every, 0)


def check_rgb(image: np.ndarray) -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB image: InputError for wrong shape/dtype, empty or all-black input."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    if image.shape[0] < 14 or image.shape[1] < 14:
        raise InputError(f"image {image.shape[1]}x{image.shape[0]} is too small (min 14x14)")
    if int(image.max()) == 0:
        raise InputError("image is all black (lens cap, exposure or a dead stream?)")
    return image


def network_input_size(height: int, width: int, input_size: int = 518, multiple: int = 14) -> tuple[int, int]:
    """(h, w) of the network input: shorter side ≥ ``input_size``, aspect kept, both multiples of 14.

    Mirrors DA's ``Resize(keep_aspect_ratio=True, ensure_multiple_of=14, resize_method="lower_bound")``.
    """
    scale = max(input_size / height, input_size / width)
    h = max(multiple, int(np.ceil(height * scale / multiple)) * multiple)
    w = max(multiple, int(np.ceil(width * scale / multiple)) * multiple)
    return h, w


def preprocess(image: np.ndarray, input_size: int = 518) -> np.ndarray:
    """RGB uint8 (H, W, 3) → normalised network input (1, 3, h, w) float32 (bicubic, ImageNet stats)."""
    image = check_rgb(image)
    h, w = network_input_size(image.shape[0], image.shape[1], input_size)
    x = cv2.resize(image.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_CUBIC)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def depth_pc_normalize(disparity: np.ndarray) -> np.ndarray:
    """Depth-PC's ``process_depth`` without quantisation: 1 - minmax(disparity), in [0, 1], larger = farther.

    NaN stays NaN; a constant image maps to 0.
    """
    d = np.asarray(disparity, dtype=np.float32)
    finite = np.isfinite(d)
    if not finite.any():
        raise InputError("relative depth has no finite value")
    lo, hi = float(d[finite].min()), float(d[finite].max())
    span = hi - lo
    out = np.zeros_like(d) if span <= 0 else 1.0 - (d - lo) / span
    out[~finite] = np.nan
    return out.astype(np.float32)


def metric_to_relative(depth_m: np.ndarray) -> np.ndarray:
    """Metric Z (m, NaN/0 = invalid) → min-max(Z) in [0, 1], larger = farther (the fallback convention)."""
    z = np.asarray(depth_m, dtype=np.float32).copy()
    z[~np.isfinite(z) | (z <= 0)] = np.nan
    if not np.isfinite(z).any():
        raise InputError("depth image has no valid pixel")
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    return ((z - lo) / (hi - lo) if hi > lo else np.zeros_like(z)).astype(np.float32)


def sample_at(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples of a (H, W) float image at pixels (N, 2) (u, v); NaN outside or at NaN pixels."""
    uv = np.asarray(uv, dtype=np.float32).reshape(-1, 2)
    img = np.asarray(image, dtype=np.float32)
    if len(uv) == 0:
        return np.zeros(0, np.float32)
    vals = cv2.remap(img, uv[:, 0:1].copy(), uv[:, 1:2].copy(), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)[:, 0]
    return vals.astype(np.float32)


def minmax_normalize(values: np.ndarray) -> np.ndarray:
    """Per-frame min-max over keypoint depths (Depth-PC §2.3): (v - min) / (max - min); NaN stays NaN."""
    v = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(v)
    out = np.full_like(v, np.nan)
    if finite.any():
        lo, hi = v[finite].min(), v[finite].max()
        out[finite] = (v[finite] - lo) / (hi - lo) if hi > lo else 0.0
    return out


@dataclass
class RelativeDepthResult:
    """One prediction. ``depth`` is (H, W) float32 in the config's ``output`` convention; ``disparity`` is
    the raw network output resized to (H, W); ``inference_s`` is the model forward time, ``total_s``
    includes pre- and post-processing (CPU wall clock)."""

    depth: np.ndarray
    disparity: np.ndarray
    inference_s: float
    total_s: float


class RelativeDepthEstimator:
    """Depth Anything (V2) ``DepthAnythingForDepthEstimation`` with numpy/cv2 pre- and post-processing.

    Args:
        model: a ``transformers`` DepthAnythingForDepthEstimation (already loaded).
        config: inference settings.
    """

    def __init__(self, model, config: RelativeDepthConfig | None = None) -> None:  # noqa: ANN001 (torch module)
        import torch

        self.config = config or RelativeDepthConfig()
        self.model = model.eval()
        self._torch = torch
        if self.config.num_threads > 0:
            torch.set_num_threads(self.config.num_threads)

    @classmethod
    def from_pretrained(cls, config: RelativeDepthConfig | None = None) -> RelativeDepthEstimator:
        """Load weights from ``config.model`` (a folder, or a hub id in the local cache); never downloads."""
        from transformers import DepthAnythingForDepthEstimation

        config = config or RelativeDepthConfig()
        source = config.model
        if Path(source).expanduser().is_dir():
            source = str(Path(source).expanduser())
        try:
            model = DepthAnythingForDepthEstimation.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as err:
            raise WeightsNotFoundError(
                f"Depth Anything weights {config.model!r} are not available locally ({type(err).__name__}). "
                "Either point `model` at a folder holding config.json and model.safetensors, or fill the "
                "Hugging Face cache on a machine with internet: `huggingface-cli download "
                f"{DEFAULT_MODEL}` and copy ~/.cache/huggingface to this machine (set HF_HUB_OFFLINE=1). "
                "Or use the camera / stereo depth fallback.") from err
        return cls(model, config)

    def predict(self, image: np.ndarray) -> RelativeDepthResult:
        """Relative depth of an (H, W, 3) uint8 RGB image; see the module docstring for the convention."""
        t0 = time.perf_counter()
        image = check_rgb(image)
        x = self._torch.from_numpy(preprocess(image, self.config.input_size))
        t1 = time.perf_counter()
        with self._torch.inference_mode():
            pred = self.model(pixel_values=x).predicted_depth  # (1, h, w) relative inverse depth
        t2 = time.perf_counter()
        disp = pred[0].float().numpy()
        disp = cv2.resize(disp, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        depth = depth_pc_normalize(disp) if self.config.output == "depth_pc" else disp.astype(np.float32)
        return RelativeDepthResult(depth=depth, disparity=disp.astype(np.float32), inference_s=t2 - t1,
                                   total_s=time.perf_counter() - t0)
