"""SE(3) helpers: the batched pose errors agree with the single-pose ones."""

import numpy as np
from vs_common.core.se3 import exp_se3, pose_error, pose_errors


def test_pose_errors_match_pose_error_pairwise() -> None:
    rng = np.random.default_rng(3)
    w_T_a = np.stack([exp_se3(rng.normal(size=6)) for _ in range(20)])
    w_T_b = np.stack([exp_se3(rng.normal(size=6)) for _ in range(20)])
    te, re = pose_errors(w_T_a, w_T_b)
    assert te.shape == re.shape == (20,)
    expected = np.array([pose_error(a, b) for a, b in zip(w_T_a, w_T_b)])
    np.testing.assert_allclose(te, expected[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(re, expected[:, 1], rtol=0, atol=1e-9)
    te0, re0 = pose_errors(w_T_a, w_T_a)
    assert np.all(te0 < 1e-12) and np.all(re0 < 1e-6)
