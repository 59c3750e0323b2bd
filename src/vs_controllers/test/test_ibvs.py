"""IBVS tests: interaction matrix against finite differences, closed loop on an ideal scene, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vs_common.core.camera import CameraModel
from vs_common.core.errors import ConfigError
from vs_common.core.se3 import integrate_twist, invert, look_at, pose_error
from vs_controllers.core.ibvs import (
    IBVSConfig,
    IBVSController,
    ibvs_twist,
    interaction_matrix,
)
from vs_controllers.core.loop import LoopConfig, ServoLoop, adaptive_gain, clip_twist
from vs_controllers.core.pipelines import get_pipeline, make_controller, make_pipeline
from vs_controllers.core.protocol import Controller
from vs_perception.core.types import Correspondences

CAM = CameraModel(np.array([[540.0, 0, 320], [0, 540, 240], [0, 0, 1]]), 640, 480)
SQUARE = np.array([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.1, 0.1, 0.0], [-0.1, 0.1, 0.0]])


def project(w_T_c: np.ndarray, P_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) → normalised image coordinates (N, 2) and depths (N,) seen from w_T_c."""
    P_c = (invert(w_T_c) @ np.c_[P_w, np.ones(len(P_w))].T)[:3].T
    return P_c[:, :2] / P_c[:, 2:], P_c[:, 2]


def to_pixels(x: np.ndarray) -> np.ndarray:
    return x * [CAM.fx, CAM.fy] + [CAM.cx, CAM.cy]


def test_interaction_matrix_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    P_w = np.c_[rng.uniform(-0.3, 0.3, (6, 2)), rng.uniform(-0.1, 0.1, 6)]
    w_T_c = look_at(np.array([0.1, -0.2, 0.8]), np.zeros(3))
    x0, Z = project(w_T_c, P_w)
    L = interaction_matrix(x0, Z)
    assert L.shape == (12, 6)
    h = 1e-6
    for k in range(6):
        v = np.zeros(6)
        v[k] = 1.0
        # Central difference of x(t) under a unit twist along axis k.
        xp, _ = project(integrate_twist(w_T_c, v, h), P_w)
        xm, _ = project(integrate_twist(w_T_c, v, -h), P_w)
        np.testing.assert_allclose(L[:, k], ((xp - xm) / (2 * h)).reshape(-1), atol=1e-6)


