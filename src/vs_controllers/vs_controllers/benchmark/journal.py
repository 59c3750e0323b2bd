"""Episode journal: one JSON line per finished episode, so an interrupted benchmark resumes where it stopped.

Each line of ``<out>/episodes.jsonl`` is ``{"identity": {...}, "record": {...}}``: ``record`` is exactly
the per-episode dict that ``results.json`` stores, ``identity`` says under which settings it was produced
(environment, scene id and a fingerprint of the scene's poses, pipeline, seed, step cap, a hash of the
pipeline configuration + benchmark protocol, and for pipelines that read relative depth its source and
delay). A resumed run reuses a record only when every identity field
matches, so records of other settings stay in the file but are never mixed in.

Lines are appended and fsynced one at a time by the parent process only. A line cut short by a kill is
dropped with a warning (and cut off the file before the next append, so it cannot corrupt that line).
Non-finite floats are written as ``NaN`` / ``Infinity`` (Python's JSON dialect) so a record read back is
identical to the in-memory one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vs_controllers.benchmark.config import BenchmarkConfig
from vs_controllers.core.pipelines import pipeline_settings

__all__ = ["JOURNAL_NAME", "EpisodeJournal", "config_hash", "scene_fingerprint"]

JOURNAL_NAME = "episodes.jsonl"


def _plain(obj: Any) -> Any:
    """numpy arrays / scalars and paths → JSON types (``json.dumps`` default hook)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(pipeline: str, pipeline_config: Mapping[str, Any] | str | Path | None,
                bench_config: BenchmarkConfig) -> str:
    """Hash of the pipeline settings and the benchmark protocol.

    A pipeline is hashed by every setting it runs with (:func:`~vs_controllers.core.pipelines.pipeline_settings`:
    the file's values over the defaults, overlays resolved), so files that give the same behaviour — a
    variant written in full or as an overlay, a default written out or left out — share their episodes,
    and a change of a default in code is seen. Weights and the renderer are not: ``--fresh`` after such a change.

    Returns:
        16 hex digits.
    """
    pipe = pipeline_settings(pipeline, pipeline_config)
    return _digest({"pipeline": pipeline, "pipeline_config": pipe, "bench": dataclasses.asdict(bench_config)})


def scene_fingerprint(scene: Any) -> str:
    """Hash of a scene's content (``to_json()`` when it has one, else its poses), so regenerated scenes
    with the same id are not confused with the old ones."""
    if hasattr(scene, "to_json"):
        content = scene.to_json()
    else:
        content = {k: np.round(np.asarray(getattr(scene, k), dtype=np.float64), 9)
                   for k in ("w_T_goal", "w_T_init", "scene_center")}
    return _digest(content)


class EpisodeJournal:
    """Append-only store of finished episodes for one benchmark setting (see the module docstring).

    Args:
        path: the ``episodes.jsonl`` file (created on the first append).
        pipeline, env, seed, max_steps: identity fields shared by every episode of this run.
        cfg_hash: :func:`config_hash` of the run's pipeline config and protocol.
        depth: the relative-depth source (``DepthSourceConfig.identity()``) of a pipeline that reads one.

    Attributes:
        reused: episodes taken from the file by the last ``run_benchmark`` call with this journal.
    """

    def __init__(self, path: str | Path, *, pipeline: str, env: str, seed: int, max_steps: int,
                 cfg_hash: str, depth: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._base = {"pipeline": pipeline, "env": env, "seed": int(seed), "max_steps": int(max_steps),
                      "config_hash": cfg_hash}
        if depth is not None:  # only pipelines that read relative depth: the others' identities stay as they were
            self._base["depth"] = dict(depth)
        self.reused = 0

    def identity(self, scene: Any) -> dict[str, Any]:
        """The identity of ``scene``'s episode under this run's settings."""
        return {**self._base, "scene_id": scene.id, "scene_hash": scene_fingerprint(scene)}

    @staticmethod
    def _key(identity: Mapping[str, Any]) -> str:
        return json.dumps(identity, sort_keys=True, default=_plain)

    def completed(self) -> dict[str, dict[str, Any]]:
        """Records already in the file, by identity key (:meth:`key`); later lines win over earlier ones.

        Unreadable lines (a truncated last line after a kill, or corruption) are skipped with a warning.
        """
        done: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return done
        bad = []
        with self.path.open("rb") as f:
            for n, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                    done[self._key(entry["identity"])] = entry["record"]
                except (ValueError, KeyError, TypeError):
                    bad.append(n)
        if bad:
            warnings.warn(f"{self.path}: ignored {len(bad)} unreadable line(s) {bad[:5]} "
                          "(an episode cut off mid-write; it will be run again)", RuntimeWarning, stacklevel=2)
        return done

    def key(self, scene: Any) -> str:
        """Lookup key of ``scene`` in :meth:`completed`."""
        return self._key(self.identity(scene))

    def _drop_partial_tail(self) -> None:
        """Cut a last line without its newline (a write killed halfway) so the next append starts clean."""
        if not self.path.is_file():
            return
        with self.path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            # Walk back to the last newline; blocks keep this cheap for long records.
            pos = size
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    pos = pos - step + nl + 1
                    break
                pos -= step
            f.truncate(pos)
            f.flush()
            os.fsync(f.fileno())

    def append(self, scene: Any, record: Mapping[str, Any]) -> None:
        """Append one finished episode and force it to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_tail()
        line = json.dumps({"identity": self.identity(scene), "record": dict(record)}, default=_plain)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
