"""Closed-loop check of a CNS checkpoint on synthetic points (no rendering).

Runs B seeded episodes of the training environment (ideal or noisy correspondences), each driven by
the policy alone for a fixed number of steps, and reports the success rate and final errors.

    python -m vs_controllers.training.eval_cns --checkpoint src/vs_controllers/vs_controllers/weights/cns_table.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vs_controllers.core.cns.graph import GraphBatch, collate
from vs_controllers.core.cns.network import GraphVS, postprocess
from vs_controllers.training.point_env import EnvConfig, PointEnvBatch

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(net: GraphVS, env_cfg: EnvConfig | None = None, episodes: int = 32, steps: int = 300,
             seed: int = 2022, success_re_deg: float = 3.0, success_te_m: float = 0.03,
             make_env: Callable[[EnvConfig, int, int], PointEnvBatch] = PointEnvBatch,
             collate_fn: Callable[[list[Any]], GraphBatch] = collate) -> dict[str, float]:
    """Closed-loop roll-outs of ``net`` on ``episodes`` fixed scenes.

    Args:
        net: the policy (evaluated in eval mode, state restored afterwards).
        env_cfg: environment settings (default: the training distribution with noise); near-goal and
            large-turn starts are turned off, so every run's checks start from the same far-start distribution.
        episodes: number of scenes (one batch).
        steps: steps per episode (each is ``gain·dt`` = 0.04 s of motion with the defaults).
        seed: scene seed (same seed → same scenes).
        success_re_deg, success_te_m: success thresholds on the final rotation / translation error.
        make_env: ``(cfg, episodes, seed) → environments`` (another policy's environments, e.g. Depth-PC's).
        collate_fn: batches that environment's graphs for ``net``.

    Returns:
        success rate, median / mean final errors (deg, mm) of all and of successful episodes,
        the initial errors, and the wall time.
    """
    cfg = env_cfg or EnvConfig()
    cfg = dataclasses.replace(cfg, max_steps=steps, near_goal_starts=0.0, large_turn_starts=0.0)  # run to run
    was_training = net.training
    net.eval()
    t0 = time.perf_counter()
    env = make_env(cfg, episodes, seed)
    te0, re0 = env.errors()
    hidden = None
    d = torch.from_numpy(env.dists()).float()
    for _ in range(steps):
        v_dir, l, hidden = net(collate_fn(env.observe()), hidden)
        env.step(postprocess(v_dir, l, d).double().numpy())
    te, re = env.errors()
    net.train(was_training)
    ok = (re < success_re_deg) & (te < success_te_m)
    return {
        "episodes": episodes, "steps": steps, "success_rate": float(ok.mean()),
        "median_re_deg": float(np.median(re)), "median_te_mm": float(np.median(te) * 1e3),
        "mean_re_deg_success": float(re[ok].mean()) if ok.any() else float("nan"),
        "mean_te_mm_success": float(te[ok].mean() * 1e3) if ok.any() else float("nan"),
        "initial_median_re_deg": float(np.median(re0)), "initial_median_te_mm": float(np.median(te0) * 1e3),
        "wall_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="our checkpoint or the authors' cns_state_dict.pth")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--ideal", action="store_true", help="no mismatches, jitter or missing points")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = GraphVS.from_checkpoint(args.checkpoint)
    res = evaluate(net, EnvConfig(noise=not args.ideal), args.episodes, args.steps, args.seed)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
