"""Procedural textures: rich, seeded, license-free (no third-party images)."""

from __future__ import annotations

import cv2
import numpy as np


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    small = rng.random((cells, cells, 3)).astype(np.float32)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def make_texture(seed: int, size: int = 256) -> np.ndarray:
    """A (size, size, 3) uint8 RGB texture: multi-scale colour noise plus random shapes and strokes.

    Plenty of corners and blobs at several scales so SIFT / ORB / AKAZE find keypoints at any viewing
    distance, and distinct per seed so objects do not look alike.
    """
    rng = np.random.default_rng(seed)
    img = 0.5 * _noise(rng, size, 4) + 0.3 * _noise(rng, size, 12) + 0.2 * _noise(rng, size, 40)
    base = rng.random(3) * 0.6 + 0.2
    img = np.clip(0.5 * img + 0.5 * base, 0, 1)
    img = (img * 255).astype(np.uint8)
    for _ in range(int(rng.integers(10, 25))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 4)
        p = rng.integers(0, size, 2)
        r = int(rng.integers(size // 40 + 2, size // 6))
        if kind == 0:
            cv2.circle(img, (int(p[0]), int(p[1])), r, color, -1, cv2.LINE_AA)
        elif kind == 1:
            q = p + rng.integers(-r, r, 2) * 2
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, -1)
        elif kind == 2:
            pts = (p + rng.integers(-r, r, (int(rng.integers(3, 6)), 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
        else:
            q = p + rng.integers(-2 * r, 2 * r, 2)
            cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, int(rng.integers(1, 5)), cv2.LINE_AA)
    return img


def make_poster(seed: int, width: int = 1024, height: int = 768) -> np.ndarray:
    """A large (height, width, 3) picture for the planar "image" environment: tiles of textures."""
    rng = np.random.default_rng(seed)
    tile = 256
    img = np.zeros((height, width, 3), np.uint8)
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            t = make_texture(int(rng.integers(0, 2**31 - 1)), tile)
            img[y:y + tile, x:x + tile] = t[: height - y, : width - x]
    return cv2.GaussianBlur(img, (3, 3), 0)
