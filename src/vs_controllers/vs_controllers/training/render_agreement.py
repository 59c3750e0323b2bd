"""Agreement of a CNS policy with PBVS on observations of the rendered cell: a fast model-selection check.

Closed-loop checks on synthetic points (:mod:`eval_cns`) could not tell our checkpoints from the authors'
release, while the rendered benchmark could (their weights converge on most of our failures) at ~1 min per
episode. This check sits in between: it renders every benchmark scene's goal and a few poses on the
straight path from the initial pose to the goal, runs the real observer (``config/cns.yaml``'s; the scores
in the docs used AKAZE + RANSAC, ``config/cns_akaze.yaml``) once and caches the correspondences; a checkpoint
is then scored in seconds by the cosine between its *first* action on each cached observation (recurrent state
reset) and the PBVS twist towards the goal.

    python -m vs_controllers.training.render_agreement build --out runs/render_agreement.pkl
    python -m vs_controllers.training.render_agreement score --cache runs/render_agreement.pkl \\
        --checkpoint src/vs_controllers/vs_controllers/weights/cns_stage2.pt --checkpoint <other.pt>

The score is a proxy, not the benchmark: it ignores the recurrent state and the closed loop. Rotation
agreement (``cos_w``) tracked the benchmark in our checks (weights/cns.md); translation agreement is low for
every policy on a first step, because the network infers translation over several steps.
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

__all__ = ["AgreementSample", "build_samples", "main", "score"]


@dataclass
class AgreementSample:
    """One cached observation: goal and current correspondences plus the poses that define the PBVS twist."""

    scene_id: str
    fraction: float  # position on the path: 0 = the initial pose, 1 = the goal
    goal: Any  # Correspondences of the goal image
    obs: Any  # Correspondences of the current image
    w_T_c: np.ndarray
    w_T_t: np.ndarray


def _path_pose(w_T_a: np.ndarray, w_T_b: np.ndarray, s: float) -> np.ndarray:
    """The pose a fraction ``s`` of the way from ``a`` to ``b`` (slerp rotation, linear position)."""
    rots = Rotation.from_matrix(np.stack([w_T_a[:3, :3], w_T_b[:3, :3]]))
    T = np.eye(4)
    T[:3, :3] = Slerp([0.0, 1.0], rots)([s]).as_matrix()[0]
    T[:3, 3] = (1.0 - s) * w_T_a[:3, 3] + s * w_T_b[:3, 3]
    return T


def build_samples(scenes: list[Any], cell: Any, observer_config: Any,
                  fractions: tuple[float, ...] = (0.0, 0.4, 0.75), progress: bool = True) -> list[AgreementSample]:
    """Render and observe ``fractions`` of every scene's path; observations with < 3 matches are skipped."""
    from tqdm import tqdm
    from vs_common.core.errors import VisualServoError
    from vs_perception.core.observer import Observer

    out: list[AgreementSample] = []
    for scene in tqdm(scenes, disable=not progress, desc="render + observe"):
        cell.load_scene(scene)
        frame = cell.render(scene.w_T_goal, streams=("color", "depth"))
        observer = Observer(observer_config)
        try:
            goal = observer.set_goal(frame.color, frame.depth, cell.camera, goal_id=scene.id)
        except VisualServoError:
            continue
        goal.info["distance_prior_m"] = float(scene.distance_m)
        for s in fractions:
            w_T_c = _path_pose(scene.w_T_init, scene.w_T_goal, s)
            cur = cell.render(w_T_c, streams=("color", "depth"))
            try:
                obs = observer.observe(cur.color, cur.depth)
            except VisualServoError:
                continue
            if obs.num_valid >= 3:
                out.append(AgreementSample(scene.id, s, goal, obs, w_T_c, np.asarray(scene.w_T_goal, float)))
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def score(samples: list[AgreementSample], checkpoint: str) -> dict[str, float]:
    """Mean cosines between the first action of ``checkpoint`` and PBVS on every sample.

    Returns ``cos_w`` (rotation), ``cos_v`` (translation), ``cos_all`` (the distance-scaled 6-D twist, as
    the training loss sees it), ``frac_w_below_0.5`` (share of clearly wrong rotations) and ``n``.
    """
    from vs_controllers.core.cns.controller import CNSConfig, CNSController, NetworkConfig
    from vs_controllers.training.experts import pbvs_straight

    ctrl = CNSController(CNSConfig(network=NetworkConfig(checkpoint=checkpoint)))
    cw, cv, ca = [], [], []
    last = None
    for smp in samples:
        if smp.goal is not last:
            ctrl.set_goal(smp.goal)
            last = smp.goal
        ctrl.reset()
        out = ctrl.compute(smp.obs)
        if not out.ok:
            continue
        v = np.asarray(out.v_c, float)
        gt = pbvs_straight(smp.w_T_c[None], smp.w_T_t[None])[0]
        d = float(smp.goal.info["distance_prior_m"])
        cw.append(_cos(v[3:], gt[3:]))
        cv.append(_cos(v[:3], gt[:3]))
        ca.append(_cos(np.r_[v[:3] / d, v[3:]], np.r_[gt[:3] / d, gt[3:]]))
    cw_a = np.asarray(cw)
    return {"n": len(cw), "cos_w": float(cw_a.mean()), "cos_v": float(np.mean(cv)), "cos_all": float(np.mean(ca)),
            "frac_w_below_0.5": float((cw_a < 0.5).mean())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="render, observe and cache the samples")
    b.add_argument("--out", required=True)
    b.add_argument("--scenes", default=None, help="'a:b' slice or comma-separated ids of the render set (default all)")
    b.add_argument("--fractions", default="0,0.4,0.75", help="positions on the initial→goal path")
    b.add_argument("--config", default=None, help="pipeline YAML for the observer (default config/cns.yaml)")
    s = sub.add_parser("score", help="score checkpoints on a cache")
    s.add_argument("--cache", required=True)
    s.add_argument("--checkpoint", action="append", required=True, help="repeat to compare several")
    s.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.cmd == "build":
        from vs_controllers.benchmark.cli import _default_path
        from vs_controllers.benchmark.runner import default_cell_factory, select_scenes
        from vs_controllers.core.pipelines import make_pipeline

        obs_cfg, _, _ = make_pipeline("cns", _default_path(args.config, "cns.yaml"))
        samples = build_samples(select_scenes("render", "A", args.scenes), default_cell_factory("render"), obs_cfg,
                                tuple(float(x) for x in args.fractions.split(",")))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "wb") as f:
            pickle.dump(samples, f)
        print(f"{len(samples)} samples → {args.out}")
    else:
        import torch

        torch.set_num_threads(args.threads)
        with open(args.cache, "rb") as f:
            samples = pickle.load(f)  # noqa: S301 - a local cache this tool wrote
        for ck in args.checkpoint:
            print(json.dumps({"checkpoint": ck, **{k: round(v, 4) for k, v in score(samples, ck).items()}}))


if __name__ == "__main__":
    # Run through the imported module so the cache pickles AgreementSample under its importable name.
    from vs_controllers.training import render_agreement

    render_agreement.main()
