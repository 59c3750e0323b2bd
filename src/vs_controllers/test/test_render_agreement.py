"""The render-agreement check: real rendering + observer, cached samples, and a score that separates policies."""

import pickle

import numpy as np
import pytest
import torch
from vs_controllers.core.cns.network import GraphVS
from vs_controllers.training import render_agreement
from vs_controllers.training.render_agreement import _path_pose


def test_path_pose_runs_from_the_initial_pose_to_the_goal():
    a = np.eye(4)
    b = np.eye(4)
    b[:3, 3] = [0.2, 0.0, 0.4]
    b[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 90 deg about z
    np.testing.assert_allclose(_path_pose(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(_path_pose(a, b, 1.0), b, atol=1e-12)
    mid = _path_pose(a, b, 0.5)
    np.testing.assert_allclose(mid[:3, 3], [0.1, 0.0, 0.2])
    assert np.degrees(np.arccos((np.trace(mid[:3, :3]) - 1) / 2)) == pytest.approx(45.0)


def test_build_and_score_separate_the_trained_policy_from_a_random_one(tmp_path):
    pytest.importorskip("pybullet")
    cache = tmp_path / "ra.pkl"
    render_agreement.main(["build", "--out", str(cache), "--scenes", "0:2", "--fractions", "0,0.5"])
    with open(cache, "rb") as f:
        samples = pickle.load(f)
    assert 1 <= len(samples) <= 4 and all(s.obs.num_valid >= 3 for s in samples)
    torch.manual_seed(0)
    random_ckpt = tmp_path / "random.pt"
    torch.save(GraphVS().checkpoint(), random_ckpt)
    trained = render_agreement.score(samples, "")  # "" = the shipped checkpoint
    random = render_agreement.score(samples, str(random_ckpt))
    assert trained["n"] == random["n"] == len(samples)
    for res in (trained, random):
        assert -1.0 <= res["cos_w"] <= 1.0 and 0.0 <= res["frac_w_below_0.5"] <= 1.0
    assert trained["cos_w"] > 0.5 > random["cos_w"]
