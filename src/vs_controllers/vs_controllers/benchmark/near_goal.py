"""Near-goal twist probe: does a controller point at the goal when it is almost there, and how much does its
twist move when a few correspondences come and go?

A servo run ends in the last millimetre: a controller whose unit-gain twist there points away from the goal,
or swings when the matched set changes, jitters around it instead of settling (the CNS protocol's stop rule
then never fires and the run meets the step cap). Per scene of a development split this renders the goal view
and ``trials`` views offset from it by ``offset_mm`` in a random direction and ``offset_deg`` about a random
axis, observes each with the pipeline's observer, and reports for the controller's unit-gain twist
``v₁ = (v, ω)`` (what the loop multiplies by its gain):

- ``cos_v``, ``cos_w``: cosine of ``v`` with the camera translation that reaches the goal, and of ``ω`` with
  the rotation vector that does (1 = points straight at it);
- ``gain_v``, ``gain_w``: ``‖v‖ / ‖t‖`` and ``‖ω‖ / ‖θ‖`` (1 /s = the error decays as ``ė = −e`` at unit
  gain; the loop's delay cap assumes that, ``vs_controllers.core.loop.delay_gain_cap``);
- ``drop_v``, ``drop_w``: the mean change of ``v`` / ``ω`` when ``drop`` of the valid rows are made invalid
  (``resamples`` random draws), relative to ``‖v‖`` / ``‖ω‖``.

A relative-depth pipeline gets the renderer's depth, min–max normalised, for the goal and for each view (its
ideal estimator). Not a benchmark row: a diagnostic for choosing settings and checkpoints on a dev split.

Example:
    python -m vs_controllers.benchmark.near_goal --pipelines cns,depth_pc --scenes 0:10
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.errors import VisualServoError
from vs_common.core.se3 import offset_pose
from vs_perception.core.keypoint_depth import DepthMap
from vs_perception.core.observer import Observer
from vs_perception.core.relative_depth import metric_to_relative

from vs_controllers.benchmark.cli import _default_path, add_dev_split_arguments
from vs_controllers.benchmark.runner import select_scenes
from vs_controllers.core.inputs import make_inputs
from vs_controllers.core.pipelines import Input, get_pipeline, make_pipeline

__all__ = ["METRICS", "near_goal_views", "probe", "summarize"]

#: Per-view numbers :func:`probe` returns (module docstring).
METRICS = ("cos_v", "cos_w", "gain_v", "gain_w", "drop_v", "drop_w", "valid")


def near_goal_views(w_T_goal: np.ndarray, trials: int, offset_mm: float, offset_deg: float,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """``trials`` camera poses at exactly ``offset_mm`` and ``offset_deg`` from the goal (random directions)."""
    return [offset_pose(w_T_goal, offset_mm * 1e-3, offset_deg, rng) for _ in range(trials)]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _twist(controller: Any, stage: Any, obs: Any) -> np.ndarray | None:
    """The controller's unit-gain twist on its first step for ``obs`` (through the depth stage), None if it cannot."""
    if stage is not None:
        obs, why = stage.prepare(obs)
        if why:
            return None
    controller.reset()
    out = controller.compute(obs)
    return np.asarray(out.v_c, float) if out.ok else None


