"""Benchmark protocol settings (one frozen dataclass; YAML in ``config/benchmark/``)."""

from __future__ import annotations

from dataclasses import dataclass

from vs_common.core.config import check_range, describe

from vs_controllers.core.stop_policy import StopPolicyConfig

__all__ = ["BenchmarkConfig"]

_STOP = StopPolicyConfig()


@dataclass(frozen=True)
class BenchmarkConfig:
    """Episode loop, stop conditions and success criteria."""

    dt_s: float = describe("Integration step of the commanded twist (s); CNS: 2 × 0.02 s.", default=0.04)
    max_steps: int = describe("Step cap per episode (CNS: 600).", default=600)
    # The CNS protocol's stop policy is StopPolicyConfig's defaults (one source).
    stop_waiting_s: float = describe("Stop policy: plateau time before stopping (s).",
                                     default=_STOP.waiting_time_s)
    stop_threshold: float = describe("Stop policy: error threshold (normalised image units).",
                                     default=_STOP.threshold)
    min_matches: int = describe("Fewer valid correspondences than this counts as a lost frame.", default=3)
    lost_patience_steps: int = describe("End the episode after this many consecutive lost frames.", default=10)
    floor_z_m: float = describe("End the episode when the camera goes below this world height (m).", default=0.0)
    cns_rel_translation: float = describe(
        "CNS success: ‖Δt‖ < this × ‖t_target‖ (t_target = goal camera position, world frame).", default=0.1)
    cns_rotation_deg: float = describe("CNS success: Δθ < this (deg).", default=10.0)
    strict_translation_m: float = describe("Strict success: TE < this (m).", default=0.03)
    strict_rotation_deg: float = describe("Strict success: RE < this (deg).", default=3.0)
    record_every: int = describe("Keep every k-th step of the error curves and trajectory.", default=1)

    def __post_init__(self) -> None:
        check_range("dt_s", self.dt_s, 0.0, lo_open=True)
        check_range("max_steps", self.max_steps, 1)
        check_range("stop_waiting_s", self.stop_waiting_s, 0.0)
        check_range("stop_threshold", self.stop_threshold, 0.0, lo_open=True)
        check_range("min_matches", self.min_matches, 0)
        check_range("lost_patience_steps", self.lost_patience_steps, 1)
        check_range("cns_rel_translation", self.cns_rel_translation, 0.0, lo_open=True)
        check_range("cns_rotation_deg", self.cns_rotation_deg, 0.0, lo_open=True)
        check_range("strict_translation_m", self.strict_translation_m, 0.0, lo_open=True)
        check_range("strict_rotation_deg", self.strict_rotation_deg, 0.0, lo_open=True)
        check_range("record_every", self.record_every, 1)
