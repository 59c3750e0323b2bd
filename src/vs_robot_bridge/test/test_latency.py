"""Command latency (#20): image stamp → bridge arrival and → the tick that sends it, in /diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig, SimBackendConfig
from vs_robot_bridge.core.latency import LatencyWindow
from vs_robot_bridge.core.sim_backend import SimBackend

CAM = "camera_color_optical_frame"


def test_motion_commands_are_timed_from_their_image_stamp():
    clock = [100.0]
    bridge = RobotBridge(BridgeConfig(), SafetyConfig(max_command_age_s=0.5, command_timeout_s=0.3),
                         SimBackend(SimBackendConfig(), clock=lambda: clock[0]))
    bridge.configure()
    bridge.activate()
    v = np.array([0.01, 0, 0, 0, 0, 0.0])
    for k, age in enumerate((0.10, 0.12, 0.20)):  # three commands from images this old on arrival
        now = 100.0 + 0.1 * k
        clock[0] = now
        assert bridge.submit(v, CAM, now - age, now) == ""
        for tick in range(3):  # only the first tick that sends a command counts
            clock[0] = now + 0.004 + 0.008 * tick
            bridge.tick(clock[0])
    assert bridge.submit(np.zeros(6), CAM, clock[0], clock[0]) == ""  # a zero twist is not a motion command
    values = bridge.status().latency
    assert values["image_to_bridge_n"] == "3" and values["image_to_robot_n"] == "3"
    assert float(values["image_to_bridge_min_ms"]) == pytest.approx(100.0)
    assert float(values["image_to_bridge_median_ms"]) == pytest.approx(120.0)
    assert float(values["image_to_robot_median_ms"]) == pytest.approx(124.0)
    bridge.activate()  # a new activation starts new windows
    assert bridge.status().latency["image_to_robot_n"] == "0"


def test_window_statistics():
    w = LatencyWindow(size=100)
    assert all(math.isnan(x) for x in w.stats_ms().values())
    for x in np.arange(1, 201) * 1e-3:  # 1..200 ms, only the last 100 are kept
        w.add(float(x))
    w.add(float("nan"))
    stats = w.stats_ms()
    assert len(w) == 100 and stats["min"] == pytest.approx(101.0) and stats["median"] == pytest.approx(150.5)
    assert stats["p95"] == pytest.approx(195.05)
