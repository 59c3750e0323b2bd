"""Unit tests of the feature extractor and the matching functions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from vs_common.core.errors import ConfigError, InputError
from vs_perception.core.features import DETECTORS, FeatureConfig, FeatureExtractor, create_detector
from vs_perception.core.matching import (
    DescriptorMatcher,
    EstimatorConfig,
    MatchConfig,
    Matches,
    dedupe_by_train,
    geometric_inliers,
    match_mutual,
    match_ratio,
)


def textured(seed: int = 0, h: int = 240, w: int = 320) -> np.ndarray:
    """Random filled circles and rectangles: plenty of corners and blobs for every detector."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 127, np.uint8)
    for _ in range(150):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        u, v = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img, (u, v), int(rng.integers(3, 20)), colour, -1)
        else:
            cv2.rectangle(img, (u, v), (u + int(rng.integers(4, 40)), v + int(rng.integers(4, 40))), colour, -1)
    return img


@pytest.mark.parametrize("name", DETECTORS)
def test_every_detector_finds_keypoints_and_respects_budget(name: str) -> None:
    feats = FeatureExtractor(FeatureConfig(detector=name, max_keypoints=100))(textured())
    assert 20 <= len(feats) <= 100
    assert feats.uv.shape == (len(feats), 2) and feats.descriptors.shape[0] == len(feats)
    assert feats.binary == (name != "sift")
    assert feats.descriptors.dtype == (np.uint8 if feats.binary else np.float32)
    assert np.all((feats.uv >= 0) & (feats.uv < [320, 240]))


def test_akaze_is_available_in_this_opencv() -> None:
    assert create_detector("akaze") is not None


def test_textureless_image_gives_no_features() -> None:
    img = np.full((120, 160, 3), 50, np.uint8)
    img[:, 80:] = 51  # not uniform, so it passes validation, but carries no corners
    assert len(FeatureExtractor()(img)) == 0


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((0, 0, 3), np.uint8), np.zeros((50, 50, 3), np.uint8), "image"])
def test_bad_images_raise_input_error(bad: object) -> None:
    with pytest.raises(InputError):
        FeatureExtractor()(bad)  # type: ignore[arg-type]


def test_bad_config_lists_choices() -> None:
    with pytest.raises(ConfigError, match="akaze"):
        FeatureConfig(detector="surf")
    with pytest.raises(ConfigError):
        MatchConfig(ratio=1.5)
    with pytest.raises(ConfigError, match="magsac"):
        EstimatorConfig(method="prosac")


def test_ratio_test_on_known_descriptors() -> None:
    train = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    query = np.array([[0.1, 0], [5, 0], [0, 9.8]], np.float32)  # query 1 is ambiguous (equidistant)
    for matcher in ("bf", "flann"):
        m = match_ratio(query, train, 0.75, binary=False, matcher=matcher)
        assert sorted(zip(m.query.tolist(), m.train.tolist(), strict=True)) == [(0, 0), (2, 2)]
        assert np.all((m.score > 0.9) & (m.score <= 1.0))


def test_mutual_nn_rejects_one_sided_matches() -> None:
    train = np.array([[0, 0], [10, 0]], np.float32)
    query = np.array([[1, 0], [2, 0], [9, 0]], np.float32)  # both 0 and 1 prefer train 0; 0 is closer
    m = match_mutual(query, train)
    assert sorted(zip(m.query.tolist(), m.train.tolist(), strict=True)) == [(0, 0), (2, 1)]


def test_hamming_matching_of_binary_descriptors() -> None:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    query = train[::-1].copy()
    query[:, 0] ^= 1  # one flipped bit
    for matcher in ("bf", "flann"):
        m = DescriptorMatcher(MatchConfig(matcher=matcher))
        m.set_goal(train, binary=True)
        got = m.match(query)
        assert len(got) >= 45
        assert np.all(got.train == 49 - got.query)


def test_dedupe_keeps_the_closest_match_per_goal_keypoint() -> None:
    m = Matches(np.array([0, 1, 2, 3]), np.array([5, 5, 7, 5]), np.array([3.0, 1.0, 2.0, 2.0]), np.ones(4))
    d = dedupe_by_train(m)
    assert sorted(zip(d.query.tolist(), d.train.tolist(), strict=True)) == [(1, 5), (2, 7)]


@pytest.mark.parametrize("model", ["essential", "fundamental", "homography"])
def test_ransac_rejects_gross_outliers(model: str) -> None:
    rng = np.random.default_rng(2)
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    P = np.c_[rng.uniform(-1, 1, (80, 2)), rng.uniform(3, 5, 80) if model != "homography" else np.full(80, 4.0)]
    R = cv2.Rodrigues(np.array([0.02, -0.05, 0.03]))[0]
    t = np.array([0.3, 0.05, 0.1])
    uv1 = (K @ P.T).T
    uv1 = uv1[:, :2] / uv1[:, 2:]
    P2 = (R @ P.T).T + t
    uv2 = (K @ P2.T).T
    uv2 = uv2[:, :2] / uv2[:, 2:]
    uv2[:10] += rng.uniform(40, 80, (10, 2))  # outliers
    inl = geometric_inliers(uv1, uv2, K, model, "ransac", 0.999, 2.0)
    assert not inl[:10].any()
    assert inl[10:].mean() > 0.9
    # Below the minimal sample nothing can be verified: all kept.
    assert geometric_inliers(uv1[:3], uv2[:3], K, model).all()
