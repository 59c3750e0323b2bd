"""Servo goals for real use: captured from the live camera, loaded from / saved to a goal folder.

A goal folder holds (file names fixed so a folder is self-describing):
    ``image.png``            the goal view (8-bit colour or grey; stored BGR by OpenCV, returned RGB);
    ``depth.png`` or ``depth.npy``  optional depth aligned to the image: 16-bit PNG in millimetres
                             (0 = none, REP-118) or a float array in metres (NaN/0 = none);
    ``camera.yaml``          intrinsics: ``{K: [9 numbers] | 3x3, width, height}``, or a ROS
                             camera_info YAML (``camera_matrix: {data: [...]}, image_width, image_height``);
    ``goal.yaml``            (written by :func:`save_goal`) the goal id and capture stamp.

Every goal gets an id: the given one, or ``goal-<12 hex of SHA-1(image, depth)>`` — the same pixels give
the same id, so re-loading a folder does not reset recurrent controllers needlessly.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from vs_common.core.camera import CameraModel
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import InputError, NotReadyError

from vs_perception.core.features import DETECTORS

IMAGE_FILE, DEPTH_PNG, DEPTH_NPY, CAMERA_FILE, META_FILE = "image.png", "depth.png", "depth.npy", "camera.yaml", \
    "goal.yaml"


@dataclass(frozen=True)
class GoalNodeConfig:
    """The goal node's parameters (the ``goal`` section of a pipeline file); all but ``goal_dir`` (read at
    start-up) may change at run time."""

    distance_prior_m: float = describe(
        "Camera-to-scene distance at the goal (m) for CNS-style controllers; NaN = from goal depth", default=math.nan)
    detector: str = describe(f"Detector used to check that a new goal has keypoints, one of {list(DETECTORS)}",
                             default="akaze")
    goal_dir: str = describe("Goal folder to load at start ('' = none)", default="")
    save_dir: str = describe("Folder to save every new goal into ('' = do not save)", default="")

    def __post_init__(self) -> None:
        check_choice("detector", self.detector, DETECTORS)
        if not math.isnan(self.distance_prior_m):
            check_range("distance_prior_m", self.distance_prior_m, 0.0, lo_open=True)


@dataclass(frozen=True)
class Goal:
    """A goal view. Shapes: image (H, W, 3) uint8 RGB; depth (H, W) float32 metres, NaN unknown, or None."""

    goal_id: str
    image: np.ndarray
    camera: CameraModel
    depth: np.ndarray | None = None
    stamp: float = 0.0
    source: str = "image"


def goal_id_for(image: np.ndarray, depth: np.ndarray | None = None) -> str:
    """Content id ``goal-<12 hex>``: SHA-1 of the image (and depth) bytes."""
    h = hashlib.sha1(np.ascontiguousarray(image).tobytes())
    if depth is not None:
        h.update(np.ascontiguousarray(depth).tobytes())
    return "goal-" + h.hexdigest()[:12]


def make_goal(image: np.ndarray, camera: CameraModel, depth: np.ndarray | None = None, goal_id: str = "",
              stamp: float | None = None, source: str = "image") -> Goal:
    """Validate and build a goal.

    Raises:
        InputError: image not (H, W, 3)/(H, W) uint8, empty or all black; depth of another size; camera
            intrinsics for another image size.
    """
    image = np.asarray(image)
    if image.size == 0:
        raise InputError("goal image is empty")
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputError(f"goal image must be (H, W, 3) or (H, W) uint8, got {image.shape} {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if int(image.max()) == 0:
        raise InputError("goal image is all black")
    h, w = image.shape[:2]
    if (camera.width, camera.height) != (w, h):
        raise InputError(f"camera intrinsics are for {camera.width}x{camera.height} but the goal image is {w}x{h}")
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float32).copy()
        if depth.shape != (h, w):
            raise InputError(f"goal depth is {depth.shape[1::-1]} but the image is {w}x{h}")
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        if not np.isfinite(depth).any():
            depth = None  # an all-empty depth is no depth; the controller then uses its depth prior
    image = np.ascontiguousarray(image)
    return Goal(goal_id=goal_id or goal_id_for(image, depth), image=image, camera=camera, depth=depth,
                stamp=time.time() if stamp is None else float(stamp), source=source)


def _read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; InputError naming the file when it is unreadable or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: not readable as YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data


def _read_camera(path: Path) -> CameraModel:
    data = _read_yaml(path)
    ros = "camera_matrix" in data  # ROS camera_calibration format
    k_field, w_field, h_field = ("camera_matrix.data", "image_width", "image_height") if ros else ("K", "width",
                                                                                                   "height")
    try:
        raw_k = data["camera_matrix"]["data"] if ros else data["K"]
    except (KeyError, TypeError) as err:
        raise InputError(f"{path}: missing field {k_field} (expected keys K, width, height, or a ROS "
                         f"camera_info YAML)") from err
    try:
        K = np.asarray(raw_k, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: field {k_field} must be 9 numbers (or a 3x3 list), got {raw_k!r}") from err
    size = []
    for field in (w_field, h_field):
        value = data.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{path}: field {field} must be a positive integer (pixels), got {value!r}")
        size.append(value)
    try:
        return CameraModel(K=K, width=size[0], height=size[1])
    except InputError as err:
        raise InputError(f"{path}: field {k_field}: {err}") from err


def _read_meta(path: Path) -> tuple[str, float | None]:
    """(goal_id, stamp) from goal.yaml; InputError naming the file and the field."""
    meta = _read_yaml(path)
    goal_id, stamp = meta.get("goal_id", ""), meta.get("stamp")
    if goal_id is None:
        goal_id = ""
    if not isinstance(goal_id, str | int) or isinstance(goal_id, bool):
        raise InputError(f"{path}: field goal_id must be a string, got {goal_id!r}")
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not np.isfinite(stamp):
            raise InputError(f"{path}: field stamp must be a finite number of seconds, got {stamp!r}")
        stamp = float(stamp)
    return str(goal_id), stamp


def _read_depth_npy(path: Path) -> np.ndarray:
    try:
        depth = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a numeric .npy array (objects are refused): {err}") from err
    if not isinstance(depth, np.ndarray) or depth.dtype.kind not in "fiu":
        raise InputError(f"{path}: depth must be a float array in metres, got dtype {getattr(depth, 'dtype', None)}")
    if depth.ndim != 2:
        raise InputError(f"{path}: depth must be a 2-D (H, W) array, got shape {depth.shape}")
    return depth


def load_goal(folder: str | Path, goal_id: str = "") -> Goal:
    """Load a goal folder (see the module docstring). NotReadyError when the folder or image is missing."""
    try:
        folder = Path(folder).expanduser()
    except RuntimeError as err:  # "~user/..." for a user that does not exist
        raise NotReadyError(f"goal folder {str(folder)!r} does not exist: {err}") from err
    if not folder.is_dir():
        raise NotReadyError(f"goal folder {folder} does not exist")
    img_path = folder / IMAGE_FILE
    if not img_path.is_file():
        raise NotReadyError(f"goal folder {folder} has no {IMAGE_FILE}")
    bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{img_path} is not a readable image")
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    cam_path = folder / CAMERA_FILE
    if not cam_path.is_file():
        raise NotReadyError(f"goal folder {folder} has no {CAMERA_FILE} (intrinsics)")
    camera = _read_camera(cam_path)
    depth = None
    if (folder / DEPTH_PNG).is_file():
        raw = cv2.imread(str(folder / DEPTH_PNG), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
            raise InputError(f"{folder / DEPTH_PNG} must be a single-channel 16-bit PNG in millimetres")
        depth = raw.astype(np.float32) * 1e-3
    elif (folder / DEPTH_NPY).is_file():
        depth = _read_depth_npy(folder / DEPTH_NPY)
    meta_id, stamp = _read_meta(folder / META_FILE) if (folder / META_FILE).is_file() else ("", None)
    try:
        return make_goal(image, camera, depth, goal_id=goal_id or meta_id, stamp=stamp, source=f"file:{folder.name}")
    except InputError as err:
        raise InputError(f"goal folder {folder}: {err}") from err


def save_goal(goal: Goal, folder: str | Path) -> Path:
    """Write ``goal`` as a goal folder (image PNG, depth 16-bit PNG in mm, camera.yaml, goal.yaml)."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / IMAGE_FILE), cv2.cvtColor(goal.image, cv2.COLOR_RGB2BGR))
    if goal.depth is not None:
        mm = np.clip(np.round(np.nan_to_num(goal.depth, nan=0.0) * 1000.0), 0, 65535).astype(np.uint16)
        cv2.imwrite(str(folder / DEPTH_PNG), mm)
    cam = {"K": goal.camera.K.reshape(-1).tolist(), "width": goal.camera.width, "height": goal.camera.height}
    (folder / CAMERA_FILE).write_text(yaml.safe_dump(cam, sort_keys=False))
    (folder / META_FILE).write_text(yaml.safe_dump({"goal_id": goal.goal_id, "stamp": float(goal.stamp),
                                                    "source": goal.source}, sort_keys=False))
    return folder


