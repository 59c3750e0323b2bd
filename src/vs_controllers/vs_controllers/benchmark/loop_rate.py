"""Loop-rate benchmark: observer + controller frames per second on rendered 640×480 servo frames.

Not a timed test: it measures this machine. The frames are rendered once, before any timing, along a
camera path from each scene's initial pose to its goal pose (straight in position, geodesic in rotation),
in steps of at most ``step_m`` and ``step_deg`` (a servo run at 30 Hz under the loop's speed limits,
0.3 m/s and 1 rad/s, moves 1 cm / 1.9° per frame), then held at the goal for ``hold`` frames (where a
servo run spends its last second). Every
configuration (pipeline × detector × tracking) then replays the same frames: a fresh observer and servo loop
per scene, the goal set from the goal view, and each frame observed and fed to the loop
(:class:`~vs_controllers.core.loop.ServoLoop`, as the benchmark episode and the node run it). Rendering is
not timed. Scenes come from a development split (``--scenes-seed``), never the stored benchmark sets.

A pipeline that reads relative depth (``Input.RELATIVE_DEPTH``: Depth-PC) gets it as the relative_depth node
gives it, asynchronously: the renderer's depth, min-max normalised, becomes the stage's latest map every
``depth_every`` frames (Depth Anything V2 Small's 0.3 s at 30 Hz is about every 10th frame); making the map
is the depth node's work in its own process and is not timed, sampling it at the keypoints is the loop's
and is.

Example:
    python -m vs_controllers.benchmark.loop_rate --scenes-seed 7 --scenes 0:3
    python -m vs_controllers.benchmark.loop_rate --pipelines cns --detectors sift --tracking on,off
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.config import flatten_config, from_mapping
from vs_common.core.errors import VisualServoError
from vs_common.core.se3 import pose_error
from vs_perception.core.keypoint_depth import DepthMap
from vs_perception.core.observer import OBSERVER_STAGES, Observer
from vs_perception.core.relative_depth import metric_to_relative

from vs_controllers.benchmark.cli import _default_path, add_dev_split_arguments
from vs_controllers.benchmark.runner import select_scenes
from vs_controllers.core.inputs import make_inputs
from vs_controllers.core.loop import ServoLoop
from vs_controllers.core.pipelines import Input, get_pipeline, make_pipeline

__all__ = ["camera_path", "main", "measure", "render_sequences"]

DETECTORS = ("sift", "akaze", "orb")


def camera_path(w_T_init: np.ndarray, w_T_goal: np.ndarray, step_m: float = 0.01, step_deg: float = 2.0,
                hold: int = 30) -> list[np.ndarray]:
    """Poses from ``w_T_init`` to ``w_T_goal`` (position on the line, rotation on the SO(3) geodesic), then
    ``hold`` copies of the goal.

    Args:
        w_T_init, w_T_goal: (4, 4) camera poses in the world frame.
        step_m, step_deg: largest translation (m) and rotation (deg) between two consecutive poses.
        hold: frames at the goal pose after arriving.

    Returns:
        The poses, (4, 4) each, starting at ``w_T_init``.
    """
    te, re = pose_error(w_T_goal, w_T_init)
    n = max(1, int(np.ceil(max(te / step_m, re / step_deg))))
    rotvec = Rotation.from_matrix(w_T_init[:3, :3].T @ w_T_goal[:3, :3]).as_rotvec()
    path = []
    for k in range(n + 1):
        T = np.eye(4)
        T[:3, :3] = w_T_init[:3, :3] @ Rotation.from_rotvec(rotvec * k / n).as_matrix()
        T[:3, 3] = w_T_init[:3, 3] + (w_T_goal[:3, 3] - w_T_init[:3, 3]) * k / n
        path.append(T)
    return path + [w_T_goal.copy() for _ in range(hold)]


def render_sequences(env: str, scenes: list[Any], step_m: float, step_deg: float, hold: int) -> list[dict]:
    """Render each scene's goal view and camera path once: [{"scene", "goal", "frames"}] (colour + depth)."""
    from vs_sim.core.cells import make_cell

    cell = make_cell(env)
    out = []
    for scene in scenes:
        cell.load_scene(scene)
        goal = cell.render(np.asarray(scene.w_T_goal, float), streams=("color", "depth"))
        poses = camera_path(np.asarray(scene.w_T_init, float), np.asarray(scene.w_T_goal, float), step_m,
                            step_deg, hold)
        frames = [cell.render(T, streams=("color", "depth")) for T in poses]
        out.append({"scene": scene, "goal": (goal.color, goal.depth),
                    "frames": [(f.color, f.depth) for f in frames]})
    out_camera = cell.camera
    for seq in out:
        seq["camera"] = out_camera
    return out


