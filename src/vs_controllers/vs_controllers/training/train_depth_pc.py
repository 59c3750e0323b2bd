"""Train the Depth-PC policy on synthetic object scenes on a CPU (paper §III; see weights/depthpc.md).

    python -m vs_controllers.training.train_depth_pc --config config/training/depthpc.yaml [--out DIR] [--resume]

The recipe is CNS's (:mod:`vs_controllers.training.train_cns`, whose schedule, loss, optimiser and
training loop :class:`~vs_controllers.training.train_cns.TrainLoop` it reuses): one iteration = one
time step of B parallel environments (:class:`~vs_controllers.training.depth_pc_env.DepthPCEnvBatch`),
the policy drives its own roll-outs, PBVS labels every visited state, the loss (CNS Eq. 4) is summed
over ``tbptt`` steps per AdamW step.

Departure from the paper (which trains from scratch for hours on a GPU): the layers Depth-PC shares
with CNS (the encoder's PTConv and cluster fusion, the backbone, the decoder) start from a CNS
checkpoint (``depth_pc.warm_start``, by default ``weights/cns_table.pt``); the fusion module and the
depth-gain heads start fresh, the gains at exactly 1 (:meth:`DepthPCNet.warm_start`).

Runs are seeded and resumable: every ``checkpoint_every`` iterations (a multiple of ``tbptt``) the
journal ``last.pt`` holds the model, the optimiser, the environments (scenes, poses, generators) and the
recurrent states, so ``--resume`` continues exactly as an uninterrupted run would. ``wall_minutes``
caps the wall time (over resumes): the run then stops at the next update and writes ``last.pt`` and
``final.pt`` (``best.pt`` is the best completed check; none ran: use ``final.pt``).

Outputs in ``--out`` (default ``runs/<config name>``): ``last.pt`` (journal), ``best.pt`` (best closed-loop
check, a :meth:`DepthPCNet.checkpoint`), ``final.pt`` (the last weights), ``ckpt_<it>.pt`` at each check,
``log.csv``, ``eval.jsonl``, ``config.yaml``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from vs_common.core.config import check_range, describe, from_mapping, load_yaml
from vs_common.core.errors import ConfigError

from vs_controllers.core.cns.graph import GraphConfig
from vs_controllers.core.cns.network import GraphVS
from vs_controllers.core.depth_pc.depth_error import DepthErrorConfig
from vs_controllers.core.depth_pc.graph import collate_depth
from vs_controllers.core.depth_pc.network import DepthPCNet
from vs_controllers.training.depth_pc_env import DepthEnvConfig, DepthPCEnvBatch
from vs_controllers.training.eval_cns import evaluate
from vs_controllers.training.point_env import EnvConfig
from vs_controllers.training.train_cns import LOG_FIELDS, TrainConfig, TrainLoop, _env_cfg_at, _n_expert, _optimizer

__all__ = ["DepthPCTrainConfig", "RunConfig", "load_config", "train"]


@dataclass(frozen=True)
class DepthPCTrainConfig:
    """Depth-PC's training settings (YAML section ``depth_pc``)."""

    warm_start: str = describe(
        "CNS checkpoint whose shared layers start the network (empty: from scratch, as the paper).",
        default="src/vs_controllers/vs_controllers/weights/cns_table.pt")
    hidden_dim: int = describe("H (each fusion pathway has H/2); 128 to warm-start from CNS.", default=128)
    residual: bool = describe(
        "Keep each node's own coordinate and depth embeddings beside the fused ones, gated per channel from 0 "
        "(DepthPCNet's residual; not in the paper). An init_checkpoint without it loads with the gates at 0.",
        default=False)
    wall_minutes: float = describe(
        "Wall-clock cap of the run (minutes, 0 = none), counted over resumes: at the first update past it the "
        "run writes last.pt and final.pt and ends, without a closing check.", default=0.0)

    def __post_init__(self) -> None:
        check_range("hidden_dim", self.hidden_dim, 2)
        check_range("wall_minutes", self.wall_minutes, 0.0)


@dataclass(frozen=True)
class RunConfig:
    """Every section of a Depth-PC training file."""

    train: TrainConfig
    env: EnvConfig
    graph: GraphConfig
    depth_env: DepthEnvConfig
    depth_error: DepthErrorConfig
    depth_pc: DepthPCTrainConfig

    def __post_init__(self) -> None:
        if self.train.checkpoint_every % self.train.tbptt:
            raise ConfigError(f"train.checkpoint_every={self.train.checkpoint_every} must be a multiple of "
                              f"train.tbptt={self.train.tbptt} (the journal is written between updates)")
        if self.train.eval_every % self.train.tbptt:
            raise ConfigError(f"train.eval_every={self.train.eval_every} must be a multiple of train.tbptt")

    def make_env(self, cfg: EnvConfig, batch_size: int, seed: int) -> DepthPCEnvBatch:
        """Environments of this run with the env settings ``cfg`` (the curriculum's or the check's)."""
        return DepthPCEnvBatch(cfg, self.depth_env, self.depth_error, batch_size, seed, self.graph)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)}


def load_config(path: str | Path | None) -> RunConfig:
    """Read the ``train`` / ``env`` / ``graph`` / ``depth_env`` / ``depth_error`` / ``depth_pc`` sections
    (missing sections: defaults; unknown sections or keys: ConfigError listing the valid ones)."""
    data = load_yaml(path) if path else {}
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown sections {unknown} in {path}; valid sections are {list(_SECTIONS)}")
    return RunConfig(**{name: from_mapping(cls, data.get(name)) for name, cls in _SECTIONS.items()})


