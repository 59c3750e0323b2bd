"""Benchmark statistics: success rates with Wilson intervals, mean ± std of the successful episodes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

__all__ = ["mean_std", "summarise", "wilson_interval"]


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (better than the normal one near 0 and 1).

    Returns:
        (low, high) in [0, 1]; (0, 1) when n = 0.
    """
    if n <= 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation; NaN for an empty sequence."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def summarise(records: Sequence[Any], label: str = "") -> dict[str, Any]:
    """Summary of episode records (EpisodeRecord or their dicts).

    SR uses the CNS criterion (‖Δt‖ < 0.1‖t_target‖ and Δθ < 10°); SR_strict uses RE < 3° and
    TE < 3 cm. TS, RE and TE are over CNS-successful episodes, as in CNS's ``stat_results``.
    Timings (ms per step) are over all episodes.
    """
    recs = [r if isinstance(r, dict) else r.to_dict() for r in records]
    n = len(recs)
    ok = [r for r in recs if r["success_cns"]]
    n_ok = len(ok)
    n_strict = sum(bool(r["success_strict"]) for r in recs)
    out: dict[str, Any] = {"label": label, "n": n, "successes": n_ok, "successes_strict": n_strict}
    out["sr"] = n_ok / n if n else float("nan")
    out["sr_ci95"] = list(wilson_interval(n_ok, n))
    out["sr_strict"] = n_strict / n if n else float("nan")
    out["sr_strict_ci95"] = list(wilson_interval(n_strict, n))
    for key, field, scale in (("ts", "steps", 1.0), ("re_deg", "re_deg", 1.0), ("te_mm", "te_m", 1e3)):
        m, s = mean_std([r[field] * scale for r in ok])
        out[key], out[key + "_std"] = m, s
    for key in ("observer_ms", "controller_ms", "total_ms", "render_ms", "wall_s"):
        out[key] = mean_std([r[key] for r in recs])[0]
    # Records journaled before the observer's stages were timed have none.
    staged = [r["stage_ms"] for r in recs if r.get("stage_ms")]
    out["stage_ms"] = {k: mean_std([st.get(k, 0.0) for st in staged])[0] for k in staged[0]} if staged else {}
    reasons: dict[str, int] = {}
    for r in recs:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    out["stop_reasons"] = reasons
    return out
