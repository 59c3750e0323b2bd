"""One benchmark episode: goal view → closed loop in the simulated cell → a record.

Loop per step k (t = k·dt): render the current view (and, for a pipeline that reads relative depth, feed
its depth map to the pipeline's stage: :mod:`vs_controllers.benchmark.depth`), observe, one step of the
servo loop (:class:`~vs_controllers.core.loop.ServoLoop`: input stages, controller, gain schedule, speed
limits, stop policy, lost input — the same loop the controller node runs), then move the camera by
``integrate_twist(w_T_c, v_c, dt)``. The episode ends on the stop policy, the step cap, the camera going
under the table, or lost features (fewer than ``min_matches`` valid correspondences for
``lost_patience_steps`` consecutive frames).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
from vs_common.core.errors import VisualServoError
from vs_common.core.se3 import integrate_twist, pose_error
from vs_perception.core.observer import OBSERVER_STAGES, Observer, ObserverConfig

from vs_controllers.benchmark.config import BenchmarkConfig
from vs_controllers.benchmark.depth import BenchDepth, DepthSourceConfig, scene_rng
from vs_controllers.core.loop import LoopConfig, ObservationStage, ServoLoop
from vs_controllers.core.pipelines import Input
from vs_controllers.core.protocol import Controller
from vs_controllers.core.stop_policy import PixelStopPolicy, StopPolicyConfig

__all__ = ["EpisodeRecord", "run_episode", "STOP_REASONS"]

STOP_REASONS = ("stop_policy", "max_steps", "under_table", "lost_features", "goal_failed")

class CellLike(Protocol):
    """What the episode needs from a ``vs_sim`` cell."""

    camera: Any

    def load_scene(self, scene: Any) -> None: ...

    def render(self, w_T_c: np.ndarray, streams: tuple[str, ...] = ("color", "depth")) -> Any: ...


@dataclass
class EpisodeRecord:
    """Outcome of one episode (JSON-serialisable through :meth:`to_dict`).

    Curves hold one entry per recorded step: feature error (normalised units, NaN when the
    controller could not compute), translation error (m), rotation error (deg), valid matches,
    camera position (3,) in the world frame. ``stage_ms`` holds the observer's mean stage times per step
    (``detect_ms``, ``match_ms``, ``track_ms``, ``ransac_ms``) and ``detect_fraction``, the share of
    observed frames that were detected and matched rather than tracked.
    """

    scene_id: Any
    env: str
    section: str
    steps: int
    reason: str
    te_m: float
    re_deg: float
    init_te_m: float
    init_re_deg: float
    target_dist_m: float
    success_cns: bool
    success_strict: bool
    observer_ms: float
    controller_ms: float
    total_ms: float
    render_ms: float
    wall_s: float
    error_curve: list[float] = field(default_factory=list)
    te_curve: list[float] = field(default_factory=list)
    re_curve: list[float] = field(default_factory=list)
    matches_curve: list[int] = field(default_factory=list)
    trajectory: list[list[float]] = field(default_factory=list)
    message: str = ""
    stage_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r(x: float, nd: int = 6) -> float:
    return float(np.format_float_positional(x, precision=nd, unique=True)) if np.isfinite(x) else float("nan")


def run_episode(cell: CellLike, scene: Any, observer_config: ObserverConfig, controller: Controller,
                config: BenchmarkConfig | None = None, seed: int = 0,
                loop: LoopConfig | None = None, inputs: Mapping[Input, ObservationStage] | None = None,
                depth: DepthSourceConfig | None = None) -> EpisodeRecord:
    """Run one scene to its end and measure it.

    Args:
        cell: a simulated cell (``vs_sim.core.cells.make_cell(env)``) or anything with the same API.
        scene: a ``vs_sim.core.scenes.Scene`` (id, env, section, w_T_goal, w_T_init, scene_center).
        observer_config: keypoint observer settings; a fresh :class:`Observer` is built per episode.
        controller: a controller; its goal is set here (which resets its state).
        config: protocol settings (step, stop policy, lost input, success criteria).
        seed: seeds numpy and OpenCV's RNG (RANSAC) so reruns give the same numbers.
        loop: the pipeline's servo-loop settings (gain schedule, speed limits); None = ``LoopConfig()``.
        inputs: the pipeline's input stages, fresh for this episode (:func:`~vs_controllers.core.inputs.make_inputs`).
        depth: where the relative-depth stage's maps come from (:mod:`vs_controllers.benchmark.depth`);
            None = ``DepthSourceConfig()``. Only read when ``inputs`` has ``Input.RELATIVE_DEPTH``.

    Returns:
        :class:`EpisodeRecord`.
    """
    cfg = config or BenchmarkConfig()
    # Legacy global seeding on purpose: it reaches any library code that still draws from np.random.
    np.random.seed(seed)  # noqa: NPY002
    cv2.setRNGSeed(seed)
    wall0 = time.perf_counter()
    w_T_goal = np.asarray(scene.w_T_goal, dtype=np.float64)
    w_T_c = np.asarray(scene.w_T_init, dtype=np.float64).copy()
    # CNS's distance prior / success scale ‖t_target‖ is the goal camera's distance to the scene origin;
    # here the scene centre plays the origin's role.
    target_dist = float(np.linalg.norm(w_T_goal[:3, 3] - np.asarray(scene.scene_center, dtype=np.float64)))
    init_te, init_re = pose_error(w_T_goal, w_T_c)
    message = ""
    rec = dict(scene_id=scene.id, env=str(getattr(scene, "env", "")), section=str(getattr(scene, "section", "")),
               init_te_m=init_te, init_re_deg=init_re, target_dist_m=target_dist)

    cell.load_scene(scene)
    observer = Observer(observer_config)
    inputs = dict(inputs or {})
    stage = inputs.get(Input.RELATIVE_DEPTH)
    rel = None if stage is None else BenchDepth(depth or DepthSourceConfig(), cell, stage.depth,  # type: ignore[attr-defined]
                                                scene_rng(seed, scene.id))
    streams = ("color", "depth") if rel is None else rel.streams
    goal_frame = cell.render(w_T_goal, streams=streams)
    try:
        goal = observer.set_goal(goal_frame.color, getattr(goal_frame, "depth", None), cell.camera,
                                 goal_id=str(scene.id))
    except VisualServoError as err:
        return _finish(rec, w_T_goal, w_T_c, 0, "goal_failed", cfg, [], [], [], [], [], [], [], [], wall0, str(err))
    goal.info["distance_prior_m"] = target_dist
    goal.goal_stamp = -cfg.dt_s  # the goal view is rendered one step before the run
    if rel is not None:
        try:
            rel.goal(goal_frame, goal.goal_stamp)
        except VisualServoError as err:  # the stage then waits for the goal's depth: no twist, lost features
            message = str(err)
    servo = ServoLoop(controller, loop,
                      stop_policy=PixelStopPolicy(StopPolicyConfig(waiting_time_s=cfg.stop_waiting_s,
                                                                   threshold=cfg.stop_threshold)),
                      min_valid=cfg.min_matches, lost_patience=cfg.lost_patience_steps, inputs=list(inputs.values()))
    servo.set_goal(goal)

    err_c, te_c, re_c, m_c, traj = [], [], [], [], []
    obs_ms, ctrl_ms, render_ms, stages = [], [], [], []
    reason, step = "max_steps", 0
    for step in range(cfg.max_steps):
        if w_T_c[2, 3] < cfg.floor_z_m:
            reason = "under_table"
            break
        t = step * cfg.dt_s
        t0 = time.perf_counter()
        frame = cell.render(w_T_c, streams=streams)
        if rel is not None:
            rel.step(frame, t)
        t1 = time.perf_counter()
        try:
            corr = observer.observe(frame.color, getattr(frame, "depth", None), stamp=t)
        except VisualServoError as err:  # e.g. a black frame: nothing in view
            corr, message = None, str(err)
        t2 = time.perf_counter()
        if corr is not None:
            stages.append(corr.info)
        n_valid = 0 if corr is None else corr.num_valid
        res = servo.step(corr, t)
        t3 = time.perf_counter()
        render_ms.append(1e3 * (t1 - t0))
        obs_ms.append(1e3 * (t2 - t1))
        ctrl_ms.append(1e3 * (t3 - t2))
        if step % cfg.record_every == 0:
            te, re = pose_error(w_T_goal, w_T_c)
            err_c.append(res.error)
            te_c.append(te)
            re_c.append(re)
            m_c.append(n_valid)
            traj.append(w_T_c[:3, 3].tolist())
        if res.give_up:
            reason = "lost_features"
            break
        if res.stop:
            reason = "stop_policy"
            break
        if not res.lost:
            w_T_c = integrate_twist(w_T_c, res.v_c, cfg.dt_s)
    else:
        step = cfg.max_steps
    return _finish(rec, w_T_goal, w_T_c, step, reason, cfg, err_c, te_c, re_c, m_c, traj, obs_ms, ctrl_ms,
                   render_ms, wall0, message, stages)


def _finish(rec: dict, w_T_goal: np.ndarray, w_T_c: np.ndarray, steps: int, reason: str, cfg: BenchmarkConfig,
            err_c: list, te_c: list, re_c: list, m_c: list, traj: list, obs_ms: list, ctrl_ms: list,
            render_ms: list, wall0: float, message: str, stages: list[dict] | None = None) -> EpisodeRecord:
    te, re = pose_error(w_T_goal, w_T_c)
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return EpisodeRecord(
        **rec, steps=int(steps), reason=reason, te_m=te, re_deg=re,
        success_cns=bool(reason != "goal_failed" and te < cfg.cns_rel_translation * rec["target_dist_m"]
                         and re < cfg.cns_rotation_deg),
        success_strict=bool(reason != "goal_failed" and te < cfg.strict_translation_m
                            and re < cfg.strict_rotation_deg),
        observer_ms=mean(obs_ms), controller_ms=mean(ctrl_ms),
        total_ms=mean([a + b for a, b in zip(obs_ms, ctrl_ms)]), render_ms=mean(render_ms),
        wall_s=time.perf_counter() - wall0,
        error_curve=[_r(x) for x in err_c], te_curve=[_r(x) for x in te_c], re_curve=[_r(x, 4) for x in re_c],
        matches_curve=[int(x) for x in m_c], trajectory=[[_r(v) for v in p] for p in traj], message=message,
        stage_ms=stage_means(stages or []))


def stage_means(infos: list[dict]) -> dict[str, float]:
    """Mean per-frame stage times (ms) of observer ``info`` dicts and the share of detected frames."""
    if not infos:
        return {}
    out = {k: _r(float(np.mean([i.get(k, 0.0) for i in infos])), 4) for k in OBSERVER_STAGES}
    out["detect_fraction"] = _r(float(np.mean([i.get("mode", "detect") == "detect" for i in infos])), 4)
    return out