def test_interaction_matrix_known_values() -> None:
    L = interaction_matrix(np.array([[0.0, 0.0], [0.5, -0.2]]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(L[0], [-0.5, 0, 0, 0, -1, 0])
    np.testing.assert_allclose(L[1], [0, -0.5, 0, 1, 0, 0])
    np.testing.assert_allclose(L[2], [-1, 0, 0.5, -0.1, -1.25, -0.2])
    np.testing.assert_allclose(L[3], [0, -1, -0.2, 1.04, 0.1, -0.5])


def test_ibvs_twist_inverts_a_known_motion() -> None:
    rng = np.random.default_rng(1)
    x, Z = rng.uniform(-0.4, 0.4, (8, 2)), rng.uniform(0.5, 1.0, 8)
    L = interaction_matrix(x, Z)
    v_true = np.array([0.01, -0.02, 0.03, 0.01, 0.02, -0.01])
    e = L @ v_true  # an error that the motion -v_true (unit gain) would cancel to first order
    np.testing.assert_allclose(ibvs_twist(e, L), -v_true, atol=1e-12)


def test_adaptive_gain_and_clip() -> None:
    assert adaptive_gain(0.0, 4.0, 0.4, 30.0) == pytest.approx(4.0)
    assert adaptive_gain(1e3, 4.0, 0.4, 30.0) == pytest.approx(0.4)
    # The slope at zero is -λ'0.
    assert (adaptive_gain(1e-7, 4.0, 0.4, 30.0) - 4.0) / 1e-7 == pytest.approx(-30.0, rel=1e-4)
    v, s = clip_twist(np.array([0.6, 0, 0, 0, 0, 0.5]), 0.3, 1.0)
    assert s == pytest.approx(0.5) and np.allclose(v, [0.3, 0, 0, 0, 0, 0.25])


def goal_correspondences(w_T_goal: np.ndarray, P_w: np.ndarray) -> Correspondences:
    x, Z = project(w_T_goal, P_w)
    uv = to_pixels(x)
    return Correspondences(CAM, uv, uv, np.ones(len(uv), bool), goal_depth=Z, current_depth=Z)


@pytest.mark.parametrize("interaction", ["desired", "current", "mean"])
@pytest.mark.parametrize("gain_mode", ["constant", "adaptive"])
def test_ibvs_converges_on_an_ideal_four_point_scene(interaction: str, gain_mode: str) -> None:
    w_T_goal = look_at(np.array([0.0, 0.0, 0.6]), np.zeros(3), up=np.array([0.0, 1.0, 0.0]))
    w_T_c = look_at(np.array([0.12, -0.08, 0.72]), np.array([0.02, 0.01, 0.0]), up=np.array([0.0, 1.0, 0.0]))
    w_T_c[:3, :3] = w_T_c[:3, :3] @ Rotation.from_euler("z", 30, degrees=True).as_matrix()
    goal = goal_correspondences(w_T_goal, SQUARE)
    ctrl = IBVSController(IBVSConfig(interaction=interaction, depth_source="current_depth"))
    assert isinstance(ctrl, Controller)
    loop = ServoLoop(ctrl, LoopConfig(gain_mode=gain_mode, gain=0.8, gain_zero=2.5, gain_inf=0.6, gain_slope=30.0,
                                      max_linear_mps=0.3, max_angular_rps=1.0))
    loop.set_goal(goal)
    first = None
    for _ in range(600):
        x, Z = project(w_T_c, SQUARE)
        res = loop.step(Correspondences(CAM, goal.goal_uv, to_pixels(x), np.ones(4, bool),
                                        goal_depth=goal.goal_depth, current_depth=Z))
        assert res.ok, res.reason
        first = res.error if first is None else first
        w_T_c = integrate_twist(w_T_c, res.v_c, 0.04)
        if res.error < 2e-3:
            break
    te, re = pose_error(w_T_goal, w_T_c)
    assert res.error < 2e-3 < first
    assert te < 5e-3 and re < 0.5


def test_bad_observations_give_zero_twist_and_a_reason() -> None:
    w_T_goal = look_at(np.array([0.0, 0.0, 0.6]), np.zeros(3), up=np.array([0.0, 1.0, 0.0]))
    goal = goal_correspondences(w_T_goal, SQUARE)
    ctrl = IBVSController()
    assert not ctrl.compute(goal).ok  # no goal yet
    ctrl.set_goal(goal)
    good = ctrl.compute(goal)
    assert good.ok and np.allclose(good.v_c, 0) and good.error == 0.0

    nan_uv = goal.goal_uv.copy()
    nan_uv[0] = np.nan  # demoted to invalid → 3 points < min_points 4
    out = ctrl.compute(Correspondences(CAM, goal.goal_uv, nan_uv, np.ones(4, bool)))
    assert not out.ok and "valid" in out.reason and np.all(out.v_c == 0)

    few = Correspondences(CAM, goal.goal_uv, goal.goal_uv, np.array([True, True, False, False]))
    assert not ctrl.compute(few).ok
    assert not ctrl.compute(Correspondences(CAM, goal.goal_uv[:3], goal.goal_uv[:3], np.ones(3, bool))).ok
    assert not ctrl.compute("not an observation").ok  # type: ignore[arg-type]

    # Unknown depths everywhere: falls back to the prior, still a finite twist.
    g2 = Correspondences(CAM, goal.goal_uv, goal.goal_uv, np.ones(4, bool), goal_depth=np.full(4, np.nan))
    ctrl.set_goal(g2)
    shifted = Correspondences(CAM, goal.goal_uv, goal.goal_uv + 5.0, np.ones(4, bool))
    out = ctrl.compute(shifted)
    assert out.ok and np.all(np.isfinite(out.v_c)) and np.linalg.norm(out.v_c) > 0


def test_config_validation_and_registry() -> None:
    with pytest.raises(ConfigError, match="mean"):
        IBVSConfig(interaction="average")
    with pytest.raises(ConfigError):
        LoopConfig(gain_zero=0.1, gain_inf=0.5)
    with pytest.raises(ConfigError):
        IBVSConfig(min_points=2)
    ctrl = make_controller("ibvs", {"interaction": "desired", "min_points": 5})
    assert ctrl.config.min_points == 5
    with pytest.raises(ConfigError, match="ibvs"):
        make_controller("nope")
    with pytest.raises(ConfigError):
        make_controller("ibvs", {"gian": 1.0})
    with pytest.raises(ConfigError, match="gain"):
        make_controller("ibvs", {"gain": 0.5})  # a loop setting, not the controller's
    obs_cfg, ctrl, loop = make_pipeline("ibvs", {"observer": {"features": {"detector": "sift"}},
                                                 "ibvs_controller": {"ros__parameters": {"min_points": 6}},
                                                 "loop": {"ros__parameters": {"gain_mode": "constant"}}})
    assert obs_cfg.features.detector == "sift" and ctrl.config.min_points == 6
    assert loop.gain_mode == "constant" and loop.gain_zero == get_pipeline("ibvs").loop.gain_zero
    with pytest.raises(ConfigError, match="unknown sections"):
        make_pipeline("ibvs", {"ibvs_loop": {}})


def test_shipped_yaml_is_the_defaults_with_tracking() -> None:
    from dataclasses import replace
    from pathlib import Path

    from vs_perception.core.observer import ObserverConfig
    from vs_perception.core.tracking import TrackConfig

    repo = Path(__file__).resolve().parents[3]
    obs_cfg, ctrl, loop = make_pipeline("ibvs", repo / "config/ibvs.yaml")
    # The YAML turns tracking and goal-image LK on (#20) and is otherwise the defaults, so a node without it
    # differs only there.
    assert obs_cfg == replace(ObserverConfig(), tracking=TrackConfig(enabled=True, goal_lk_px=2.0))
    assert ctrl.config == IBVSConfig() and loop == get_pipeline("ibvs").loop


def test_pipeline_file_overlays(tmp_path) -> None:
    """``extends``: the base's sections, the overlay's keys win; chains and cycles; the same settings either way."""
    from pathlib import Path

    from vs_controllers.core.pipelines import load_pipeline_file, pipeline_settings

    repo = Path(__file__).resolve().parents[3]
    (tmp_path / "base.yaml").write_text(
        "observer: {ros__parameters: {features: {detector: sift, max_keypoints: 300}}}\n"
        "loop: {ros__parameters: {gain_mode: constant}}\n")
    # A nested setting of an overlay replaces that one setting only (max_keypoints stays), dotted or nested.
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\nobserver: {ros__parameters: {features.detector: orb}}\n")
    (tmp_path / "top.yaml").write_text("extends: mid.yaml\nloop: {gain: 0.7}\n")
    assert load_pipeline_file(tmp_path / "top.yaml") == {
        "observer": {"features.detector": "orb", "features.max_keypoints": 300},
        "loop": {"gain_mode": "constant", "gain": 0.7}}
    _, _, loop = make_pipeline("ibvs", tmp_path / "top.yaml")
    assert (loop.gain_mode, loop.gain, loop.gain_inf) == ("constant", 0.7, get_pipeline("ibvs").loop.gain_inf)
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_pipeline_file(tmp_path / "a.yaml")
    # A name that is not next to the file is looked up in config/; the shipped variants are overlays of cns.yaml.
    (tmp_path / "akaze.yaml").write_text(
        "extends: cns.yaml\n"
        "observer: {ros__parameters: {features: {detector: akaze}, tracking: {enabled: false}}}\n")
    assert pipeline_settings("cns", tmp_path / "akaze.yaml") == pipeline_settings("cns", repo / "config/cns_akaze.yaml")
    # The same overlay as a mapping (a CLI that edits a file's sections): the base is looked up in config/.
    overlay = {"extends": "cns.yaml",
               "observer": {"ros__parameters": {"features.detector": "akaze", "tracking.enabled": False}}}
    assert pipeline_settings("cns", overlay) == pipeline_settings("cns", repo / "config/cns_akaze.yaml")


def test_pipeline_files_hold_only_what_differs() -> None:
    """Every key of a shipped pipeline file (base or overlay) changes a setting: it differs from what the
    pipeline runs with without it (the base file's value, else the dataclass / spec default)."""
    from pathlib import Path

    import yaml
    from vs_common.core.config import flatten_config, flatten_mapping
    from vs_controllers.core.pipelines import PIPELINES, node_config, pipeline_settings

    config = Path(__file__).resolve().parents[3] / "config"
    pipeline_of = {spec.config_file: name for name, spec in PIPELINES.items()}
    files = {p.name: yaml.safe_load(p.read_text()) or {} for p in sorted(config.glob("*.yaml"))}

    def root(name: str) -> str:
        base = files[name].get("extends")
        return root(base) if base else name

    checked = []
    for name, raw in files.items():
        if root(name) not in pipeline_of:
            continue  # a node's own file (servo.yaml, camera.yaml, ...): test_config_defaults.py checks those
        pipeline = pipeline_of[root(name)]
        without = pipeline_settings(pipeline, config / raw["extends"] if raw.get("extends") else {})
        for section, body in raw.items():
            if section == "extends":
                continue
            roles = PIPELINES[pipeline].nodes
            group = section if section in ("observer", "loop") or section in roles else "controller"
            if group in without:
                before = flatten_mapping(without[group])
            else:  # another node's section (relative_depth): its config class' defaults
                before = flatten_config(node_config(PIPELINES[pipeline], group)())
            for key, value in flatten_mapping(body.get("ros__parameters", body) or {}).items():
                assert value != before[key], f"{name}: {section}.{key} = {value!r} changes nothing"
        checked.append(name)
    assert {"ibvs.yaml", "cns.yaml", "cns_akaze.yaml", "cns_authors_loop.yaml"} <= set(checked)


#: The settings each shipped pipeline file gives, in dotted names, where they may differ from the defaults (the
#: config dataclasses' and the spec's loop); the files' headers document these values.
SHIPPED = {
    "ibvs.yaml": ("ibvs", {"observer.tracking.enabled": True, "observer.tracking.goal_lk_px": 2.0}),
    "cns.yaml": ("cns", {"observer.features.detector": "sift", "observer.features.max_keypoints": 400,
                         "observer.tracking.enabled": True}),
    "cns_akaze.yaml": ("cns", {"observer.features.detector": "akaze", "observer.features.max_keypoints": 400}),
    "cns_authors_loop.yaml": ("cns", {"observer.features.detector": "akaze", "observer.features.max_keypoints": 400,
                                      "loop.gain_mode": "constant", "loop.max_linear_mps": 0.0,
                                      "loop.max_angular_rps": 0.0}),
}
for _stage in ("stage2", "stage3"):
    SHIPPED[f"cns_{_stage}.yaml"] = ("cns", {**SHIPPED["cns_authors_loop.yaml"][1], "controller.network.checkpoint":
                                             f"src/vs_controllers/vs_controllers/weights/cns_{_stage}.pt"})


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_pipeline_files_resolve_to_the_documented_settings(name: str) -> None:
    from pathlib import Path

    from vs_common.core.config import flatten_mapping
    from vs_controllers.core.pipelines import pipeline_settings

    pipeline, changes = SHIPPED[name]
    config = Path(__file__).resolve().parents[3] / "config"
    defaults = flatten_mapping(pipeline_settings(pipeline, None))
    settings = flatten_mapping(pipeline_settings(pipeline, config / name))
    assert set(settings) == set(defaults) and {k: settings[k] for k in changes} == changes
    assert {k for k, v in settings.items() if v != defaults[k]} <= set(changes)  # everything else: the defaults
