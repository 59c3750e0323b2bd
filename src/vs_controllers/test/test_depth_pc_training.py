"""Depth-PC training: the config file, a few-step smoke run, resume continues identically, the wall cap."""

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from vs_common.core.errors import ConfigError
from vs_controllers.training.train_depth_pc import load_config, train

ROOT = Path(__file__).resolve().parents[3]

SMOKE = {
    "train": {"seed": 3, "iterations": 16, "batch_size": 3, "tbptt": 4, "warmup_iterations": 4,
              "checkpoint_every": 8, "eval_every": 8, "eval_episodes": 2, "eval_steps": 4, "log_every": 4},
    "env": {"num_points_max": 60, "max_steps": 6},
    "depth_env": {"num_objects": 3},
    "depth_pc": {"warm_start": ""},
}


def _config(tmp_path, **overrides):
    data = {k: dict(v) for k, v in SMOKE.items()}
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def _losses(out):
    with (out / "log.csv").open() as f:
        return [(r["iteration"], r["loss"], r["dir_loss"], r["norm_loss"]) for r in csv.DictReader(f)]


def test_shipped_config_loads_and_warm_starts_from_a_shipped_cns_checkpoint():
    rc = load_config(ROOT / "config" / "training" / "depthpc_stage1.yaml")
    assert (ROOT / rc.depth_pc.warm_start).is_file() and rc.train.threads == 1
    assert rc.train.checkpoint_every % rc.train.tbptt == 0


def test_bad_files_are_refused(tmp_path):
    (tmp_path / "bad.yaml").write_text("trian: {}\n")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError):
        _config(tmp_path, train={"checkpoint_every": 6})  # not a multiple of tbptt


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path):
    rc = _config(tmp_path)
    train(rc, tmp_path / "straight", progress_bar=False)
    train(rc, tmp_path / "split", progress_bar=False, stop_after=8)
    assert not (tmp_path / "split" / "final.pt").exists()
    train(rc, tmp_path / "split", progress_bar=False, resume=True)
    a = torch.load(tmp_path / "straight" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "final.pt", weights_only=True)
    assert a["meta"]["iteration"] == b["meta"]["iteration"] == 16
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "split")
    assert len(_losses(tmp_path / "split")) == 4
    for name in ("best.pt", "last.pt", "eval.jsonl", "config.yaml", "ckpt_000008.pt", "ckpt_000016.pt"):
        assert (tmp_path / "split" / name).is_file()


def test_the_wall_cap_ends_the_run_cleanly(tmp_path):
    rc = _config(tmp_path)
    rc = dataclasses.replace(rc, depth_pc=dataclasses.replace(rc.depth_pc, wall_minutes=1e-6))
    train(rc, tmp_path / "capped", progress_bar=False)
    final = torch.load(tmp_path / "capped" / "final.pt", weights_only=True)
    assert final["meta"]["capped"] and final["meta"]["iteration"] == rc.train.tbptt  # stops at the first update
    assert (tmp_path / "capped" / "last.pt").is_file()
    assert not (tmp_path / "capped" / "best.pt").exists()  # no closing check: the cap is a deadline


def test_a_residual_run_starts_from_a_plain_checkpoint_with_its_outputs(tmp_path):
    from vs_controllers.core.depth_pc.network import DepthPCNet
    from vs_controllers.training.train_depth_pc import _new_net

    torch.manual_seed(5)
    torch.save(DepthPCNet().checkpoint(iteration=1), tmp_path / "plain.pt")
    rc = _config(tmp_path, train={"init_checkpoint": str(tmp_path / "plain.pt")}, depth_pc={"residual": True})
    net, _ = _new_net(rc)
    assert net.residual and torch.all(net.encoder.fusion.res_pos == 0)
    plain = DepthPCNet.from_checkpoint(tmp_path / "plain.pt").state_dict()
    assert all(torch.equal(v, plain[k]) for k, v in net.state_dict().items() if k in plain)
    torch.save(net.checkpoint(iteration=2), tmp_path / "res.pt")
    with pytest.raises(ConfigError):  # a residual checkpoint cannot start a plain run
        _new_net(_config(tmp_path, train={"init_checkpoint": str(tmp_path / "res.pt")}))