def probe(pipeline: str, scenes: list[Any], env: str = "render", trials: int = 3, offset_mm: float = 1.0,
          offset_deg: float = 0.1, drop: float = 0.1, resamples: int = 20, seed: int = 0,
          config: Any = None) -> list[dict[str, float]]:
    """The near-goal numbers of one pipeline, one dict per view (keys :data:`METRICS`, + scene).

    Args:
        pipeline: a registered pipeline name.
        scenes: scenes of ``env`` (a dev split: :func:`~vs_controllers.benchmark.runner.select_scenes`).
        trials: views per scene; offset_mm, offset_deg: their distance from the goal.
        drop: fraction of the valid rows made invalid in each resample; resamples: how many.
        seed: the views' and resamples' random generator (the same seed gives every pipeline the same views).
        config: the pipeline file (path or mapping), None = its shipped file.
    """
    from vs_sim.core.cells import make_cell

    spec = get_pipeline(pipeline)
    obs_cfg, controller, _ = make_pipeline(pipeline, config if config is not None
                                           else _default_path(None, spec.config_file))
    rng = np.random.default_rng(seed)
    cell = make_cell(env)
    rows: list[dict[str, float]] = []
    for scene in scenes:
        cell.load_scene(scene)
        w_T_goal = np.asarray(scene.w_T_goal, float)
        goal = cell.render(w_T_goal, streams=("color", "depth"))
        for w_T_cam in near_goal_views(w_T_goal, trials, offset_mm, offset_deg, rng):
            view = cell.render(w_T_cam, streams=("color", "depth"))
            observer = Observer(obs_cfg)
            stage = make_inputs(spec).get(Input.RELATIVE_DEPTH)
            try:
                g = observer.set_goal(goal.color, goal.depth, cell.camera, goal_id=str(scene.id))
                if stage is not None:
                    g.goal_stamp = -1.0
                    stage.set_goal(g)
                    stage.depth.add_goal(DepthMap(metric_to_relative(goal.depth), g.goal_stamp))
                    stage.depth.update(DepthMap(metric_to_relative(view.depth), 0.0))
                    g, why = stage.prepare_goal(g)
                    if why:
                        continue
                controller.set_goal(g)
                obs = observer.observe(view.color, view.depth, stamp=0.0)
            except VisualServoError:
                continue

            v1 = _twist(controller, stage, obs)
            idx = np.flatnonzero(obs.valid)
            if v1 is None or len(idx) < 10:
                continue
            moved = []
            for _ in range(resamples):
                gone = rng.choice(idx, size=max(1, int(round(drop * len(idx)))), replace=False)
                valid, uv = obs.valid.copy(), obs.current_uv.copy()
                valid[gone], uv[gone] = False, np.nan
                v = _twist(controller, stage, dataclasses.replace(obs, valid=valid, current_uv=uv, info=dict(obs.info)))
                if v is not None:
                    moved.append(v - v1)
            cam_T_goal = np.linalg.inv(w_T_cam) @ w_T_goal  # the motion, in the current camera frame
            t_need = cam_T_goal[:3, 3]
            r_need = Rotation.from_matrix(cam_T_goal[:3, :3]).as_rotvec()
            d = np.array(moved) if moved else np.full((1, 6), np.nan)
            nv, nw = float(np.linalg.norm(v1[:3])), float(np.linalg.norm(v1[3:]))
            rows.append({
                "scene": str(scene.id), "cos_v": _cos(v1[:3], t_need), "cos_w": _cos(v1[3:], r_need),
                "gain_v": nv / float(np.linalg.norm(t_need)), "gain_w": nw / float(np.linalg.norm(r_need)),
                "drop_v": float(np.linalg.norm(d[:, :3], axis=1).mean()) / max(nv, 1e-12),
                "drop_w": float(np.linalg.norm(d[:, 3:], axis=1).mean()) / max(nw, 1e-12),
                "valid": float(len(idx))})
    return rows


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    """Medians of :data:`METRICS` over the views, the 10th percentile of the cosines, and the view count."""
    out: dict[str, float] = {"views": float(len(rows))}
    for k in METRICS:
        vals = np.array([r[k] for r in rows], float)
        out[k] = float(np.nanmedian(vals)) if len(vals) else float("nan")
    for k in ("cos_v", "cos_w"):
        vals = np.array([r[k] for r in rows], float)
        out[f"{k}_p10"] = float(np.nanpercentile(vals, 10)) if len(vals) else float("nan")
    return out


def markdown(results: dict[str, dict[str, float]]) -> str:
    lines = ["| pipeline | views | cos v (median / p10) | cos ω (median / p10) | ‖v‖/‖t‖ (1/s) | ‖ω‖/‖θ‖ (1/s) "
             "| Δv on dropping rows | Δω on dropping rows | valid rows |", "|" + "---|" * 9]
    for name, s in results.items():
        lines.append(f"| {name} | {s['views']:.0f} | {s['cos_v']:.2f} / {s['cos_v_p10']:.2f} "
                     f"| {s['cos_w']:.2f} / {s['cos_w_p10']:.2f} | {s['gain_v']:.1f} | {s['gain_w']:.1f} "
                     f"| {100 * s['drop_v']:.0f} % | {100 * s['drop_w']:.0f} % | {s['valid']:.0f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vs_controllers.benchmark.near_goal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipelines", default="ibvs,cns,depth_pc", help="comma-separated pipeline names")
    add_dev_split_arguments(p, scenes="0:10")
    p.add_argument("--trials", type=int, default=3, help="views per scene")
    p.add_argument("--offset-mm", type=float, default=1.0)
    p.add_argument("--offset-deg", type=float, default=0.1)
    p.add_argument("--drop", type=float, default=0.1, help="fraction of valid rows dropped per resample")
    p.add_argument("--resamples", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", action="append", default=[], metavar="PIPELINE=FILE",
                   help="a pipeline file other than the shipped one (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configs = dict(c.split("=", 1) for c in args.config)
    if args.scenes_seed is None or not 0.0 < args.drop < 1.0:
        print("near_goal: needs a dev split (--scenes-seed) and 0 < --drop < 1", file=sys.stderr)
        return 2
    scenes = select_scenes(args.env, args.section, args.scenes, scenes_seed=args.scenes_seed)
    results = {}
    for name in args.pipelines.split(","):
        rows = probe(name, scenes, args.env, args.trials, args.offset_mm, args.offset_deg, args.drop,
                     args.resamples, args.seed, configs.get(name))
        results[name] = summarize(rows)
        print(f"{name}: {len(rows)} views", file=sys.stderr)
    print(markdown(results))
    print(f"\n{args.env} dev split seed {args.scenes_seed}, scenes {args.scenes}, {args.trials} views each at "
          f"{args.offset_mm} mm / {args.offset_deg}° from the goal; {args.resamples} resamples dropping "
          f"{100 * args.drop:.0f} % of the valid rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
