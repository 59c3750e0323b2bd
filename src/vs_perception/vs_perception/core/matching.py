"""Descriptor matching and geometric verification.

Matching runs current → goal (query = current descriptors, train = goal descriptors), as in the
CNS frontend: a FLANN KD-tree (5 trees, 50 checks) with Lowe's ratio test at 0.75, then RANSAC on
the essential matrix (0.999 confidence, 3 px). Mutual nearest neighbours are the alternative for
binary descriptors. The geometric models come from OpenCV, including its USAC variants (MAGSAC++).

Pure functions (:func:`match_ratio`, :func:`match_mutual`, :func:`dedupe_by_train`,
:func:`geometric_inliers`) do the work; :class:`DescriptorMatcher` holds the config and a goal
index trained once per goal.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from vs_common.core.config import check_choice, check_range, describe

__all__ = [
    "GEOMETRIC_MODELS",
    "Matches",
    "MatchConfig",
    "DescriptorMatcher",
    "EstimatorConfig",
    "RANSAC_METHODS",
    "dedupe_by_train",
    "geometric_inliers",
    "match_mutual",
    "match_ratio",
]

MATCH_STRATEGIES = ("ratio", "mutual")
MATCHERS = ("flann", "bf")
GEOMETRIC_MODELS = ("essential", "fundamental", "homography", "none")
RANSAC_METHODS = {
    "ransac": cv2.RANSAC,
    "lmeds": cv2.LMEDS,
    "usac_default": getattr(cv2, "USAC_DEFAULT", cv2.RANSAC),
    "usac_accurate": getattr(cv2, "USAC_ACCURATE", cv2.RANSAC),
    "magsac": getattr(cv2, "USAC_MAGSAC", cv2.RANSAC),
}
# Minimal sample sizes of the OpenCV solvers (5-point essential, 8-point fundamental, 4-point homography).
_MIN_SAMPLE = {"essential": 5, "fundamental": 8, "homography": 4, "none": 0}


@dataclass(frozen=True)
class MatchConfig:
    """Descriptor matching settings (current → goal)."""

    strategy: str = describe(
        "ratio: Lowe ratio test on the two nearest goal descriptors; mutual: mutual nearest neighbours.",
        default="ratio")
    matcher: str = describe(
        "Nearest-neighbour search: flann (KD-tree for float, LSH for binary descriptors) or bf (brute force).",
        default="bf")
    ratio: float = describe("Lowe ratio threshold: keep a match when d1 < ratio * d2.", default=0.75)

    def __post_init__(self) -> None:
        check_choice("strategy", self.strategy, MATCH_STRATEGIES)
        check_choice("matcher", self.matcher, MATCHERS)
        check_range("ratio", self.ratio, 0.0, 1.0, lo_open=True)


@dataclass(frozen=True)
class EstimatorConfig:
    """Outlier rejection: the two-view model fitted robustly to the matches (:func:`geometric_inliers`)."""

    model: str = describe(
        "Two-view model used to reject outliers: essential (needs intrinsics), fundamental, homography or none.",
        default="essential")
    method: str = describe(
        f"Robust estimator: {', '.join(RANSAC_METHODS)} (usac_*/magsac are OpenCV's USAC).", default="ransac")
    confidence: float = describe("RANSAC confidence in (0, 1).", default=0.999)
    threshold_px: float = describe("RANSAC inlier threshold in pixels.", default=3.0)

    def __post_init__(self) -> None:
        check_choice("model", self.model, GEOMETRIC_MODELS)
        check_choice("method", self.method, tuple(RANSAC_METHODS))
        check_range("confidence", self.confidence, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("threshold_px", self.threshold_px, 0.0, lo_open=True)

    def inliers(self, uv_query: np.ndarray, uv_train: np.ndarray, K: np.ndarray | None) -> np.ndarray:
        """:func:`geometric_inliers` with these settings."""
        return geometric_inliers(uv_query, uv_train, K, self.model, self.method, self.confidence, self.threshold_px)


@dataclass
class Matches:
    """Putative matches between query (current) and train (goal) descriptors.

    Shapes: M matches.
        query: (M,) int64 query indices.
        train: (M,) int64 train indices.
        distance: (M,) float64 descriptor distance of the best neighbour.
        score: (M,) float64 in [0, 1]: 1 - d1/d2 (distinctiveness; 0 when no second neighbour).
    """

    query: np.ndarray
    train: np.ndarray
    distance: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls) -> Matches:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.query)

    def select(self, keep: np.ndarray) -> Matches:
        return Matches(self.query[keep], self.train[keep], self.distance[keep], self.score[keep])


def _make_matcher(binary: bool, matcher: str) -> cv2.DescriptorMatcher:
    if matcher == "bf":
        return cv2.BFMatcher(cv2.NORM_HAMMING if binary else cv2.NORM_L2)
    if binary:
        # FLANN_INDEX_LSH = 6: multi-probe LSH, the FLANN index for Hamming spaces.
        index = {"algorithm": 6, "table_number": 6, "key_size": 12, "multi_probe_level": 1}
    else:
        index = {"algorithm": 1, "trees": 5}  # FLANN_INDEX_KDTREE, as CNS
    return cv2.FlannBasedMatcher(index, {"checks": 50})


def _knn_to_arrays(knn: list, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV knn lists (each may hold fewer than k DMatch) → query, train, d1, d2 (inf if absent)."""
    rows = [(m[0].queryIdx, m[0].trainIdx, m[0].distance, m[1].distance if len(m) > 1 else np.inf)
            for m in knn if len(m) > 0]
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], arr[:, 3]