_SECTIONS: dict[str, Any] = {"train": TrainConfig, "env": EnvConfig, "graph": GraphConfig,
                             "depth_env": DepthEnvConfig, "depth_error": DepthErrorConfig,
                             "depth_pc": DepthPCTrainConfig}


def _new_net(rc: RunConfig) -> tuple[DepthPCNet, list[str]]:
    torch.manual_seed(rc.train.seed)
    net = DepthPCNet(hidden_dim=rc.depth_pc.hidden_dim, attention_scope=rc.depth_env.attention_scope,
                     residual=rc.depth_pc.residual, depth_norm=rc.depth_env.depth_norm)
    copied: list[str] = []
    if rc.train.init_checkpoint:
        init = DepthPCNet.from_checkpoint(rc.train.init_checkpoint)
        if init.residual == net.residual:
            net.load_state_dict(init.state_dict())
        elif net.residual:
            net.load_without_residual(init.state_dict())
        else:
            raise ConfigError(f"train.init_checkpoint {rc.train.init_checkpoint} has the residual gates; "
                              "set depth_pc.residual: true")
    elif rc.depth_pc.warm_start:
        copied = net.warm_start(GraphVS.from_checkpoint(rc.depth_pc.warm_start).state_dict())
    return net.train(), copied


def _truncate_log(path: Path, iteration: int) -> None:
    """Drop log rows written after the journal's iteration (a run killed between journal writes)."""
    rows = list(csv.reader(path.open()))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= iteration]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


def train(rc: RunConfig, out: Path, resume: bool = False, progress_bar: bool = True,
          stop_after: int | None = None) -> Path:
    """Run (or continue) a training run; returns the path of the best checkpoint (or the last weights).

    Args:
        rc: the run's settings.
        out: output folder.
        resume: continue from ``out/last.pt`` when it exists.
        progress_bar: show tqdm's bar.
        stop_after: end (journal written) at this iteration without changing the schedule (tests).
    """
    tc = rc.train
    torch.set_num_threads(tc.threads)
    out.mkdir(parents=True, exist_ok=True)
    net, copied = _new_net(rc)
    opt = _optimizer(net, tc)
    B = tc.batch_size
    last, log_path = out / "last.pt", out / "log.csv"
    if resume and last.is_file():
        state = torch.load(last, weights_only=False)  # our own journal: it holds the pickled environments
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        it, best, wall0 = state["iteration"], state["best"], state["wall_s"]
        env, hidden, expert = state["env"], state["hidden"], state["expert"]
        torch.set_rng_state(state["torch_rng"])
        _truncate_log(log_path, it)
    else:
        it, best, wall0 = 0, None, 0.0
        env = rc.make_env(_env_cfg_at(rc.env, tc, 0.0), B, int(np.random.default_rng(tc.seed).integers(2**31)))
        hidden = [None] * B
        expert = np.arange(B) < _n_expert(tc)
        log_path.write_text(",".join(LOG_FIELDS) + "\n")
        (out / "eval.jsonl").write_text("")
    (out / "config.yaml").write_text(yaml.safe_dump(rc.as_dict(), sort_keys=False))
    meta = {"train": dataclasses.asdict(tc), "warm_start": rc.depth_pc.warm_start, "warm_started_keys": len(copied)}
    cap_s = rc.depth_pc.wall_minutes * 60.0 if rc.depth_pc.wall_minutes > 0 else float("inf")
    with log_path.open("a", newline="") as log_file:
        loop = TrainLoop(tc, rc.env, net, opt, env, hidden, expert, out, log_file,
                         check=lambda: evaluate(net, dataclasses.replace(rc.env, noise=True), tc.eval_episodes,
                                                tc.eval_steps, make_env=rc.make_env, collate_fn=collate_depth),
                         check_meta=lambda res, _for_best: {"eval": res, **meta},
                         journal_net=lambda _it: net.state_dict(), journal_envs=True, collate_fn=collate_depth,
                         iteration=it, best=best, wall0=wall0, cap_s=cap_s)
        loop.run(min(tc.iterations, stop_after) if stop_after is not None else tc.iterations, progress_bar)
    if loop.iteration >= tc.iterations or loop.capped:
        torch.save(net.checkpoint(iteration=loop.iteration, wall_s=loop.wall_s(), capped=loop.capped, **meta),
                   out / "final.pt")
    for path in (out / "best.pt", out / "final.pt"):
        if path.is_file():
            return path
    return last


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="YAML with train / env / graph / depth_env / depth_error / depth_pc")
    p.add_argument("--out", default=None, help="output folder; default runs/<config name> (runs/depthpc without)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--wall-minutes", type=float, default=None, help="override depth_pc.wall_minutes")
    p.add_argument("--threads", type=int, default=None, help="override train.threads")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    rc = load_config(args.config)
    if args.wall_minutes is not None:
        rc = dataclasses.replace(rc, depth_pc=dataclasses.replace(rc.depth_pc, wall_minutes=args.wall_minutes))
    if args.threads is not None:
        rc = dataclasses.replace(rc, train=dataclasses.replace(rc.train, threads=args.threads))
    out = Path(args.out) if args.out else Path("runs") / (Path(args.config).stem if args.config else "depthpc")
    path = train(rc, out, resume=args.resume, progress_bar=not args.no_progress)
    print(f"done: {path}")


if __name__ == "__main__":
    main()
