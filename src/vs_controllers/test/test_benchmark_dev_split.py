"""Benchmark dev split and observer overrides: settings are chosen on generated scenes, not the stored sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from vs_common.core.errors import ConfigError
from vs_controllers.benchmark.cli import parse_overrides, with_observer_overrides
from vs_controllers.benchmark.episode import stage_means
from vs_controllers.benchmark.runner import dev_scenes, select_scenes
from vs_controllers.core.pipelines import make_pipeline

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("env", ["render", "image"])
def test_dev_split_is_generated_and_never_the_stored_set(env: str) -> None:
    stored = select_scenes(env)
    dev = select_scenes(env, "A", "0:5", scenes_seed=7)
    assert len(dev) == 5 and all(s.env == env for s in dev)
    assert {s.seed for s in dev}.isdisjoint({s.seed for s in stored})
    assert [s.seed for s in dev] == [s.seed for s in dev_scenes(env, 7)[:5]]
    assert all(s.section == "L" for s in select_scenes(env, "L", scenes_seed=7))
    with pytest.raises(ConfigError, match="stored"):
        dev_scenes(env, stored[0].seed // 1000)


def test_observer_overrides_reach_the_observer_config() -> None:
    overrides = parse_overrides(["tracking.enabled=true", "tracking.redetect_every=3", "features.detector=orb"])
    assert overrides == {"tracking.enabled": True, "tracking.redetect_every": 3, "features.detector": "orb"}
    cfg = with_observer_overrides(REPO / "config/cns.yaml", overrides)
    obs_cfg, _, _ = make_pipeline("ibvs", with_observer_overrides(REPO / "config/ibvs.yaml", overrides))
    assert isinstance(cfg, dict) and obs_cfg.tracking.enabled and obs_cfg.tracking.redetect_every == 3
    assert obs_cfg.features.detector == "orb" and obs_cfg.features.max_keypoints == 1000  # the others stay
    assert with_observer_overrides(REPO / "config/ibvs.yaml", {}) == REPO / "config/ibvs.yaml"
    # An overlay file keeps its base's settings under the override.
    akaze, _, _ = make_pipeline("cns", with_observer_overrides(REPO / "config/cns_akaze.yaml",
                                                               {"tracking.enabled": True}))
    assert akaze.features.detector == "akaze" and akaze.features.max_keypoints == 400 and akaze.tracking.enabled
    with pytest.raises(ConfigError, match=r"unknown ObserverConfig keys \['track'\]"):
        make_pipeline("ibvs", with_observer_overrides(REPO / "config/ibvs.yaml", {"track": True}))
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["tracking.enabled"])


def test_stage_means() -> None:
    infos = [{"detect_ms": 10.0, "match_ms": 2.0, "track_ms": 0.0, "ransac_ms": 1.0, "mode": "detect"},
             {"detect_ms": 0.0, "match_ms": 0.0, "track_ms": 3.0, "ransac_ms": 1.0, "mode": "track"}]
    assert stage_means(infos) == {"detect_ms": 5.0, "match_ms": 1.0, "track_ms": 1.5, "ransac_ms": 1.0,
                                  "detect_fraction": 0.5}
    assert stage_means([]) == {}
