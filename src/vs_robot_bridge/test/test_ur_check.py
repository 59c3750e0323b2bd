"""The hardware check tool's steps, run against the simulated backend with a hand-stepped clock."""

from __future__ import annotations

import numpy as np
from vs_robot_bridge.core.config import SimBackendConfig
from vs_robot_bridge.core.sim_backend import SimBackend
from vs_robot_bridge.tools.ur_check import main, run_check


class Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def _check(answer: str, sim: SimBackend | None = None, clock: Clock | None = None):
    clock = clock or Clock()
    sim = sim or SimBackend(SimBackendConfig(), clock=clock)
    lines: list[str] = []
    code = run_check(sim, axis="x", ask=lambda prompt: answer, out=lines.append, clock=clock, sleep=clock.sleep)
    return code, "\n".join(lines), sim


def test_confirmed_move_goes_one_cm_and_back():
    clock = Clock()
    sim = SimBackend(SimBackendConfig(), clock=clock)
    p0 = sim.base_T_tcp[:3, 3].copy()
    code, text, sim = _check("yes", sim, clock)
    assert code == 0, text
    assert "PASS" in text and "dry run" in text
    assert np.linalg.norm(sim.base_T_tcp[:3, 3] - p0) < 3e-3
    assert "speedStop" in sim.calls


def test_without_confirmation_nothing_is_sent():
    code, text, sim = _check("no")
    assert code == 0 and "skipped" in text
    assert "speedL" not in sim.calls


def test_stopped_robot_fails_before_prompt():
    clock = Clock()
    sim = SimBackend(SimBackendConfig(), clock=clock)
    sim.inject_protective_stop()
    code, text, _ = _check("yes", sim, clock)
    assert code == 1 and "protective stop" in text
    assert "speedL" not in sim.calls


def test_cli_rejects_large_moves(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--ip", "127.0.0.1", "--distance", "0.5"])
