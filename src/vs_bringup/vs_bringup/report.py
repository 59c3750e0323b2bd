"""Servo run report: ``report.png`` (error curves, twists, first / last frame with matches) + ``summary.json``.

The report is built from a :class:`RunSeries` (plain arrays), made either in memory or from a recorded bag
(:func:`series_from_run` over :func:`vs_bringup.recorder.read_run`). Messages become arrays through the
conversions of :mod:`vs_common.ros`, whose decoders read fields only, so rosbags' dataclasses and rclpy
messages work alike. Ground truth (translation / rotation error)
is available when the run carries the goal TCP pose (``/vs/run/goal_tcp_pose``, published by the demo)
and the TCP poses (``/vs/robot/tcp_pose``); errors are those of the camera, ``base_T_tcp @ tcp_T_cam``.

CLI (the "replay a run and get a report" story)::

    python -m vs_bringup.report runs/<stamp>_<pipeline>      # re-creates report.png + summary.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from vs_common.core.errors import InputError
from vs_common.core.se3 import pose_error, pose_from_xyz_quat
from vs_common.ros.geometry import pose_to_matrix, twist_to_array
from vs_common.ros.image import image_to_rgb
from vs_controllers.core.session import ServoState

from vs_bringup import topics as T

#: Success criterion of the benchmark (DESIGN.md §7, after CNS): final RE < 3 deg and TE < 3 cm.
SUCCESS_TE_M = 0.03
SUCCESS_RE_DEG = 3.0
#: Oscillation around the goal is measured once the camera's TE first falls below this (m).
NEAR_GOAL_TE_M = 0.005
#: A run "rings" when its TE rises more than this (m) above its running minimum after NEAR_GOAL_TE_M (#20's
#: precision target, 0.5 mm: a smaller rebound is within what the demo is asked to reach).
RING_TE_M = 0.0005


def te_rebound(te_m: np.ndarray, near_m: float = NEAR_GOAL_TE_M) -> float | None:
    """Largest rise of the translation error above its running minimum once it first fell below ``near_m``.

    A monotone approach gives 0; a camera that runs through the goal and turns back gives the size of the
    swing. This is what "oscillation around the goal" means in the demo's summary (``te_rebound_mm``).

    Args:
        te_m: (K,) TE samples in time order (m), e.g. from servo start to its end.
        near_m: where the near-goal part begins.

    Returns:
        The rebound (m), or None when TE never falls below ``near_m``.
    """
    te = np.asarray(te_m, dtype=float)
    below = np.flatnonzero(te < near_m)
    if len(below) == 0:
        return None
    tail = te[below[0]:]
    return float(np.max(tail - np.minimum.accumulate(tail)))


@dataclass
class RunSeries:
    """Time series of one servo run; times in seconds from the run start.

    Shapes: ``t_status`` (N,), ``feature_error`` (N,), ``state`` (N,), ``step`` (N,), ``observer_ms`` (N,),
    ``controller_ms`` (N,); ``t_twist`` (M,), ``v_c`` (M, 6) camera-frame twist (vx, vy, vz, wx, wy, wz) in
    m/s and rad/s; ``t_pose`` (K,), ``base_T_tcp`` (K, 4, 4); ``goal_base_T_tcp`` and ``tcp_T_cam`` (4, 4);
    frames (H, W, 3) uint8 RGB.
    """

    pipeline: str = ""
    t_status: np.ndarray = field(default_factory=lambda: np.zeros(0))
    feature_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    observer_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    controller_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t_twist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_c: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    t_pose: np.ndarray = field(default_factory=lambda: np.zeros(0))
    base_T_tcp: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    goal_base_T_tcp: np.ndarray | None = None
    tcp_T_cam: np.ndarray = field(default_factory=lambda: np.eye(4))
    first_frame: np.ndarray | None = None
    last_frame: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def camera_errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Camera translation (m) and rotation (deg) error to the goal at every pose sample; empty without truth.

        Returns:
            ``te_m`` (K,), ``re_deg`` (K,).
        """
        if self.goal_base_T_tcp is None or len(self.base_T_tcp) == 0:
            return np.zeros(0), np.zeros(0)
        goal_cam = self.goal_base_T_tcp @ self.tcp_T_cam
        errs = np.array([pose_error(goal_cam, T_tcp @ self.tcp_T_cam) for T_tcp in self.base_T_tcp])
        return errs[:, 0], errs[:, 1]