def _score(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(np.isfinite(d2) & (d2 > 0), 1.0 - d1 / d2, 0.0)
    return np.clip(s, 0.0, 1.0)


def match_ratio(query: np.ndarray, train: np.ndarray | cv2.DescriptorMatcher, ratio: float = 0.75,
                binary: bool = False, matcher: str = "flann") -> Matches:
    """Lowe's ratio test: keep query i when its nearest train neighbour is clearly closer than the second.

    Args:
        query: (Nq, D) current descriptors.
        train: (Nt, D) goal descriptors, or a matcher already trained on them (see :class:`DescriptorMatcher`).
        ratio: keep when d1 < ratio * d2.
        binary: Hamming descriptors (ORB, AKAZE) rather than float (SIFT).
        matcher: "flann" or "bf".

    Returns:
        :class:`Matches`; a query whose search returned a single neighbour is kept only if that is all
        the train set holds (then there is nothing to be ambiguous with).
    """
    if len(query) == 0:
        return Matches.empty()
    if isinstance(train, np.ndarray):
        if len(train) == 0:
            return Matches.empty()
        knn = _make_matcher(binary, matcher).knnMatch(query, train, k=2)
    else:
        knn = train.knnMatch(query, k=2)
    q, t, d1, d2 = _knn_to_arrays(knn, 2)
    keep = d1 < ratio * d2
    return Matches(q[keep], t[keep], d1[keep], _score(d1, d2)[keep])


def match_mutual(query: np.ndarray, train: np.ndarray, binary: bool = False, matcher: str = "bf") -> Matches:
    """Mutual nearest neighbours: i ↔ j when j is i's nearest train and i is j's nearest query.

    Args:
        query: (Nq, D) current descriptors.
        train: (Nt, D) goal descriptors.

    Returns:
        :class:`Matches` with the ratio-based score of the forward search.
    """
    if len(query) == 0 or len(train) == 0:
        return Matches.empty()
    m = _make_matcher(binary, matcher)
    q, t, d1, d2 = _knn_to_arrays(m.knnMatch(query, train, k=2), 2)
    bq, bt, _, _ = _knn_to_arrays(m.knnMatch(train, query, k=1), 1)
    back = np.full(len(train), -1, dtype=np.int64)
    back[bq] = bt
    keep = back[t] == q
    return Matches(q[keep], t[keep], d1[keep], _score(d1, d2)[keep])


def dedupe_by_train(matches: Matches) -> Matches:
    """Keep one match per train (goal) index: the one with the smallest descriptor distance."""
    if len(matches) == 0:
        return matches
    order = np.lexsort((matches.distance, matches.train))  # by train, then distance
    first = np.ones(len(order), dtype=bool)
    first[1:] = matches.train[order][1:] != matches.train[order][:-1]
    return matches.select(np.sort(order[first]))


def geometric_inliers(uv_query: np.ndarray, uv_train: np.ndarray, K: np.ndarray | None,
                      model: str = "essential", method: str = "ransac", confidence: float = 0.999,
                      threshold_px: float = 3.0) -> np.ndarray:
    """Inlier mask of matched pixel pairs under a two-view model fitted robustly by OpenCV.

    Args:
        uv_query, uv_train: (M, 2) matched pixels in the current and goal images.
        K: (3, 3) intrinsics (needed for the essential matrix).
        model: essential, fundamental, homography or none.
        method: key of :data:`RANSAC_METHODS`.

    Returns:
        (M,) bool. All True when the model is "none" or there are fewer pairs than the minimal
        sample (nothing to verify against, as CNS does below 5 matches); all False when the
        estimator fails on enough pairs (degenerate geometry means the matches cannot be trusted).
    """
    m = len(uv_query)
    if model == "none" or m < _MIN_SAMPLE[model]:
        return np.ones(m, dtype=bool)
    p1 = np.ascontiguousarray(uv_query, dtype=np.float64)
    p2 = np.ascontiguousarray(uv_train, dtype=np.float64)
    flag = RANSAC_METHODS[method]
    try:
        if model == "essential":
            _, mask = cv2.findEssentialMat(p1, p2, np.asarray(K, np.float64), method=flag, prob=confidence,
                                           threshold=threshold_px)
        elif model == "fundamental":
            _, mask = cv2.findFundamentalMat(p1, p2, flag, threshold_px, confidence)
        else:
            _, mask = cv2.findHomography(p1, p2, flag, threshold_px, confidence=confidence)
    except cv2.error:
        mask = None
    if mask is None or len(mask) != m:
        # The essential solver can return several stacked solutions or none on degenerate input.
        return np.zeros(m, dtype=bool)
    return mask.reshape(-1).astype(bool)


class DescriptorMatcher:
    """Matches current descriptors to a fixed goal set (the goal index is built once per goal)."""

    def __init__(self, config: MatchConfig | None = None) -> None:
        self.config = config or MatchConfig()
        self._goal: np.ndarray | None = None
        self._binary = False
        self._index: cv2.DescriptorMatcher | None = None

    def set_goal(self, goal_descriptors: np.ndarray, binary: bool) -> None:
        """Store the goal descriptors (N, D) and, for FLANN, build its index now rather than per frame."""
        self._goal = goal_descriptors
        self._binary = binary
        self._index = None
        if self.config.matcher == "flann" and len(goal_descriptors) > 0:
            self._index = _make_matcher(binary, "flann")
            self._index.add([goal_descriptors])
            self._index.train()

    def match(self, descriptors: np.ndarray) -> Matches:
        """Current descriptors (M, D) → deduplicated matches into the goal set."""
        if self._goal is None:
            raise RuntimeError("DescriptorMatcher.match called before set_goal")
        c = self.config
        if c.strategy == "ratio":
            train = self._index if self._index is not None else self._goal
            matches = match_ratio(descriptors, train, c.ratio, self._binary, c.matcher)
        else:
            matches = match_mutual(descriptors, self._goal, self._binary, c.matcher)
        return dedupe_by_train(matches)
