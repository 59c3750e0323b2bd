"""Per-step cost of the CNS controller (graph build + network) on synthetic correspondences.

    python -m vs_controllers.training.cns_timing --points 100 200 300 [--checkpoint PATH] [--threads 1]

Prints, per keypoint count, the median and 90th percentile of the controller step (and its graph /
network parts) over ``--steps`` steps, and the cost of the first step after a new goal (clustering).
Weights do not change the cost; without ``--checkpoint`` a randomly initialised network is timed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from vs_common.core.camera import CameraModel
from vs_perception.core.types import Correspondences

from vs_controllers.core.cns.controller import CNSConfig, CNSController
from vs_controllers.core.cns.network import GraphVS
from vs_controllers.training.point_env import EnvConfig, PointEnvBatch

__all__ = ["time_controller"]

CAMERA = CameraModel(np.array([[540.0, 0, 320], [0, 540.0, 240], [0, 0, 1]]), 640, 480)


def _to_pixels(xy: np.ndarray) -> np.ndarray:
    return xy * [CAMERA.fx, CAMERA.fy] + [CAMERA.cx, CAMERA.cy]


def time_controller(net: GraphVS, num_points: int, steps: int = 200, seed: int = 0) -> dict[str, float]:
    """Run the controller along a PBVS trajectory of a synthetic scene with ``num_points`` keypoints.

    Returns:
        milliseconds: first step (with clustering), median / p90 of the step, graph and network parts.
    """
    env = PointEnvBatch(EnvConfig(num_points_min=num_points, num_points_max=num_points, noise=False), 1, seed)
    ctrl = CNSController(CNSConfig(), net=net)
    goal_xy = env.episodes[0].goal.goal_xy
    goal = Correspondences(CAMERA, _to_pixels(goal_xy), _to_pixels(goal_xy), np.ones(num_points, bool),
                           info={"distance_prior_m": env.episodes[0].dist})
    t0 = time.perf_counter()
    ctrl.set_goal(goal)
    steps_ms, graph_ms, net_ms, first_ms = [], [], [], 0.0
    for i in range(steps + 1):
        g = env.observe()[0]
        obs = Correspondences(CAMERA, goal.goal_uv, _to_pixels(g.x_cur.astype(np.float64)), g.node_mask)
        out = ctrl.compute(obs)
        if i == 0:
            first_ms = 1e3 * (time.perf_counter() - t0)
            continue
        steps_ms.append(out.info["controller_ms"])
        graph_ms.append(out.info["graph_ms"])
        net_ms.append(out.info["net_ms"])
        env.step(env.expert())
    q = lambda a, p: float(np.percentile(a, p))  # noqa: E731
    return {"points": num_points, "clusters": ctrl.graphs.goal.num_clusters, "first_step_ms": first_ms,
            "median_ms": q(steps_ms, 50), "p90_ms": q(steps_ms, 90),
            "graph_median_ms": q(graph_ms, 50), "net_median_ms": q(net_ms, 50)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, nargs="+", default=[100, 200, 300])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = GraphVS.from_checkpoint(args.checkpoint) if args.checkpoint else GraphVS().eval()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps")
    print(f"{'points':>6} {'clusters':>8} {'first':>8} {'median':>8} {'p90':>8} {'graph':>8} {'net':>8}  (ms)")
    for n in args.points:
        r = time_controller(net, n, args.steps)
        print(f"{n:>6} {r['clusters']:>8} {r['first_step_ms']:>8.1f} {r['median_ms']:>8.2f} {r['p90_ms']:>8.2f} "
              f"{r['graph_median_ms']:>8.2f} {r['net_median_ms']:>8.2f}")


if __name__ == "__main__":
    main()
