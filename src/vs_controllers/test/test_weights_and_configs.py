"""Shipped weights and training configs: one card per model, configs named after the checkpoint they produce."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from vs_controllers.training import train_cns, train_depth_pc

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = ROOT / "src" / "vs_controllers" / "vs_controllers" / "weights"
CONFIGS = sorted((ROOT / "config" / "training").glob("*.yaml"))
CHECKPOINTS = sorted(WEIGHTS.glob("*.pt"))
#: Each model's training-config loader, by the config's stem up to its first underscore (the card rule).
LOADERS = {"cns": train_cns.load_config, "depthpc": train_depth_pc.load_config}
#: Configs whose run is under way: their checkpoint and logs land in weights/ when it ends.
IN_TRAINING: set[str] = set()


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
    LOADERS[config.stem.split("_")[0]](config)
    produces = WEIGHTS / f"{config.stem}.pt"
    header = config.read_text().splitlines()[0]
    assert header.startswith("# Produces ") and (f"weights/{produces.name}" in header or "runs/" in header)
    assert f"--config config/training/{config.name}" in config.read_text()
    if config.name in IN_TRAINING and not produces.is_file():
        pytest.skip(f"{config.name}: its training run has not finished")
    assert produces.is_file() or (WEIGHTS / f"{config.stem}_log.csv").is_file(), \
        f"{config.name} is named after neither a checkpoint nor a run log in weights/"
    init = (yaml.safe_load(config.read_text()).get("train") or {}).get("init_checkpoint", "")
    if init.startswith("src/"):
        assert (ROOT / init).is_file(), f"{config.name}: init_checkpoint {init} is missing"
    elif init:
        run = Path(init).parts
        assert run[0] == "runs" and (ROOT / "config" / "training" / f"{run[1]}.yaml").is_file()
