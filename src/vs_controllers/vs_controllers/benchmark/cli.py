"""Command line of the servo benchmark.

Examples (from the repository root):
    python -m vs_controllers.benchmark --pipeline ibvs --env image --scenes 0:10
    python -m vs_controllers.benchmark --pipeline ibvs --env render --section L --jobs 2 --out bench_results/ibvs-L
    python -m vs_controllers.benchmark --pipeline ibvs --ci          # a few scenes per environment, < 3 min
    python -m vs_controllers.benchmark --pipeline cns --scenes-seed 7 --scenes 0:20 \\
        --observer tracking.enabled=true  # dev split

Depth-PC (pipelines that read relative depth) with the depth source and CNS on the same scenes:
    python -m vs_controllers.benchmark --pipeline depth_pc --depth-source sgbm --scenes 0:20 --compare cns

Runs resume by default: every finished episode is appended to <out>/episodes.jsonl, and a rerun with the
same settings skips the episodes found there (--fresh starts over). See docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from vs_common.core.config import flatten_mapping, from_mapping, load_yaml
from vs_common.core.errors import ConfigError, VisualServoError
from vs_common.core.paths import resolve_config

from vs_controllers.benchmark.config import BenchmarkConfig
from vs_controllers.benchmark.depth import DEPTH_SOURCES, RENDER_ERROR_DELAY_STEPS, DepthSourceConfig
from vs_controllers.benchmark.journal import JOURNAL_NAME, EpisodeJournal, config_hash
from vs_controllers.benchmark.metrics import summarise
from vs_controllers.benchmark.report import markdown_row, markdown_table, write_plots, write_results
from vs_controllers.benchmark.runner import group_by, run_benchmark, select_scenes
from vs_controllers.core.pipelines import Input, get_pipeline, load_pipeline_file, pipeline_names

__all__ = ["CI_PRESET", "main"]

# The CI subset (`--ci`, `make bench-ci`, the CI test): a few scenes per environment with a shorter step cap.
CI_PRESET: dict[str, dict[str, Any]] = {
    "image": {"section": "A", "scenes": "0:3", "max_steps": 300},
    "render": {"section": "S", "scenes": "0:1", "max_steps": 250},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vs_controllers.benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default="ibvs", help=f"pipeline name ({', '.join(pipeline_names())})")
    p.add_argument("--env", choices=("render", "image"), default="render", help="simulated environment")
    p.add_argument("--section", choices=("S", "M", "L", "A"), default="A",
                   help="scene section by initial rotation (S/M/L thirds, A = all)")
    p.add_argument("--scenes", default=None, help="'a:b' slice of the section's scenes, or comma-separated ids")
    p.add_argument("--scenes-seed", type=int, default=None,
                   help="run on a development split generated with this seed instead of the stored scenes "
                        "(choose settings there; the stored sets are the yardstick)")
    p.add_argument("--observer", action="append", default=[], metavar="KEY=VALUE",
                   help="override an observer setting of the pipeline file (repeatable; YAML values; dotted names "
                        "as the observer's parameters), e.g. --observer tracking.enabled=true "
                        "--observer features.detector=orb")
    p.add_argument("--seed", type=int, default=2023, help="numpy/OpenCV seed set before every episode")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (each builds its own cell)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV/torch threads per process")
    p.add_argument("--max-steps", type=int, default=None, help="step cap per episode (default: from the config)")
    p.add_argument("--config", default=None,
                   help="pipeline YAML (default: config/<pipeline>.yaml of the workspace, else built-in defaults)")
    p.add_argument("--bench-config", default=None,
                   help="benchmark protocol YAML (default: config/benchmark/default.yaml of the workspace)")
    p.add_argument("--depth-source", choices=DEPTH_SOURCES, default="render",
                   help="relative depth of pipelines that read it: render (renderer depth, normalised), sgbm "
                        "(SGBM on the rendered IR pair), render_error (renderer depth through the depth-error model)")
    p.add_argument("--depth-delay", type=int, default=-1, metavar="STEPS",
                   help="sample the relative depth of this many steps ago (asynchronous depth); -1 = the source's "
                        f"default (render, sgbm: 0; render_error: {RENDER_ERROR_DELAY_STEPS})")
    p.add_argument("--compare", action="append", default=[], metavar="PIPELINE",
                   help="also run this pipeline on the same scenes (repeatable), into <out>-<pipeline>; one table")
    p.add_argument("--ci", action="store_true", help="run the CI preset: a few scenes of every environment")
    p.add_argument("--out", default=None, help="output folder (default: bench_results/<pipeline>-<env|ci>)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="fresh", action="store_false",
                        help=f"reuse the episodes in <out>/{JOURNAL_NAME} run with the same settings (default)")
    resume.add_argument("--fresh", dest="fresh", action="store_true",
                        help=f"start over: move <out>/{JOURNAL_NAME} aside to {JOURNAL_NAME}.bak and run every episode")
    p.set_defaults(fresh=False)
    p.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def add_dev_split_arguments(p: argparse.ArgumentParser, scenes: str) -> None:
    """The arguments of the dev-split tools (``loop_rate``, ``near_goal``): env, split seed, section, scenes."""
    p.add_argument("--env", choices=("render", "image"), default="render")
    p.add_argument("--scenes-seed", type=int, default=7, help="development split seed (not a stored set's)")
    p.add_argument("--section", choices=("S", "M", "L", "A"), default="A")
    p.add_argument("--scenes", default=scenes, help="'a:b' slice or ids of the split's scenes")


def _default_path(explicit: str | None, name: str) -> Path | None:
    """The explicit path, else ``name`` in the workspace config folder, else None (built-in defaults)."""
    if explicit:
        return Path(explicit)
    try:
        return resolve_config(name)
    except ConfigError:
        return None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["tracking.enabled=true", "features.detector=orb"]`` → ``{"tracking.enabled": True,
    "features.detector": "orb"}`` (values read as YAML; dotted names reach nested settings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like KEY=VALUE, e.g. tracking.enabled=true")
        out[key.strip()] = yaml.safe_load(value)
    return out


def with_observer_overrides(pipe_cfg: Path | None, overrides: dict[str, Any]) -> Path | dict[str, Any] | None:
    """The pipeline file as a mapping with ``overrides`` (dotted names) applied to its observer section (the
    file if none); the section's other settings, nested ones included, stay."""
    if not overrides:
        return pipe_cfg
    sections = load_pipeline_file(pipe_cfg) if pipe_cfg else {}  # overlays (extends:) resolved
    return {**sections, "observer": {**flatten_mapping(sections.get("observer", {})), **overrides}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by parsed ``args``; returns {"summaries", "markdown", "out"}."""
    pipe_path = _default_path(args.config, get_pipeline(args.pipeline).config_file)
    overrides = parse_overrides(args.observer)
    pipe_cfg = with_observer_overrides(pipe_path, overrides)
    bench_path = _default_path(args.bench_config, "benchmark/default.yaml")
    bench_map = load_yaml(bench_path) if bench_path else {}
    depth = (from_mapping(DepthSourceConfig, {"source": args.depth_source, "delay_steps": args.depth_delay})
             if get_pipeline(args.pipeline).needs(Input.RELATIVE_DEPTH) else None)
    plan = dict(CI_PRESET) if args.ci else {args.env: {"section": args.section, "scenes": args.scenes}}
    dev = "" if args.scenes_seed is None else f"-dev{args.scenes_seed}"
    src = "" if depth is None else f"-{depth.source}"
    out = Path(args.out or f"bench_results/{args.pipeline}-{'ci' if args.ci else args.env}{dev}{src}")
    journal_path = out / JOURNAL_NAME
    if args.fresh and journal_path.is_file():
        journal_path.replace(journal_path.with_name(JOURNAL_NAME + ".bak"))
    summaries, rows, all_records = [], [], []
    reused: dict[str, int] = {}
    started = time.time()
    for env, spec in plan.items():
        overrides = dict(bench_map)
        if spec.get("max_steps") is not None:
            overrides["max_steps"] = spec["max_steps"]
        if args.max_steps is not None:
            overrides["max_steps"] = args.max_steps
        bench = from_mapping(BenchmarkConfig, overrides)
        scenes = select_scenes(env, spec["section"], spec.get("scenes"), scenes_seed=args.scenes_seed)
        if not scenes:
            raise VisualServoError(f"no scenes selected for env={env} section={spec['section']} "
                                   f"scenes={spec.get('scenes')}")
        journal = EpisodeJournal(journal_path, pipeline=args.pipeline, env=env, seed=args.seed,
                                 max_steps=bench.max_steps, cfg_hash=config_hash(args.pipeline, pipe_cfg, bench),
                                 depth=None if depth is None else depth.identity())
        records = run_benchmark(args.pipeline, scenes, env=env, pipeline_config=pipe_cfg, bench_config=bench,
                                seed=args.seed, jobs=args.jobs, threads=args.threads, progress=not args.quiet,
                                journal=journal, depth=depth)
        reused[env] = journal.reused
        all_records += records
        s = summarise(records, label=f"{args.pipeline}/{env}/{spec['section']}")
        s.update(pipeline=args.pipeline, env=env, section=spec["section"])
        summaries.append(s)
        rows.append(markdown_row(args.pipeline, env, spec["section"], s))
        if spec["section"] == "A":
            for sec, recs in sorted(group_by(records, "section").items()):
                if sec and len(recs) < len(records):
                    ss = summarise(recs, label=f"{args.pipeline}/{env}/{sec}")
                    ss.update(pipeline=args.pipeline, env=env, section=sec)
                    summaries.append(ss)
                    rows.append(markdown_row(args.pipeline, env, sec, ss))
        if not args.no_plots:
            write_plots(out / env, records, title=f"{args.pipeline} / {env}")
    meta = {
        "command": " ".join(["python -m vs_controllers.benchmark", *sys.argv[1:]]),
        "pipeline": args.pipeline, "plan": plan, "seed": args.seed, "jobs": args.jobs,
        "pipeline_config": str(pipe_path) if pipe_path else None, "observer_overrides": overrides,
        "scenes_seed": args.scenes_seed, "relative_depth": None if depth is None else depth.identity(),
        "bench_config": dataclasses.asdict(from_mapping(BenchmarkConfig, bench_map)),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": time.time() - started, "journal": str(journal_path), "reused_episodes": reused,
        "python": platform.python_version(), "machine": platform.machine(),
    }
    write_results(out, meta, summaries, all_records, rows)
    return {"summaries": summaries, "markdown": markdown_table(rows), "out": out}


def compared_runs(args: argparse.Namespace) -> list[argparse.Namespace]:
    """The run of ``args`` and one per ``--compare`` pipeline: same scenes and protocol, out ``<out>-<pipeline>``
    (its own default folder without ``--out``); a compared pipeline gets its own pipeline file."""
    runs = [args]
    for name in args.compare:
        get_pipeline(name)  # an unknown name fails before anything runs
        out = f"{args.out}-{name}" if args.out else None
        runs.append(argparse.Namespace(**{**vars(args), "pipeline": name, "config": None, "out": out, "compare": []}))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = []
    try:
        for run_args in compared_runs(args):
            results.append(run(run_args))
    except VisualServoError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 2
    for result in results:
        print(result["markdown"])
        brief = [{k: s[k] for k in ("label", "n", "sr", "sr_strict", "stop_reasons")} for s in result["summaries"]]
        print(json.dumps(brief))
        print(f"results in {result['out']}/results.json, results.md")
    return 0
