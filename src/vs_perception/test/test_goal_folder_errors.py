"""Loading a malformed goal folder names the file and the field that is wrong (issue #17 repro 6)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_perception.core.goal_store import GoalStore, load_goal, make_goal, save_goal

H, W = 48, 64
CAM = CameraModel(K=np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]), width=W, height=H)


@pytest.fixture
def folder(tmp_path):
    image = np.random.default_rng(0).integers(1, 255, (H, W, 3), dtype=np.uint8)
    save_goal(make_goal(image, CAM, np.full((H, W), 0.6, np.float32), goal_id="g", stamp=5.0), tmp_path / "goal")
    (tmp_path / "goal" / "depth.png").unlink()
    np.save(tmp_path / "goal" / "depth.npy", np.full((H, W), 0.6, np.float32))
    assert load_goal(tmp_path / "goal").goal_id == "g"  # the well-formed folder loads
    return tmp_path / "goal"


CASES = {
    # file, content, words the message must contain
    "camera_unparsable": ("camera.yaml", "K: [1, 2\nwidth: : :", ("camera.yaml", "YAML")),
    "camera_not_mapping": ("camera.yaml", "- 1\n- 2\n", ("camera.yaml", "mapping")),
    "camera_missing_K": ("camera.yaml", "width: 64\nheight: 48\n", ("camera.yaml", "K")),
    "camera_K_text": ("camera.yaml", "K: abc\nwidth: 64\nheight: 48\n", ("camera.yaml", "K")),
    "camera_K_8_numbers": ("camera.yaml", "K: [1, 0, 0, 0, 1, 0, 0, 0]\nwidth: 64\nheight: 48\n", ("camera.yaml", "K")),
    "camera_fx_zero": ("camera.yaml", "K: [0, 0, 31.5, 0, 50, 23.5, 0, 0, 1]\nwidth: 64\nheight: 48\n",
                       ("camera.yaml", "K")),
    "camera_width_text": ("camera.yaml", "K: [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1]\nwidth: wide\nheight: 48\n",
                          ("camera.yaml", "width")),
    "camera_height_negative": ("camera.yaml", "K: [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1]\nwidth: 64\nheight: -48\n",
                               ("camera.yaml", "height")),
    "meta_stamp_abc": ("goal.yaml", "goal_id: g\nstamp: abc\n", ("goal.yaml", "stamp")),
    "meta_stamp_nan": ("goal.yaml", "goal_id: g\nstamp: .nan\n", ("goal.yaml", "stamp")),
    "meta_goal_id_list": ("goal.yaml", "goal_id: [1, 2]\n", ("goal.yaml", "goal_id")),
    "meta_unparsable": ("goal.yaml", "goal_id: [g\n", ("goal.yaml", "YAML")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_yaml_names_file_and_field(folder, case) -> None:
    name, content, words = CASES[case]
    (folder / name).write_text(content)
    with pytest.raises(InputError) as err:
        GoalStore().load(folder)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("depth,word", [
    (np.array([{"a": 1}] * 4, dtype=object), "depth.npy"),
    (np.array(["x"] * 4), "depth.npy"),
    (np.zeros((2, 3, 4), np.float32), "2-D"),
    (np.zeros((H, W + 1), np.float32), "depth"),
])
def test_bad_depth_npy_names_the_file(folder, depth, word) -> None:
    np.save(folder / "depth.npy", depth, allow_pickle=True)
    with pytest.raises(InputError, match=word) as err:
        load_goal(folder)
    assert "depth" in str(err.value) and str(folder) in str(err.value)


def test_truncated_npy_and_garbage_image(folder) -> None:
    (folder / "depth.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="depth.npy"):
        load_goal(folder)
    (folder / "depth.npy").unlink()
    (folder / "image.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="image.png"):
        load_goal(folder)


def test_ros_camera_info_yaml_fields_named(folder) -> None:
    (folder / "camera.yaml").write_text(yaml.safe_dump({"camera_matrix": {"data": "abc"}, "image_width": W,
                                                        "image_height": H}))
    with pytest.raises(InputError, match="camera_matrix.data"):
        load_goal(folder)
    (folder / "camera.yaml").write_text(yaml.safe_dump({"camera_matrix": {"data": CAM.K.ravel().tolist()},
                                                        "image_width": W, "image_height": None}))
    with pytest.raises(InputError, match="image_height"):
        load_goal(folder)


def test_unknown_user_home_is_a_clear_error() -> None:
    from vs_common.core.errors import NotReadyError

    with pytest.raises(NotReadyError, match="does not exist"):
        load_goal("~no_such_user_17/goal")
