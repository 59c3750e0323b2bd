"""Shipped weights and training configs: one card per model, configs named after the checkpoint they produce."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from vs_controllers.training.train_cns import load_config

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = ROOT / "src" / "vs_controllers" / "vs_controllers" / "weights"
CONFIGS = sorted((ROOT / "config" / "training").glob("*.yaml"))
CHECKPOINTS = sorted(WEIGHTS.glob("*.pt"))


def test_there_are_configs_and_checkpoints() -> None:
    assert CONFIGS and CHECKPOINTS


@pytest.mark.parametrize("ckpt", CHECKPOINTS, ids=lambda p: p.name)
def test_every_checkpoint_has_its_config_logs_and_model_card(ckpt: Path) -> None:
    assert (ROOT / "config" / "training" / f"{ckpt.stem}.yaml").is_file()
    assert (WEIGHTS / f"{ckpt.stem}_log.csv").is_file() and (WEIGHTS / f"{ckpt.stem}_eval.jsonl").is_file()
    card = WEIGHTS / f"{ckpt.stem.split('_')[0]}.md"
    assert card.is_file() and f"`{ckpt.name}`" in card.read_text()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_and_names_what_it_produces(config: Path) -> None:
    load_config(config)
    produces = WEIGHTS / f"{config.stem}.pt"
    assert produces.is_file() or (WEIGHTS / f"{config.stem}_log.csv").is_file(), \
        f"{config.name} is named after neither a checkpoint nor a run log in weights/"
    header = config.read_text().splitlines()[0]
    assert header.startswith("# Produces ") and (f"weights/{produces.name}" in header or "runs/" in header)
    assert f"--config config/training/{config.name}" in config.read_text()
    init = (yaml.safe_load(config.read_text()).get("train") or {}).get("init_checkpoint", "")
    if init.startswith("src/"):
        assert (ROOT / init).is_file(), f"{config.name}: init_checkpoint {init} is missing"
    elif init:
        run = Path(init).parts
        assert run[0] == "runs" and (ROOT / "config" / "training" / f"{run[1]}.yaml").is_file()
