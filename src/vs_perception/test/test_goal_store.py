"""Goal store: capture, save → load round trip, file formats, ids and errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError, NotReadyError
from vs_perception.core.goal_store import GoalStore, goal_id_for, load_goal, make_goal

H, W = 48, 64
CAM = CameraModel(K=np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]), width=W, height=H)


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(1, 255, (H, W, 3), dtype=np.uint8)


def test_capture_save_load_round_trip(tmp_path) -> None:
    store = GoalStore()
    depth = np.full((H, W), 0.7, np.float32)
    depth[0, 0] = np.nan
    g = store.capture(_image(), CAM, depth)
    assert store.active is g and g.goal_id == goal_id_for(g.image, g.depth)
    store.save(tmp_path / "g1")
    assert (tmp_path / "g1" / "depth.png").is_file()
    back = GoalStore().load(tmp_path / "g1")
    assert back.goal_id == g.goal_id
    np.testing.assert_array_equal(back.image, g.image)  # RGB survives OpenCV's BGR files
    assert np.isnan(back.depth[0, 0]) and back.depth[1, 1] == pytest.approx(0.7, abs=1e-3)
    np.testing.assert_allclose(back.camera.K, CAM.K)


def test_load_npy_depth_and_ros_camera_yaml(tmp_path) -> None:
    img = _image()
    cv2.imwrite(str(tmp_path / "image.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    np.save(tmp_path / "depth.npy", np.full((H, W), 1.25, np.float32))
    (tmp_path / "camera.yaml").write_text(yaml.safe_dump({
        "image_width": W, "image_height": H, "camera_matrix": {"rows": 3, "cols": 3, "data": CAM.K.ravel().tolist()}}))
    g = load_goal(tmp_path, goal_id="mine")
    assert g.goal_id == "mine" and g.depth[3, 3] == pytest.approx(1.25)
    assert g.source.startswith("file:")


def test_ids_are_content_based() -> None:
    a, b = make_goal(_image(), CAM), make_goal(_image(), CAM)
    assert a.goal_id == b.goal_id and a.goal_id.startswith("goal-")
    img = _image()
    img[0, 0, 0] ^= 1
    assert make_goal(img, CAM).goal_id != a.goal_id


def test_errors(tmp_path) -> None:
    store = GoalStore()
    with pytest.raises(NotReadyError, match="no goal"):
        store.get()
    with pytest.raises(NotReadyError, match="does not exist"):
        store.load(tmp_path / "missing")
    with pytest.raises(NotReadyError, match="image.png"):
        store.load(tmp_path)
    with pytest.raises(InputError, match="black"):
        make_goal(np.zeros((H, W, 3), np.uint8), CAM)
    with pytest.raises(InputError, match="empty"):
        make_goal(np.zeros((0, 0, 3), np.uint8), CAM)
    with pytest.raises(InputError, match="intrinsics"):
        make_goal(_image()[:, :32], CAM)
    with pytest.raises(InputError, match="depth"):
        make_goal(_image(), CAM, depth=np.ones((H, W + 1)))
    store.capture(_image(), CAM)
    with pytest.raises(NotReadyError, match="known goals"):
        store.get("nope")
