"""The near-goal probe: views at the asked distance, and IBVS's unit twist pointing at the goal with unit gain."""

from __future__ import annotations

import numpy as np
import pytest
from vs_common.core.se3 import exp_se3, pose_error
from vs_controllers.benchmark.near_goal import METRICS, markdown, near_goal_views, probe, summarize
from vs_controllers.benchmark.runner import select_scenes


def test_views_are_at_the_offset() -> None:
    w_T_goal = exp_se3(np.array([0.1, -0.2, 0.5, 0.3, -0.4, 1.2]))
    views = near_goal_views(w_T_goal, 5, 2.0, 0.2, np.random.default_rng(1))
    for T in views:
        te, re = pose_error(w_T_goal, T)
        assert te == pytest.approx(0.002, abs=1e-9) and re == pytest.approx(0.2, abs=1e-6)
    assert not np.allclose(views[0], views[1])


def test_ibvs_points_at_the_goal_with_unit_gain() -> None:
    """IBVS's unit-gain twist is the interaction matrix's inverse on the error: near the goal it is the
    needed motion (ė = −e). A probe that got the frames or the sign wrong would fail here."""
    scenes = select_scenes("image", "A", "0:2", scenes_seed=7)
    rows = probe("ibvs", scenes, env="image", trials=2, resamples=3)
    assert len(rows) >= 3 and all(set(METRICS) <= set(r) for r in rows)
    s = summarize(rows)
    assert s["cos_v"] > 0.8 and s["cos_w"] > 0.8, s
    assert 0.5 < s["gain_v"] < 2.0 and 0.5 < s["gain_w"] < 2.0, s
    assert 0.0 < s["drop_v"] < 1.0, s  # dropping rows moves the twist, a little
    assert markdown({"ibvs": s}).count("\n") == 2
