"""Resumable benchmark: the episode journal (<out>/episodes.jsonl), --resume (default) and --fresh.

Every test drives the real CLI on the real ``image`` cell with a 12-step cap, so an episode takes ~1 s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from vs_controllers.benchmark import BenchmarkConfig
from vs_controllers.benchmark.cli import main
from vs_controllers.benchmark.journal import JOURNAL_NAME, config_hash

REPO = Path(__file__).resolve().parents[3]
STEPS = 12
# Per-episode wall-clock timings: the only fields allowed to differ between two runs of one episode.
TIMINGS = {"observer_ms", "controller_ms", "total_ms", "render_ms", "wall_s", "stage_ms"}


def _bench(out: Path, scenes: str, *extra: str) -> dict:
    argv = ["--env", "image", "--scenes", scenes, "--max-steps", str(STEPS), "--out", str(out), "--quiet",
            "--no-plots", *extra]
    assert main(argv) == 0
    return json.loads((out / "results.json").read_text())


def _untimed(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in TIMINGS}


def _journal_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / JOURNAL_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An uninterrupted two-scene run (the reference)."""
    out = tmp_path_factory.mktemp("fresh") / "bench"
    return out, _bench(out, "0:2")


def _copy(fresh_run: tuple[Path, dict], tmp_path: Path) -> Path:
    out = tmp_path / "bench"
    shutil.copytree(fresh_run[0], out)
    return out


def test_interrupted_run_resumes_to_the_same_results(fresh_run: tuple[Path, dict], tmp_path: Path) -> None:
    ref = fresh_run[1]
    out = tmp_path / "bench"
    first = _bench(out, "0:1")  # the "interrupted" run: only the first scene got done
    assert len(_journal_lines(out)) == 1
    resumed = _bench(out, "0:2")
    assert resumed["meta"]["reused_episodes"] == {"image": 1}
    # The first episode comes from the journal unchanged (timings included), the second was run now.
    assert resumed["episodes"][0] == first["episodes"][0]
    assert [e["scene_id"] for e in resumed["episodes"]] == ["image_000", "image_001"]
    assert [_untimed(e) for e in resumed["episodes"]] == [_untimed(e) for e in ref["episodes"]]
    assert [_untimed(s) for s in resumed["summaries"]] == [_untimed(s) for s in ref["summaries"]]
    assert (out / "results.md").read_text().splitlines()[2].split("|")[:10] == \
        (fresh_run[0] / "results.md").read_text().splitlines()[2].split("|")[:10]
    lines = _journal_lines(out)
    assert [ln["identity"]["scene_id"] for ln in lines] == ["image_000", "image_001"]
    assert lines[1]["record"] == json.loads(json.dumps(resumed["episodes"][1]))
    # Everything done: a rerun runs nothing and appends nothing.
    again = _bench(out, "0:2")
    assert again["meta"]["reused_episodes"] == {"image": 2} and len(_journal_lines(out)) == 2
    assert again["episodes"] == resumed["episodes"]


def test_changed_settings_invalidate_old_records(fresh_run: tuple[Path, dict], tmp_path: Path) -> None:
    out = _copy(fresh_run, tmp_path)
    data = _bench(out, "0:2", "--max-steps", "8")  # the later --max-steps wins over the helper's
    assert data["meta"]["reused_episodes"] == {"image": 0}
    assert all(e["steps"] == 8 for e in data["episodes"])
    # A changed pipeline config invalidates too; the records of other settings stay in the file.
    cfg_path = tmp_path / "ibvs_slow.yaml"
    cfg_path.write_text(yaml.safe_dump({"extends": str(REPO / "config/ibvs.yaml"),
                                        "loop": {"ros__parameters": {"gain_inf": 0.3}}}))
    data = _bench(out, "0:1", "--config", str(cfg_path))
    assert data["meta"]["reused_episodes"] == {"image": 0}
    assert len(_journal_lines(out)) == 2 + 2 + 1
    # Back to the original settings: everything is reused again.
    assert _bench(out, "0:2")["meta"]["reused_episodes"] == {"image": 2}


def test_config_hash_follows_content_not_path(tmp_path: Path) -> None:
    src = REPO / "config/ibvs.yaml"
    copy = tmp_path / "elsewhere.yaml"
    copy.write_text("# a comment only\n" + src.read_text())
    bench = BenchmarkConfig()
    assert config_hash("ibvs", src, bench) == config_hash("ibvs", copy, bench)
    assert config_hash("ibvs", src, bench) != config_hash("ibvs", src, BenchmarkConfig(stop_threshold=0.02))
    # Keyed by behaviour: a file that states the defaults shares its episodes with no file at all, and the
    # shipped file (tracking on) does not.
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("observer: {ros__parameters: {tracking: {enabled: false}}}\n")
    assert config_hash("ibvs", defaults, bench) == config_hash("ibvs", None, bench)
    assert config_hash("ibvs", src, bench) != config_hash("ibvs", None, bench)
    slower = tmp_path / "slower.yaml"
    slower.write_text(f"extends: {src}\nloop: {{ros__parameters: {{gain_inf: 0.3}}}}\n")
    assert config_hash("ibvs", slower, bench) != config_hash("ibvs", src, bench)
    assert config_hash("ibvs", None, bench) != config_hash("cns", None, bench)


def test_truncated_last_line_is_ignored_with_a_warning(fresh_run: tuple[Path, dict], tmp_path: Path) -> None:
    out = _copy(fresh_run, tmp_path)
    journal = out / JOURNAL_NAME
    text = journal.read_text()
    cut = text.rstrip("\n").rfind("\n") + 1 + 200  # 200 characters into the last line: killed mid-write
    journal.write_text(text[:cut])
    with pytest.warns(RuntimeWarning, match="unreadable line"):
        data = _bench(out, "0:2")
    assert data["meta"]["reused_episodes"] == {"image": 1}
    assert [_untimed(e) for e in data["episodes"]] == [_untimed(e) for e in fresh_run[1]["episodes"]]
    # The partial line was cut off before the append: the file is clean again.
    assert [ln["identity"]["scene_id"] for ln in _journal_lines(out)] == ["image_000", "image_001"]


def test_fresh_starts_over(fresh_run: tuple[Path, dict], tmp_path: Path) -> None:
    out = _copy(fresh_run, tmp_path)
    data = _bench(out, "0:2", "--fresh")
    assert data["meta"]["reused_episodes"] == {"image": 0}
    assert len(_journal_lines(out)) == 2
    assert (out / (JOURNAL_NAME + ".bak")).read_text() == (fresh_run[0] / JOURNAL_NAME).read_text()
    assert [_untimed(e) for e in data["episodes"]] == [_untimed(e) for e in fresh_run[1]["episodes"]]


def test_resume_with_worker_processes(fresh_run: tuple[Path, dict], tmp_path: Path) -> None:
    out = _copy(fresh_run, tmp_path)
    data = _bench(out, "0:4", "--jobs", "2")
    assert data["meta"]["reused_episodes"] == {"image": 2}
    assert [e["scene_id"] for e in data["episodes"]] == [f"image_00{i}" for i in range(4)]
    assert data["episodes"][:2] == fresh_run[1]["episodes"]
    # Only the parent wrote: one whole line per episode, none twice.
    assert sorted(ln["identity"]["scene_id"] for ln in _journal_lines(out)) == [f"image_00{i}" for i in range(4)]
