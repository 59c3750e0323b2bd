"""Benchmark tests: statistics with known values, the episode loop on a planar stub cell, the CLI on the CI preset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vs_common.core.camera import CameraModel
from vs_common.core.se3 import invert, look_at
from vs_controllers.benchmark import BenchmarkConfig, run_episode, summarise, wilson_interval
from vs_controllers.benchmark.cli import CI_PRESET
from vs_controllers.benchmark.report import markdown_row, write_plots, write_results
from vs_controllers.benchmark.runner import parse_scene_spec, run_benchmark
from vs_controllers.core.pipelines import make_pipeline

REPO = Path(__file__).resolve().parents[3]


@dataclass
class StubScene:
    id: int
    env: str
    section: str
    w_T_goal: np.ndarray
    w_T_init: np.ndarray
    scene_center: np.ndarray


@dataclass
class StubFrame:
    color: np.ndarray
    depth: np.ndarray


class PlaneCell:
    """A textured plane at z = 0 seen through a pinhole camera: rendered by an exact homography."""

    def __init__(self, seed: int = 0, size_m: float = 0.8) -> None:
        self.camera = CameraModel(np.array([[270.0, 0, 160], [0, 270, 120], [0, 0, 1]]), 320, 240)
        rng = np.random.default_rng(seed)
        n = 800
        tex = np.full((n, n, 3), 127, np.uint8)
        for _ in range(1500):
            c = tuple(int(x) for x in rng.integers(0, 256, 3))
            u, v = (int(x) for x in rng.integers(0, n, 2))
            if rng.random() < 0.5:
                cv2.circle(tex, (u, v), int(rng.integers(3, 18)), c, -1)
            else:
                cv2.rectangle(tex, (u, v), (u + int(rng.integers(4, 36)), v + int(rng.integers(4, 36))), c, -1)
        self.texture = tex
        s = size_m / n
        # Texture pixel (i, j) → plane point (x, y) in metres, centred on the world origin.
        self.A = np.array([[s, 0, -size_m / 2], [0, s, -size_m / 2], [0, 0, 1.0]])

    def load_scene(self, scene: StubScene) -> None:
        self.scene = scene

    def render(self, w_T_c: np.ndarray, streams: tuple[str, ...] = ("color", "depth")) -> StubFrame:
        c_T_w = invert(w_T_c)
        H = self.camera.K @ np.c_[c_T_w[:3, 0], c_T_w[:3, 1], c_T_w[:3, 3]] @ self.A
        w, h = self.camera.width, self.camera.height
        color = cv2.warpPerspective(self.texture, H, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        # Plane z_w = 0 in the camera frame: n_c · P_c = n_c · t_cw, so along a pixel ray Z = n_c · t_cw / (n_c · r).
        n_c, d_c = c_T_w[:3, 2], float(c_T_w[:3, 2] @ c_T_w[:3, 3])
        uu, vv = np.meshgrid(np.arange(w), np.arange(h))
        rays = np.linalg.inv(self.camera.K) @ np.stack([uu.ravel(), vv.ravel(), np.ones(w * h)])
        with np.errstate(divide="ignore"):
            Z = (d_c / (n_c @ rays)).reshape(h, w).astype(np.float32)
        Z[(Z <= 0) | (color.max(axis=2) == 0)] = np.nan
        return StubFrame(color, Z)


def stub_scenes(n: int = 3) -> list[StubScene]:
    rng = np.random.default_rng(7)
    scenes = []
    for i in range(n):
        goal = look_at(np.array([0.0, 0.0, 0.6]), np.zeros(3), up=np.array([0.0, 1.0, 0.0]))
        init = look_at(np.r_[rng.uniform(-0.06, 0.06, 2), 0.68], np.r_[rng.uniform(-0.03, 0.03, 2), 0.0],
                       up=np.array([0.0, 1.0, 0.0]))
        init[:3, :3] = init[:3, :3] @ Rotation.from_euler("z", rng.uniform(-25, 25), degrees=True).as_matrix()
        scenes.append(StubScene(i, "plane", "S", goal, init, np.zeros(3)))
    return scenes


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0) and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _rec(ok: bool, strict: bool, steps: int, te: float, re: float) -> dict:
    return dict(success_cns=ok, success_strict=strict, steps=steps, te_m=te, re_deg=re, observer_ms=10.0,
                controller_ms=1.0, total_ms=11.0, render_ms=5.0, wall_s=1.0, reason="stop_policy", section="S")


def test_summary_counts_only_successes_for_ts_re_te() -> None:
    recs = [_rec(True, True, 100, 0.001, 0.1), _rec(True, False, 300, 0.003, 5.0), _rec(False, False, 600, 0.5, 40)]
    s = summarise(recs)
    assert s["n"] == 3 and s["sr"] == pytest.approx(2 / 3) and s["sr_strict"] == pytest.approx(1 / 3)
    assert s["ts"] == pytest.approx(200) and s["ts_std"] == pytest.approx(100)
    assert s["te_mm"] == pytest.approx(2.0) and s["re_deg"] == pytest.approx(2.55)
    assert s["total_ms"] == pytest.approx(11.0) and s["stop_reasons"] == {"stop_policy": 3}
    row = markdown_row("ibvs", "image", "A", s)
    assert row.startswith("| ibvs | image | A | 3 | 66.7 %") and row.count("|") == 13


def test_parse_scene_spec() -> None:
    assert parse_scene_spec("0:10") == slice(0, 10)
    assert parse_scene_spec(":5") == slice(None, 5)
    assert parse_scene_spec("3,7,render_001") == [3, 7, "render_001"]
    assert parse_scene_spec(None) is None


def test_protocol_settings_live_once() -> None:
    """default.yaml holds only what differs from BenchmarkConfig (CI_PRESET is the one CI subset), and the
    protocol's stop policy is StopPolicyConfig's defaults (the CNS protocol: 0.8 s / 0.01)."""
    from vs_common.core.config import from_mapping, load_yaml
    from vs_controllers.core.stop_policy import StopPolicyConfig

    values = load_yaml(REPO / "config/benchmark/default.yaml")
    repeated = {k: v for k, v in values.items() if getattr(BenchmarkConfig(), k) == v}
    assert not repeated, f"config/benchmark/default.yaml repeats defaults {repeated}"
    assert from_mapping(BenchmarkConfig, values) == BenchmarkConfig()
    assert (BenchmarkConfig().stop_waiting_s, BenchmarkConfig().stop_threshold) == (0.8, 0.01) == (
        StopPolicyConfig().waiting_time_s, StopPolicyConfig().threshold)
    assert not (REPO / "config/benchmark/ci.yaml").exists()  # the CI subset is CI_PRESET only


def test_ibvs_episode_converges_on_the_plane_stub(tmp_path: Path) -> None:
    cell = PlaneCell()
    obs_cfg, ctrl, loop = make_pipeline("ibvs", REPO / "config/ibvs.yaml")
    scene = stub_scenes(1)[0]
    rec = run_episode(cell, scene, obs_cfg, ctrl, BenchmarkConfig(max_steps=400), seed=0, loop=loop)
    assert rec.reason == "stop_policy", rec
    assert rec.success_cns and rec.success_strict
    assert rec.te_m < 5e-3 and rec.re_deg < 0.5 and rec.init_re_deg > 5
    assert len(rec.error_curve) == rec.steps + 1 and rec.error_curve[-1] < rec.error_curve[0]
    assert rec.observer_ms > 0 and rec.controller_ms > 0


def test_episode_ends_when_features_are_lost() -> None:
    cell = PlaneCell()
    obs_cfg, ctrl, _ = make_pipeline("ibvs")
    scene = stub_scenes(1)[0]
    # Start far away from the plane, looking at empty space: every frame is black (an InputError).
    scene.w_T_init = look_at(np.array([3.0, 3.0, 0.5]), np.array([6.0, 6.0, 0.5]))
    rec = run_episode(cell, scene, obs_cfg, ctrl, BenchmarkConfig(lost_patience_steps=4))
    assert rec.reason == "lost_features" and rec.steps == 3 and not rec.success_cns
    # Under the table stops at once.
    scene.w_T_init = look_at(np.array([0.0, 0.0, -0.2]), np.array([0.0, 0.0, -1.0]))
    assert run_episode(cell, scene, obs_cfg, ctrl).reason == "under_table"


def test_run_benchmark_and_reports(tmp_path: Path) -> None:
    scenes = stub_scenes(2)
    recs = run_benchmark("ibvs", scenes, pipeline_config=REPO / "config/ibvs.yaml",
                         bench_config=BenchmarkConfig(max_steps=40), cell_factory=PlaneCell, progress=False)
    assert [r["scene_id"] for r in recs] == [0, 1]
    assert all(r["reason"] == "max_steps" and r["steps"] == 40 and len(r["trajectory"]) == 40 for r in recs)
    s = summarise(recs)
    js, md = write_results(tmp_path, {"command": "test"}, [s], recs, [markdown_row("ibvs", "plane", "S", s)])
    data = json.loads(js.read_text())
    assert data["summaries"][0]["n"] == 2 and len(data["episodes"]) == 2
    assert "| ibvs | plane | S | 2 |" in md.read_text()
    paths = write_plots(tmp_path, recs, title="test")
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_cli_plumbing_on_the_real_image_cell(tmp_path: Path) -> None:
    from vs_controllers.benchmark.cli import main

    out = tmp_path / "bench"
    argv = ["--env", "image", "--scenes", "image_003,1", "--max-steps", "15", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    data = json.loads((out / "results.json").read_text())
    assert [e["scene_id"] for e in data["episodes"]] == ["image_003", "image_001"]
    assert all(e["steps"] == 15 and e["reason"] == "max_steps" for e in data["episodes"])
    assert data["meta"]["pipeline_config"].endswith("ibvs.yaml")
    assert (out / "image" / "error_curves.png").is_file()


@pytest.mark.slow
def test_cli_converges_on_one_scene_of_the_real_image_cell(tmp_path: Path) -> None:
    from vs_controllers.benchmark.cli import main

    out = tmp_path / "bench"
    assert main(["--pipeline", "ibvs", "--env", "image", "--scenes", "0:1", "--out", str(out), "--quiet"]) == 0
    data = json.loads((out / "results.json").read_text())
    ep = data["episodes"][0]
    assert ep["scene_id"] == "image_000" and ep["success_cns"] and ep["reason"] == "stop_policy"
    assert ep["te_m"] < 0.01 and ep["re_deg"] < 1.0
    assert (out / "results.md").read_text().count("| ibvs | image |") >= 1
    assert (out / "image" / "error_curves.png").is_file()


@pytest.mark.slow
def test_ci_preset_runs_on_both_environments(tmp_path: Path) -> None:
    from vs_controllers.benchmark.cli import main

    out = tmp_path / "ci"
    assert main(["--ci", "--out", str(out), "--quiet", "--no-plots"]) == 0
    data = json.loads((out / "results.json").read_text())
    envs = {s["env"] for s in data["summaries"]}
    assert envs == {"image", "render"}
    assert all(s["sr"] >= 0.5 for s in data["summaries"] if s["section"] == CI_PRESET[s["env"]]["section"])


def test_worker_limits_torch_threads_even_when_the_pipeline_imports_torch() -> None:
    # In a fresh interpreter torch is not loaded until the CNS pipeline is built; the worker must still
    # cap its threads (left at all cores, torch's pool fought other jobs: 4 ms steps took 80-700 ms).
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vs_controllers.benchmark import runner\n"
        "from vs_controllers.benchmark.config import BenchmarkConfig\n"
        "assert 'torch' not in sys.modules\n"
        "runner._init(lambda: None, 'cns', None, BenchmarkConfig(), 1)\n"
        "import torch\n"
        "print(torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "1"
