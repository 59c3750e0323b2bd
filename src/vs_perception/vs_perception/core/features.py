"""Classic local features (SIFT, ORB, AKAZE) behind one extractor interface.

The observer detects keypoints on the goal image once and on every current image; the detector is a
configuration choice because CNS and Depth-PC evaluate with AKAZE and SIFT, and ORB is the cheap
binary option. All three come from OpenCV; in OpenCV 5 AKAZE moved to the contrib module
``cv2.xfeatures2d`` while 4.x has it in the main namespace, so :func:`create_detector` looks in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, InputError

__all__ = ["DETECTORS", "FeatureConfig", "FeatureExtractor", "Features", "create_detector", "to_gray"]

DETECTORS = ("sift", "orb", "akaze")

# ORB needs a keypoint budget up front; this is its budget when the config says "unlimited".
_ORB_UNLIMITED = 5000


@dataclass(frozen=True)
class FeatureConfig:
    """Keypoint detector settings."""

    detector: str = describe("Keypoint detector and descriptor: sift, orb or akaze.", default="akaze")
    max_keypoints: int = describe(
        "Keep at most this many keypoints, strongest response first (0 = no limit).", default=1000)
    detect_scale: float = describe(
        "Detect on the image resized by this factor (0.5 = half width and height, about a quarter of the "
        "cost); keypoints are returned in full-image pixels. 1 = full resolution.", default=1.0)

    def __post_init__(self) -> None:
        check_choice("detector", self.detector, DETECTORS)
        check_range("max_keypoints", self.max_keypoints, 0)
        check_range("detect_scale", self.detect_scale, 0.1, 1.0)


@dataclass
class Features:
    """Keypoints and descriptors of one image.

    Shapes: N keypoints.
        uv: (N, 2) float64 pixel coordinates (u right, v down; OpenCV convention).
        response: (N,) float64 detector response (larger = stronger).
        descriptors: (N, D) float32 (SIFT) or (N, B) uint8 packed bits (ORB, AKAZE).
        binary: True when descriptors are bit strings compared with the Hamming distance.
    """

    uv: np.ndarray
    response: np.ndarray
    descriptors: np.ndarray
    binary: bool

    def __len__(self) -> int:
        return len(self.uv)


def create_detector(name: str, max_keypoints: int = 0) -> cv2.Feature2D:
    """Build an OpenCV ``Feature2D`` for ``name`` (``sift``, ``orb`` or ``akaze``).

    Raises:
        ConfigError: unknown name, or AKAZE missing from this OpenCV build (needs opencv-contrib in 5.x).
    """
    check_choice("detector", name, DETECTORS)
    if name == "sift":
        return cv2.SIFT_create(nfeatures=max_keypoints)
    if name == "orb":
        return cv2.ORB_create(nfeatures=max_keypoints or _ORB_UNLIMITED)
    factory = getattr(cv2, "AKAZE_create", None)
    if factory is None and hasattr(cv2, "xfeatures2d"):
        factory = getattr(cv2.xfeatures2d, "AKAZE_create", None)
    if factory is None:
        raise ConfigError(
            f"AKAZE is not available in OpenCV {cv2.__version__}: install opencv-contrib-python-headless "
            "(OpenCV 5 moved AKAZE to cv2.xfeatures2d); valid detectors here are sift, orb")
    return factory()


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) or grey (H, W) uint8 → grey (H, W) uint8, after validating the input.

    Raises:
        InputError: wrong dtype or shape, empty, or all one value (a black frame carries no features).
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, got {image.dtype}")
    if image.size == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim == 2:
        gray = image
    else:
        raise InputError(f"image must be (H, W, 3) RGB or (H, W) grey, got shape {image.shape}")
    if int(gray.max()) == int(gray.min()):
        raise InputError(f"image is uniform (all pixels = {int(gray.max())}): no camera data")
    return gray


class FeatureExtractor:
    """Detect and describe keypoints with one OpenCV detector.

    Example:
        >>> fx = FeatureExtractor(FeatureConfig(detector="sift", max_keypoints=500))
        >>> feats = fx(image_rgb)   # Features with uv (N, 2), descriptors (N, 128)
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self._detector = create_detector(self.config.detector, self.config.max_keypoints)
        # SIFT descriptors are float vectors; ORB and AKAZE (MLDB) are bit strings.
        self.binary = self.config.detector != "sift"

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> Features:
        """Detect and describe.

        Args:
            image: (H, W, 3) RGB or (H, W) grey uint8.
            mask: optional (H, W) uint8, non-zero where keypoints may be detected.

        Returns:
            :class:`Features`, possibly empty (N = 0) on a textureless image.
        """
        return self.detect_gray(to_gray(image), mask)

    def detect_gray(self, gray: np.ndarray, mask: np.ndarray | None = None) -> Features:
        """:meth:`__call__` on a grey image :func:`to_gray` already gave (not checked again: the observer
        converts each frame once, for tracking and detection)."""
        s = self.config.detect_scale
        if s != 1.0:
            size = (max(1, round(gray.shape[1] * s)), max(1, round(gray.shape[0] * s)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
            if mask is not None:
                mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        keypoints, descriptors = self._detector.detectAndCompute(gray, mask)
        n = len(keypoints)
        if n == 0 or descriptors is None:
            width = 128 if not self.binary else self._detector.descriptorSize()
            dtype = np.float32 if not self.binary else np.uint8
            return Features(np.zeros((0, 2)), np.zeros(0), np.zeros((0, width), dtype), self.binary)
        uv = np.array([kp.pt for kp in keypoints], dtype=np.float64)
        if s != 1.0:
            # Pixel centres sit at integers: the resized image's pixel u covers full pixels [u/s - 0.5, ...).
            uv = (uv + 0.5) / s - 0.5
        response = np.array([kp.response for kp in keypoints], dtype=np.float64)
        limit = self.config.max_keypoints
        if limit and n > limit:
            # AKAZE has no budget parameter; keep the strongest (stable sort keeps ties deterministic).
            keep = np.sort(np.argsort(-response, kind="stable")[:limit])
            uv, response, descriptors = uv[keep], response[keep], descriptors[keep]
        if not self.binary:
            descriptors = descriptors.astype(np.float32, copy=False)
        return Features(uv, response, descriptors, self.binary)