def measure(pipeline: str, sequences: list[dict], config: Any = None, overrides: dict[str, Any] | None = None,
            dt_s: float = 1 / 30, depth_every: int = 10) -> dict[str, Any]:
    """Replay ``sequences`` through one configuration; per-frame times summarised.

    Args:
        pipeline: a registered pipeline name.
        sequences: from :func:`render_sequences`.
        config: the pipeline file (path or mapping), None = its defaults.
        overrides: observer settings to replace, dotted (``features.detector``, ``tracking.enabled``, ...).
        dt_s: time between frames given to the loop (s).
        depth_every: a pipeline reading relative depth gets a new map every this many frames (untimed).

    Returns:
        {"frames", "observer_ms", "controller_ms", "total_ms" (means), "total_p95_ms", "fps" (1000 / mean
        total), "fps_p5" (1000 / 95th percentile), the stage means, "detect_fraction", "valid" (mean valid
        rows), "lost_fraction", "max_keypoints" (the observer's, overrides applied)}.
    """
    obs_cfg, controller, loop_cfg = make_pipeline(pipeline, config)
    obs_cfg = from_mapping(type(obs_cfg), {**flatten_config(obs_cfg), **(overrides or {})})
    obs_ms, ctrl_ms, infos, valid, lost = [], [], [], [], []
    spec = get_pipeline(pipeline)
    for seq in sequences:
        observer = Observer(obs_cfg)
        inputs = make_inputs(spec)
        stage = inputs.get(Input.RELATIVE_DEPTH)
        loop = ServoLoop(controller, loop_cfg, min_valid=3, inputs=list(inputs.values()))
        try:
            goal = observer.set_goal(*seq["goal"], seq["camera"], goal_id=str(seq["scene"].id))
        except VisualServoError:
            continue
        if stage is not None:
            goal.goal_stamp = -dt_s  # the goal image's stamp, which its depth map carries
            stage.depth.add_goal(DepthMap(metric_to_relative(seq["goal"][1]), goal.goal_stamp))
        loop.set_goal(goal)
        for k, (color, depth) in enumerate(seq["frames"]):
            if stage is not None and k % max(1, depth_every) == 0:
                stage.depth.update(DepthMap(metric_to_relative(depth), k * dt_s))
            t0 = time.perf_counter()
            try:
                corr = observer.observe(color, depth, stamp=k * dt_s)
            except VisualServoError:
                corr = None
            t1 = time.perf_counter()
            res = loop.step(corr, k * dt_s)
            t2 = time.perf_counter()
            obs_ms.append(1e3 * (t1 - t0))
            ctrl_ms.append(1e3 * (t2 - t1))
            lost.append(res.lost)
            if corr is not None:
                infos.append(corr.info)
                valid.append(corr.num_valid)
    total = np.asarray(obs_ms) + np.asarray(ctrl_ms)
    out = {"frames": len(total), "observer_ms": float(np.mean(obs_ms)), "controller_ms": float(np.mean(ctrl_ms)),
           "total_ms": float(total.mean()), "total_p95_ms": float(np.percentile(total, 95)),
           "fps": 1e3 / float(total.mean()), "fps_p5": 1e3 / float(np.percentile(total, 95)),
           "detect_fraction": float(np.mean([i.get("mode", "detect") == "detect" for i in infos])),
           "valid": float(np.mean(valid)) if valid else 0.0, "lost_fraction": float(np.mean(lost)),
           "max_keypoints": obs_cfg.features.max_keypoints}
    for k in OBSERVER_STAGES:
        out[k] = float(np.mean([i.get(k, 0.0) for i in infos])) if infos else 0.0
    return out


