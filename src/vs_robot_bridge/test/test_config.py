"""config/robot_bridge.yaml builds every config of the bridge; bad values are refused with the field name."""

from __future__ import annotations

from pathlib import Path

import pytest
from vs_common.core.config import from_mapping, load_yaml
from vs_common.core.errors import ConfigError
from vs_robot_bridge.core.backend import make_backend
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig, SimBackendConfig, UrRtdeConfig

YAML = Path(__file__).resolve().parents[3] / "config" / "robot_bridge.yaml"


def test_shipped_yaml_builds_all_configs():
    params = load_yaml(YAML, "robot_bridge")
    groups = {"safety": SafetyConfig, "ur": UrRtdeConfig, "sim": SimBackendConfig}
    top = {k: v for k, v in params.items() if k not in groups and k != "autostart"}
    from_mapping(BridgeConfig, top)
    for key, cls in groups.items():
        from_mapping(cls, params.get(key, {}))  # unknown keys and bad values fail here


def test_bad_values_name_the_field():
    with pytest.raises(ConfigError, match="backend"):
        BridgeConfig(backend="ur5")
    with pytest.raises(ConfigError, match="unknown SafetyConfig keys"):
        from_mapping(SafetyConfig, {"max_speed": 1.0})
    with pytest.raises(ConfigError, match="robot_ip"):
        UrRtdeConfig(robot_ip="")


def test_simulated_watchdog_may_be_slower_than_the_robots():
    """The one-process demo's simulated arm allows 2 s (config/sim_cell.yaml); the UR's watchdog needs >= 1 Hz."""
    sim_cell = load_yaml(YAML.parent / "sim_cell.yaml", "robot_bridge")
    assert SimBackendConfig(**sim_cell["sim"]).watchdog_min_frequency_hz == 0.5
    with pytest.raises(ConfigError, match="watchdog_min_frequency_hz"):
        SimBackendConfig(watchdog_min_frequency_hz=0.1)
    with pytest.raises(ConfigError, match="watchdog_min_frequency_hz"):
        UrRtdeConfig(watchdog_min_frequency_hz=0.5)


def test_make_backend_sim():
    assert make_backend("sim").name == "sim"