def draw_matches(rgb: np.ndarray, current_uv: np.ndarray, goal_uv: np.ndarray,
                 inlier: np.ndarray | None = None) -> np.ndarray:
    """Draw current (green) and goal (red) keypoints joined by lines: the fallback when no debug image exists.

    Shapes: ``rgb`` (H, W, 3) uint8; ``current_uv``, ``goal_uv`` (N, 2) pixels; ``inlier`` (N,) bool.
    """
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    ok = np.isfinite(current_uv).all(axis=1) & np.isfinite(goal_uv).all(axis=1)
    if inlier is not None and len(inlier) == len(ok):
        ok &= np.asarray(inlier, dtype=bool)
    for (u, v), (gu, gv) in zip(current_uv[ok], goal_uv[ok]):
        p, g = (int(round(u)), int(round(v))), (int(round(gu)), int(round(gv)))
        cv2.line(out, p, g, (255, 255, 0), 1, cv2.LINE_AA)
        cv2.circle(out, g, 3, (255, 0, 0), 1, cv2.LINE_AA)
        cv2.circle(out, p, 3, (0, 255, 0), -1, cv2.LINE_AA)
    return out


def _frame_with_matches(run: dict[str, list[tuple[float, Any]]], which: int,
                        t_from: float = -np.inf) -> np.ndarray | None:
    """First (which=0) or last (which=-1) frame received at or after ``t_from``: the debug matches image,
    else the colour image with the nearest correspondences drawn on it, else None."""
    def since(topic: str) -> list[tuple[float, Any]]:
        msgs = run.get(topic) or []
        return [tm for tm in msgs if tm[0] >= t_from] or msgs

    matches = since(T.MATCHES_IMAGE)
    if matches:
        return image_to_rgb(matches[which][1])
    color = since(T.COLOR_IMAGE)
    if not color:
        return None
    t_img, img = color[which]
    rgb = image_to_rgb(img)
    corr = run.get(T.CORRESPONDENCES) or []
    if not corr:
        return rgb
    _, c = min(corr, key=lambda tc: abs(tc[0] - t_img))
    cur = np.asarray(c.current_uv, dtype=np.float64).reshape(-1, 2)
    goal = np.asarray(c.goal_uv, dtype=np.float64).reshape(-1, 2)
    return draw_matches(rgb, cur, goal, np.asarray(c.inlier, dtype=bool))


def series_from_run(run: dict[str, list[tuple[float, Any]]], custom: dict[str, str] | None = None) -> RunSeries:
    """Arrays of a recorded run (``{topic: [(t_receive_s, msg)]}``, as :func:`read_run` returns).

    Args:
        run: the messages per topic.
        custom: the bag's custom_data; ``hand_eye_xyz`` / ``hand_eye_quat_xyzw`` (JSON lists) give tcp_T_cam,
            ``pipeline`` the name.

    Returns:
        The run's series, times relative to the first message of the run.
    """
    custom = dict(custom or {})
    t_all = [t for msgs in run.values() for t, _ in msgs]
    if not t_all:
        raise InputError("the run holds no messages")
    t0 = min(t_all)
    s = RunSeries(meta=custom)
    status = [(t, m) for t, m in run.get(T.SERVO_STATUS, [])]
    if status:
        s.pipeline = status[-1][1].pipeline
        s.t_status = np.array([t - t0 for t, _ in status])
        s.feature_error = np.array([float(m.error) for _, m in status])
        s.state = np.array([int(m.state) for _, m in status])
        s.step = np.array([int(m.step) for _, m in status])
        s.observer_ms = np.array([float(m.observer_ms) for _, m in status])
        s.controller_ms = np.array([float(m.controller_ms) for _, m in status])
    s.pipeline = custom.get("pipeline", s.pipeline)
    twists = run.get(T.CMD_TWIST, [])
    if twists:
        s.t_twist = np.array([t - t0 for t, _ in twists])
        s.v_c = np.array([twist_to_array(m) for _, m in twists])
    poses = run.get(T.TCP_POSE, [])
    if poses:
        s.t_pose = np.array([t - t0 for t, _ in poses])
        s.base_T_tcp = np.stack([pose_to_matrix(m) for _, m in poses])
    goal = run.get(T.GOAL_TCP_POSE, [])
    if goal:
        s.goal_base_T_tcp = pose_to_matrix(goal[-1][1])
    if "hand_eye_xyz" in custom and "hand_eye_quat_xyzw" in custom:
        s.tcp_T_cam = pose_from_xyz_quat(json.loads(custom["hand_eye_xyz"]), json.loads(custom["hand_eye_quat_xyzw"]))
    # Frames from when servoing began: before that the camera may sit at the goal (the demo captures it there).
    t_servo = next((t for t, m in status if int(m.state) == ServoState.SERVOING), -np.inf)
    s.first_frame = _frame_with_matches(run, 0, t_servo)
    s.last_frame = _frame_with_matches(run, -1, t_servo)
    return s


