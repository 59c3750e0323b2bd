"""Run a pipeline over many scenes, in this process or in worker processes (each with its own cell)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import cv2
from vs_common.core.errors import ConfigError

from vs_controllers.benchmark.config import BenchmarkConfig
from vs_controllers.benchmark.depth import DepthSourceConfig
from vs_controllers.benchmark.episode import run_episode
from vs_controllers.benchmark.journal import EpisodeJournal
from vs_controllers.core.inputs import make_inputs
from vs_controllers.core.pipelines import PipelineSpec, get_pipeline, make_pipeline

__all__ = ["dev_scenes", "parse_scene_spec", "run_benchmark", "select_scenes"]

# Per-process state of a worker: (cell, observer config, controller, loop config, benchmark config, spec,
# relative-depth source).
_STATE: tuple[Any, Any, Any, Any, BenchmarkConfig, PipelineSpec, DepthSourceConfig | None] | None = None


def _limit_threads(threads: int) -> None:
    """Keep each process to ``threads`` cores (the machines here are shared)."""
    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def default_cell_factory(env: str) -> Any:
    """``vs_sim.core.cells.make_cell(env)``, imported only when a cell is needed."""
    from vs_sim.core.cells import make_cell

    return make_cell(env)


def _init(cell_factory: Callable[[], Any], pipeline: str, pipeline_config: Mapping | str | Path | None,
          bench: BenchmarkConfig, threads: int, depth: DepthSourceConfig | None = None) -> None:
    global _STATE
    obs_cfg, controller, loop = make_pipeline(pipeline, pipeline_config)
    # After the pipeline is built: it may import torch only now. Left at its default (all cores), torch's
    # thread pool fights any other job on a 2-core machine: CNS steps took 80-700 ms instead of 4 ms.
    _limit_threads(threads)
    _STATE = (cell_factory(), obs_cfg, controller, loop, bench, get_pipeline(pipeline), depth)


def _run_one(scene: Any, seed: int) -> dict[str, Any]:
    assert _STATE is not None, "worker not initialised"
    cell, obs_cfg, controller, loop, bench, spec, depth = _STATE
    # Fresh input stages per episode: no depth map of the previous scene survives into this one.
    return run_episode(cell, scene, obs_cfg, controller, bench, seed=seed, loop=loop, inputs=make_inputs(spec),
                       depth=depth).to_dict()


def parse_scene_spec(spec: str | None) -> slice | list[int | str] | None:
    """``"0:10"`` → a slice; ``"3,render_007"`` → positions (integers) and scene ids (strings); None/"" → all."""
    if not spec:
        return None
    if ":" in spec:
        parts = [int(p) if p.strip() else None for p in spec.split(":")]
        return slice(*parts)
    return [int(s) if s.strip().lstrip("-").isdigit() else s.strip() for s in spec.split(",") if s.strip()]


def dev_scenes(env: str, seed: int, section: str | None = None, n: int = 150) -> list[Any]:
    """A development split: ``n`` scenes of ``env`` generated with ``seed`` (never the stored set's seed).

    Settings are chosen on such a split so the stored sets stay a yardstick, not a tuning set.

    Raises:
        ConfigError: ``seed`` is the one the stored scenes of ``env`` were generated with.
    """
    from vs_sim.core.scenes import generate_image_scenes, generate_render_scenes, load_scenes

    stored_seed = load_scenes(env)[0].seed // 1000
    if seed == stored_seed:
        raise ConfigError(f"scene seed {seed} generates the stored {env} set; pick another seed for a dev split")
    scenes = (generate_render_scenes if env == "render" else generate_image_scenes)(n, seed)
    return scenes if section in (None, "A", "") else [s for s in scenes if s.section == section]


def select_scenes(env: str, section: str = "A", spec: str | None = None,
                  scenes_seed: int | None = None) -> list[Any]:
    """Scenes of ``env`` in ``section`` (S, M, L or A = all), then narrowed by :func:`parse_scene_spec`.

    Integers and slices index the section's scene list (in stored order); strings are scene ids. With
    ``scenes_seed`` the scenes are a generated development split (:func:`dev_scenes`), not the stored set.
    """
    from vs_sim.core.scenes import load_scenes

    sel = parse_scene_spec(spec)
    sec = None if section in ("A", "", None) else section
    scenes = load_scenes(env, section=sec) if scenes_seed is None else dev_scenes(env, scenes_seed, sec)
    if isinstance(sel, slice):
        return scenes[sel]
    if isinstance(sel, list):
        by_id = {s.id: s for s in scenes}
        missing = [k for k in sel if isinstance(k, str) and k not in by_id]
        if missing:
            raise ConfigError(f"unknown scene ids {missing[:5]} in {env}/{section}; ids look like {scenes[0].id}")
        return [scenes[k] if isinstance(k, int) else by_id[k] for k in sel]
    return scenes


def run_benchmark(pipeline: str, scenes: Sequence[Any], *, env: str = "", pipeline_config: Any = None,
                  bench_config: BenchmarkConfig | None = None, seed: int = 2023, jobs: int = 1, threads: int = 1,
                  cell_factory: Callable[[], Any] | None = None, progress: bool = True,
                  journal: EpisodeJournal | None = None, depth: DepthSourceConfig | None = None
                  ) -> list[dict[str, Any]]:
    """Run every scene and return the episode records (dicts) in scene order.

    With a ``journal``, episodes it already holds under the same identity are taken from it instead of
    being run, and every newly finished episode is appended to it at once (by this process only), so an
    interrupted run resumes where it stopped and ends with the same records as an uninterrupted one.

    Args:
        pipeline: a registered pipeline name.
        scenes: ``vs_sim`` scenes (picklable when ``jobs > 1``).
        env: the cell's environment, used for the default cell factory.
        pipeline_config: YAML path or mapping for :func:`make_pipeline`.
        bench_config: protocol settings.
        seed: numpy/OpenCV seed set before every episode (CNS reseeds 2023 per episode).
        jobs: worker processes; 1 runs here. Each worker builds its own cell and pipeline.
        threads: OpenCV / torch threads per process.
        cell_factory: zero-argument callable building a cell (picklable when ``jobs > 1``).
        progress: show a tqdm bar.
        journal: resume store (:class:`~vs_controllers.benchmark.journal.EpisodeJournal`), or None.
        depth: the relative-depth source of a pipeline that needs one (None = ``DepthSourceConfig()``).
    """
    from tqdm import tqdm

    bench = bench_config or BenchmarkConfig()
    factory = cell_factory or functools.partial(default_cell_factory, env)
    records: list[dict[str, Any] | None] = [None] * len(scenes)
    if journal is not None:
        previous = journal.completed()
        for i, scene in enumerate(scenes):
            records[i] = previous.get(journal.key(scene))
        journal.reused = sum(r is not None for r in records)
    todo = [i for i, r in enumerate(records) if r is None]
    bar = tqdm(total=len(scenes), initial=len(scenes) - len(todo), desc=f"{pipeline}/{env or 'cell'}",
               disable=not progress, dynamic_ncols=True)
    if not todo:
        bar.close()
        return list(records)  # type: ignore[arg-type]

    def done(i: int, rec: dict[str, Any]) -> None:
        if journal is not None:
            journal.append(scenes[i], rec)
        records[i] = rec
        finished = [r for r in records if r is not None]
        bar.update(1)
        bar.set_postfix(SR=f"{sum(r['success_cns'] for r in finished)}/{len(finished)}",
                        last=f"{rec['reason']} {rec['steps']}st")

    try:
        if jobs <= 1:
            global _STATE
            saved = _STATE
            _init(factory, pipeline, pipeline_config, bench, threads, depth)
            try:
                for i in todo:
                    done(i, _run_one(scenes[i], seed))
            finally:
                _STATE = saved
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), initializer=_init,
                                     initargs=(factory, pipeline, pipeline_config, bench, threads, depth)) as pool:
                futures = {pool.submit(_run_one, scenes[i], seed): i for i in todo}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
    finally:
        bar.close()
    return [r for r in records if r is not None]


def group_by(records: Iterable[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r[key]), []).append(r)
    return groups