class GoalStore:
    """Goals by id plus the active one: what the goal node serves and the observer aligns to."""

    def __init__(self) -> None:
        self._goals: dict[str, Goal] = {}
        self._active: str | None = None

    def add(self, goal: Goal, activate: bool = True) -> Goal:
        self._goals[goal.goal_id] = goal
        if activate:
            self._active = goal.goal_id
        return goal

    def capture(self, image: np.ndarray, camera: CameraModel, depth: np.ndarray | None = None,
                goal_id: str = "", stamp: float | None = None) -> Goal:
        """Make the current camera frame (RGB, optional aligned depth in m) the active goal."""
        return self.add(make_goal(image, camera, depth, goal_id=goal_id, stamp=stamp, source="capture"))

    def load(self, folder: str | Path, goal_id: str = "") -> Goal:
        """Load a goal folder and make it active."""
        return self.add(load_goal(folder, goal_id))

    def save(self, folder: str | Path, goal_id: str | None = None) -> Path:
        """Save a goal (default: the active one) to a folder."""
        return save_goal(self.get(goal_id), folder)

    def get(self, goal_id: str | None = None) -> Goal:
        """A goal by id, or the active goal; NotReadyError naming the known ids when absent."""
        key = self._active if goal_id is None else goal_id
        if key is None:
            raise NotReadyError("no goal set yet: capture one, load a goal folder, or call SetGoal")
        if key not in self._goals:
            raise NotReadyError(f"unknown goal {key!r}; known goals: {sorted(self._goals)}")
        return self._goals[key]

    @property
    def active(self) -> Goal:
        return self.get()

    def activate(self, goal_id: str) -> Goal:
        goal = self.get(goal_id)
        self._active = goal_id
        return goal

    def ids(self) -> list[str]:
        return sorted(self._goals)