# --- summary and figure ---------------------------------------------------------------------------------

def _state_name(state: int) -> str:
    """ServoStatus.state → its name ("?" for a value the message does not define)."""
    try:
        return ServoState(int(state)).name
    except ValueError:
        return "?"


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def summarize(s: RunSeries, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's numbers for summary.json: final / initial TE (mm) and RE (deg), steps, convergence, timings.

    Args:
        s: the run.
        result: the Servo action result when known (converged, final_error, steps, duration_s); it wins
            over what the status stream says.
    """
    te, re = s.camera_errors()
    servoing = s.t_status[s.state == ServoState.SERVOING] if len(s.state) else np.zeros(0)
    ended = s.t_status[np.isin(s.state, (ServoState.CONVERGED, ServoState.FAILED))] if len(s.state) else np.zeros(0)
    servo_start = float(servoing[0]) if len(servoing) else None
    servo_end = float(ended[ended >= servo_start][0]) if servo_start is not None and np.any(ended >= servo_start) \
        else (float(s.t_status[-1]) if len(s.t_status) else None)
    # Errors "at the start" are those when servoing began (the run may start at the goal, as the demo does).
    i0 = int(np.searchsorted(s.t_pose, servo_start)) if servo_start is not None and len(s.t_pose) else 0
    i0 = min(i0, max(len(te) - 1, 0))
    i1 = int(np.searchsorted(s.t_pose, servo_end, side="right")) if servo_end is not None and len(s.t_pose) \
        else len(te)
    rebound = te_rebound(te[i0:max(i1, i0 + 1)]) if len(te) else None
    out: dict[str, Any] = {
        "pipeline": s.pipeline,
        "converged": bool(len(s.state) and s.state[-1] == ServoState.CONVERGED),
        "final_state": _state_name(s.state[-1]) if len(s.state) else None,
        "steps": int(s.step.max()) if len(s.step) else 0,
        "final_feature_error": _finite_or_none(s.feature_error[-1]) if len(s.feature_error) else None,
        "initial_feature_error": _finite_or_none(np.nan if not len(servoing) else
                                                 s.feature_error[s.state == ServoState.SERVOING][0]),
        "ground_truth": bool(len(te)),
        "initial_te_mm": float(te[i0] * 1e3) if len(te) else None,
        "initial_re_deg": float(re[i0]) if len(re) else None,
        "final_te_mm": float(te[-1] * 1e3) if len(te) else None,
        "final_re_deg": float(re[-1]) if len(re) else None,
        "success": bool(te[-1] < SUCCESS_TE_M and re[-1] < SUCCESS_RE_DEG) if len(te) else None,
        "te_rebound_mm": None if rebound is None else rebound * 1e3,
        "rings": None if rebound is None else bool(rebound > RING_TE_M),
        "servo_duration_s": (servo_end - servo_start) if servo_start is not None and servo_end is not None else None,
        "record_duration_s": float(max([*s.t_status, *s.t_twist, *s.t_pose], default=0.0)),
        "mean_observer_ms": _finite_or_none(np.nanmean(s.observer_ms)) if len(s.observer_ms) else None,
        "mean_controller_ms": _finite_or_none(np.nanmean(s.controller_ms)) if len(s.controller_ms) else None,
        "num_twists": int(len(s.t_twist)),
    }
    if result:
        out["action_result"] = dict(result)
        out["converged"] = bool(result.get("converged", out["converged"]))
        if "steps" in result:
            out["steps"] = int(result["steps"])
    return out


def plot_report(s: RunSeries, path: str | Path, title: str | None = None) -> Path:
    """Write the run figure: feature error, TE / RE, linear and angular twist, first and last frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Four curves on top; the two frames (often side-by-side match images, 2:1) get half the width each below.
    fig = plt.figure(figsize=(20, 10))
    grid = fig.add_gridspec(2, 4, height_ratios=(1.0, 1.1))
    curves = [fig.add_subplot(grid[0, k]) for k in range(4)]
    frames = [fig.add_subplot(grid[1, 0:2]), fig.add_subplot(grid[1, 2:4])]
    ax = curves[0]
    if len(s.t_status):
        err = np.where(s.feature_error > 0, s.feature_error, np.nan)
        ax.plot(s.t_status, err, color="k", lw=1.2)
        if np.any(np.isfinite(err)):
            ax.set_yscale("log")
        for state, colour in ((ServoState.CONVERGED, "tab:green"), (ServoState.FAILED, "tab:red")):
            hit = s.t_status[s.state == state]
            if len(hit):
                ax.axvline(hit[0], color=colour, ls="--", lw=1, label=state.name.lower())
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no servo status recorded", ha="center", transform=ax.transAxes)
    ax.set(title="feature error", xlabel="t (s)", ylabel="error (controller units)")
    ax.grid(True, which="both", alpha=0.3)

    ax = curves[1]
    te, re = s.camera_errors()
    if len(te):
        ax.plot(s.t_pose, te * 1e3, color="tab:blue", label="TE (mm)")
        ax.set_ylabel("translation error (mm)", color="tab:blue")
        ax2 = ax.twinx()
        ax2.plot(s.t_pose, re, color="tab:orange", label="RE (deg)")
        ax2.set_ylabel("rotation error (deg)", color="tab:orange")
        ax.set_title(f"camera pose error (final {te[-1] * 1e3:.2f} mm, {re[-1]:.3f} deg)")
    else:
        ax.text(0.5, 0.5, "no ground truth in this run", ha="center", transform=ax.transAxes)
        ax.set_title("camera pose error")
    ax.set_xlabel("t (s)")
    ax.grid(True, alpha=0.3)

    for ax, cols, unit, name in ((curves[2], slice(0, 3), "m/s", "linear"),
                                 (curves[3], slice(3, 6), "rad/s", "angular")):
        if len(s.t_twist):
            for k, lbl in zip(range(cols.start, cols.stop), "xyz"):
                ax.plot(s.t_twist, s.v_c[:, k], lw=1, label=f"{'v' if name == 'linear' else 'w'}{lbl}")
            ax.legend(loc="upper right")
        else:
            ax.text(0.5, 0.5, "no twist recorded", ha="center", transform=ax.transAxes)
        ax.set(title=f"{name} twist (camera frame)", xlabel="t (s)", ylabel=unit)
        ax.grid(True, alpha=0.3)

    for ax, img, name in ((frames[0], s.first_frame, "first frame (servo start)"),
                          (frames[1], s.last_frame, "last frame")):
        if img is not None:
            ax.imshow(img)
        else:
            ax.text(0.5, 0.5, "no image recorded", ha="center", transform=ax.transAxes)
        ax.set_title(name)
        ax.axis("off")

    fig.suptitle(title or f"servo run — {s.pipeline or 'unknown pipeline'}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(s: RunSeries, out_dir: str | Path, result: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``report.png`` and ``summary.json`` into ``out_dir``; return the summary."""
    out_dir = Path(out_dir)
    summary = summarize(s, result)
    summary.update(extra or {})
    plot_report(s, out_dir / "report.png")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def find_bag(run_dir: str | Path) -> Path:
    """The bag of a run folder: the folder itself when it is a rosbag2 directory, else its ``bag/`` child,
    else the only rosbag2 directory or ``.mcap`` inside."""
    run_dir = Path(run_dir)
    if (run_dir / "metadata.yaml").is_file() or run_dir.suffix == ".mcap":
        return run_dir
    candidates = [p.parent for p in run_dir.glob("*/metadata.yaml")] or sorted(run_dir.glob("*.mcap"))
    if (run_dir / "bag" / "metadata.yaml").is_file():
        return run_dir / "bag"
    if len(candidates) == 1:
        return candidates[0]
    raise InputError(f"no single rosbag2 bag in {run_dir} (found {[str(c) for c in candidates]})")


def report_from_bag(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Re-create ``report.png`` and ``summary.json`` of a run folder from its recorded bag."""
    from vs_bringup.recorder import read_custom_data, read_run

    bag = find_bag(run_dir)
    custom = read_custom_data(bag) if bag.is_dir() else {}
    series = series_from_run(read_run(bag), custom)
    result = json.loads(custom["action_result"]) if "action_result" in custom else None
    out = Path(out_dir) if out_dir is not None else (Path(run_dir) if Path(run_dir).is_dir() else bag.parent)
    return write_report(series, out, result=result, extra={"bag": str(bag)})


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vs_bringup.report <run_dir> [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m vs_bringup.report",
                                     description="Re-create report.png and summary.json of a servo run from its bag.")
    parser.add_argument("run_dir", help="run folder (runs/<stamp>_<pipeline>), a rosbag2 directory or an .mcap")
    parser.add_argument("--out", default=None, help="where to write the report (default: the run folder)")
    args = parser.parse_args(argv)
    try:
        summary = report_from_bag(args.run_dir, args.out)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    te, re = summary.get("final_te_mm"), summary.get("final_re_deg")
    gt = f"TE {te:.2f} mm, RE {re:.3f} deg" if te is not None else "no ground truth"
    print(f"{summary['pipeline'] or 'run'}: converged={summary['converged']} steps={summary['steps']} {gt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
