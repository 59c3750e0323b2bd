"""The depth_pc pipeline's wiring: one spec, its file, its input stage; the controller itself is tested in
test_depth_pc_controller.py (the Depth-PC network helper's)."""

from __future__ import annotations

from pathlib import Path

from vs_common.core.config import flatten_mapping
from vs_controllers.core.inputs import RelativeDepthInput, make_inputs
from vs_controllers.core.pipelines import Input, get_pipeline, pipeline_settings

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_depth_pc_is_one_spec_with_relative_depth() -> None:
    spec = get_pipeline("depth_pc")
    assert spec.inputs == (Input.CORRESPONDENCES, Input.RELATIVE_DEPTH)
    assert spec.nodes == ("goal", "observer", "relative_depth") and spec.camera_streams == ("color", "depth")
    assert spec.loop == get_pipeline("cns").loop
    assert isinstance(make_inputs(spec)[Input.RELATIVE_DEPTH], RelativeDepthInput)


def test_the_shipped_file_gives_cns_observer_and_the_aligned_depth() -> None:
    settings = flatten_mapping(pipeline_settings("depth_pc", CONFIG / "depth_pc.yaml"))
    defaults = flatten_mapping(pipeline_settings("depth_pc", None))
    changed = {k: v for k, v in settings.items() if k in defaults and v != defaults[k]}
    assert changed == {"observer.features.detector": "sift", "observer.features.max_keypoints": 400,
                       "observer.tracking.enabled": True}
    cns = flatten_mapping(pipeline_settings("cns", CONFIG / "cns.yaml"))
    assert {k: v for k, v in settings.items() if k.startswith("observer.")} == \
        {k: v for k, v in cns.items() if k.startswith("observer.")}  # CNS's observer, as shipped
    assert settings["relative_depth.source"] == "aligned"  # no Depth Anything weights on this machine
    extra = {k for k in settings if k not in defaults}
    assert extra and all(k.startswith("relative_depth.") for k in extra)


def test_the_shipped_checkpoint_builds_the_controller() -> None:
    from vs_controllers.core.depth_pc.controller import default_checkpoint
    from vs_controllers.core.pipelines import make_pipeline

    assert default_checkpoint().is_file(), "the registered pipeline's checkpoint ships with it (weights/depthpc.md)"
    obs_cfg, ctrl, loop = make_pipeline("depth_pc", CONFIG / "depth_pc.yaml")
    assert ctrl.name == "depth_pc" and obs_cfg.features.detector == "sift" and loop == get_pipeline("cns").loop