def markdown(rows: list[dict]) -> str:
    head = ("| pipeline | detector | tracking | keypoints | detect ms | match ms | track ms | RANSAC ms | observer ms "
            "| controller ms | total ms | **Hz** (mean) | Hz (p95 frame) | detected frames | valid rows |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        lines.append(
            f"| {r['pipeline']} | {r['detector']} | {'on' if r['track'] else 'off'} | {r['max_keypoints']} "
            f"| {r['detect_ms']:.1f} | {r['match_ms']:.1f} | {r['track_ms']:.1f} | {r['ransac_ms']:.1f} "
            f"| {r['observer_ms']:.1f} | {r['controller_ms']:.2f} | {r['total_ms']:.1f} | **{r['fps']:.1f}** "
            f"| {r['fps_p5']:.1f} | {100 * r['detect_fraction']:.0f} % | {r['valid']:.0f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vs_controllers.benchmark.loop_rate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipelines", default="ibvs,cns", help="comma-separated pipeline names")
    p.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated detectors")
    p.add_argument("--tracking", default="off,on", help="off, on or both (comma-separated)")
    add_dev_split_arguments(p, scenes="0:3")
    p.add_argument("--step-m", type=float, default=0.01, help="largest camera translation between frames (m)")
    p.add_argument("--step-deg", type=float, default=2.0, help="largest camera rotation between frames (deg)")
    p.add_argument("--hold", type=int, default=30, help="frames held at the goal after the path")
    p.add_argument("--threads", type=int, default=1, help="OpenCV / torch threads")
    p.add_argument("--depth-every", type=int, default=10,
                   help="relative-depth pipelines: a new depth map every this many frames (asynchronous depth)")
    p.add_argument("--observer", action="append", default=[], metavar="KEY=VALUE",
                   help="extra observer overrides for every configuration (repeatable)")
    p.add_argument("--json", default=None, help="also write the rows here")
    return p


def main(argv: list[str] | None = None) -> int:
    from vs_controllers.benchmark.cli import parse_overrides

    args = build_parser().parse_args(argv)
    try:
        extra = parse_overrides(args.observer)
        scenes = select_scenes(args.env, args.section, args.scenes, scenes_seed=args.scenes_seed)
        t0 = time.perf_counter()
        seqs = render_sequences(args.env, scenes, args.step_m, args.step_deg, args.hold)
        print(f"rendered {sum(len(s['frames']) for s in seqs)} frames of {len(seqs)} scenes "
              f"({seqs[0]['camera'].width}x{seqs[0]['camera'].height}) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        rows = []
        for pipeline in args.pipelines.split(","):
            config = _default_path(None, get_pipeline(pipeline).config_file)
            for detector in args.detectors.split(","):
                for tracking in args.tracking.split(","):
                    overrides = {**extra, "features.detector": detector, "tracking.enabled": tracking == "on"}
                    cv2.setNumThreads(args.threads)
                    if "torch" in sys.modules:
                        sys.modules["torch"].set_num_threads(args.threads)
                    warm = [{**seqs[0], "frames": seqs[0]["frames"][:3]}]
                    measure(pipeline, warm, config, overrides)  # imports, torch's first call, OpenCV's pools
                    r = measure(pipeline, seqs, config, overrides, depth_every=args.depth_every)
                    r.update(pipeline=pipeline, detector=detector, track=tracking == "on")
                    rows.append(r)
                    print(f"{pipeline} {detector} tracking {tracking}: {r['fps']:.1f} Hz", file=sys.stderr)
    except VisualServoError as err:
        print(f"loop_rate failed: {err}", file=sys.stderr)
        return 2
    print(markdown(rows))
    print(f"\n{rows[0]['frames']} frames per configuration, {len(seqs)} scenes of the {args.env} dev split "
          f"(seed {args.scenes_seed}, scenes {args.scenes}), {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv[1:], "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
