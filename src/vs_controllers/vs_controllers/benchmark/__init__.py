"""The servo benchmark: any pipeline over a fixed, seeded scene set of the simulated cell.

Run ``python -m vs_controllers.benchmark --help``. The protocol follows CNS (time step 0.04 s, 600
step cap, pixel stop policy, SR / TS / RE / TE / timings) and reports a second, stricter success rate
(RE < 3°, TE < 3 cm).
"""

from vs_controllers.benchmark.config import BenchmarkConfig
from vs_controllers.benchmark.episode import EpisodeRecord, run_episode
from vs_controllers.benchmark.metrics import summarise, wilson_interval

__all__ = ["BenchmarkConfig", "EpisodeRecord", "run_episode", "summarise", "wilson_interval"]
