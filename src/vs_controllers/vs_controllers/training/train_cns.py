"""Train the CNS policy on synthetic points on a CPU (paper §IV, made cheap; see weights/cns.md).

    python -m vs_controllers.training.train_cns --config config/training/cns_table.yaml [--out DIR] [--resume]

Each file in ``config/training/`` is named after the checkpoint it produces (``cns_table.yaml`` →
``weights/cns_table.pt``); ``--out`` defaults to ``runs/<that name>``.

One iteration = one time step of B parallel environments. The policy drives its own roll-outs
(DAgger-like: its action is applied, PBVS labels every visited state); a few environments follow the
expert. Loss (paper Eq. 4) is summed over ``tbptt`` steps, then one AdamW step is taken and the
recurrent state detached (truncated BPTT, as the authors' short-sequence stage). A curriculum widens
the initial-pose distribution over the first part of the run; the learning rate follows a cosine.

Outputs in ``--out``: ``last.pt`` (model + optimiser + counters, every ``checkpoint_every``
iterations, for ``--resume``), ``best.pt`` (best closed-loop evaluation), ``log.csv`` (training
losses), ``eval.jsonl`` (closed-loop evaluations), ``config.yaml`` (the resolved config).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm
from vs_common.core.config import check_range, describe, from_mapping

from vs_controllers.core.cns.graph import GraphBatch, GraphConfig, collate
from vs_controllers.core.cns.network import GraphVS, T_inv, postprocess
from vs_controllers.core.pipelines import load_pipeline_file
from vs_controllers.training.eval_cns import evaluate
from vs_controllers.training.point_env import EnvConfig, PointEnvBatch

__all__ = ["CNSTrainingConfig", "TrainConfig", "cns_loss", "load_config", "reset_finished", "rollout_step", "train",
           "update"]


@dataclass(frozen=True)
class TrainConfig:
    """Training schedule (YAML section ``train``)."""

    seed: int = describe("Seed of scenes, noise and initial weights.", default=0)
    init_checkpoint: str = describe(
        "Start from these weights (a fine-tuning stage); fresh optimiser and schedule. Empty: random init.",
        default="")
    iterations: int = describe("Total iterations (one environment time step each).", default=60000)
    batch_size: int = describe("Parallel environments B.", default=32)
    tbptt: int = describe("Steps per optimiser update (truncated BPTT window).", default=8)
    lr: float = describe("Initial AdamW learning rate.", default=1e-3)
    lr_min: float = describe("Final learning rate of the cosine schedule.", default=1e-5)
    warmup_iterations: int = describe("Linear learning-rate warm-up (iterations).", default=400)
    weight_decay: float = describe("AdamW weight decay of weight matrices (not biases or norms).", default=1e-4)
    grad_clip: float = describe("Gradient-norm clip.", default=10.0)
    norm_weight: float = describe("Weight of the norm loss (authors' code 1.0; paper text 0.1).", default=1.0)
    expert_envs: float = describe("Fraction of environments always driven by the PBVS expert.", default=0.1)
    teacher_start: float = describe("Probability an episode is expert-driven at the start.", default=0.5)
    teacher_end: float = describe("... after the teacher decay.", default=0.0)
    teacher_decay: float = describe("Fraction of the run over which the teacher probability decays.", default=0.2)
    curriculum: float = describe("Fraction of the run over which initial poses widen to the full range.",
                                 default=0.4)
    start_azimuth_deg: float = describe("Initial azimuth offset range at the start of the curriculum.", default=45.0)
    start_perturb_rz_deg: float = describe("Initial roll perturbation at the start of the curriculum.", default=20.0)
    start_elev_min_deg: float = describe("Lowest initial elevation at the start of the curriculum.", default=60.0)
    checkpoint_every: int = describe("Save last.pt every this many iterations.", default=500)
    eval_every: int = describe("Closed-loop evaluation every this many iterations (0: never).", default=2500)
    eval_episodes: int = describe("Scenes per evaluation.", default=32)
    eval_steps: int = describe("Steps per evaluation episode.", default=300)
    log_every: int = describe("Write a log.csv row every this many iterations.", default=50)
    threads: int = describe("torch CPU threads.", default=1)

    def __post_init__(self) -> None:
        check_range("iterations", self.iterations, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("tbptt", self.tbptt, 1)
        check_range("lr", self.lr, 0.0, lo_open=True)
        for name in ("expert_envs", "teacher_start", "teacher_end", "teacher_decay", "curriculum"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("checkpoint_every", self.checkpoint_every, 1)


def cns_loss(v_dir: torch.Tensor, l: torch.Tensor, vel_si: torch.Tensor, norm_weight: float = 1.0,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 4: ``1 − cos(v_dir, v_dd)`` and ``MSE(l, T⁻¹(‖v_dd‖))``.

    Args:
        v_dir: (B, 6) predicted direction; l: (B, 1) norm logit; vel_si: (B, 6) distance-decoupled
            expert twist ``[v/d, ω]``.

    Returns:
        (direction loss, norm loss), scalars; the total is ``dir + norm_weight · norm``.
    """
    dir_loss = (1.0 - torch.nn.functional.cosine_similarity(v_dir, vel_si, dim=-1)).mean()
    norm_loss = torch.nn.functional.mse_loss(l.squeeze(-1), T_inv(vel_si.norm(dim=-1)))
    return dir_loss, norm_weight * norm_loss


def _lerp(a: float, b: float, s: float) -> float:
    return a + (b - a) * min(max(s, 0.0), 1.0)


def _env_cfg_at(base: EnvConfig, tc: TrainConfig, progress: float) -> EnvConfig:
    """Curriculum: initial poses widen linearly from the start values to ``base`` over ``tc.curriculum``."""
    s = progress / tc.curriculum if tc.curriculum > 0 else 1.0
    rz, ry, rx = base.init_perturb_deg
    return dataclasses.replace(
        base,
        init_azimuth_deg=_lerp(tc.start_azimuth_deg, base.init_azimuth_deg, s),
        init_perturb_deg=(_lerp(tc.start_perturb_rz_deg, rz, s), ry, rx),
        init_elev_deg=(_lerp(tc.start_elev_min_deg, base.init_elev_deg[0], s), base.init_elev_deg[1]))


def _lr_at(tc: TrainConfig, it: int) -> float:
    if it < tc.warmup_iterations:
        return tc.lr * (it + 1) / tc.warmup_iterations
    s = (it - tc.warmup_iterations) / max(1, tc.iterations - tc.warmup_iterations)
    return tc.lr_min + 0.5 * (tc.lr - tc.lr_min) * (1 + math.cos(math.pi * min(s, 1.0)))


def _optimizer(net: GraphVS, tc: TrainConfig) -> torch.optim.AdamW:
    # As the authors: no decay on biases and GraphNorm weight / mean_scale (all 1-D parameters).
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr)


@dataclass(frozen=True)
class CNSTrainingConfig:
    """A CNS training config file (``config/training/<stem>.yaml``): one section per nested config."""

    train: TrainConfig = describe("The training schedule.", default_factory=TrainConfig)
    env: EnvConfig = describe("The synthetic-point environment.", default_factory=EnvConfig)
    graph: GraphConfig = describe("Goal clustering of the correspondence graph: the controller's own class "
                                  "(CNSConfig.graph), so training and run time cluster alike.",
                                  default_factory=GraphConfig)


def rollout_step(net: GraphVS, env: PointEnvBatch, hidden: list[torch.Tensor | None], expert: np.ndarray,
                 norm_weight: float, collate_fn: Callable[[list[Any]], GraphBatch] = collate,
                 ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]]:
    """One time step of the B environments under the policy (DAgger-like): observe, predict, label every
    state with the PBVS expert, act (expert-driven and abnormal environments take the expert's twist).

    Args:
        net: the policy (GraphVS or a subclass; ``collate_fn`` batches its environments' graphs).
        env: the environments; hidden: (C_b, H) state per environment (None: zeros); expert: (B,) bool.
        norm_weight: weight of Eq. 4's norm loss.

    Returns:
        direction and norm losses (scalars with gradients), the new hidden state per environment.
    """
    graphs = env.observe()
    batch = collate_fn(graphs)
    h0 = torch.cat([h if h is not None else net.init_hidden(g.num_clusters) for h, g in zip(hidden, graphs)])
    v_dir, l, h1 = net(batch, h0)
    gt = env.expert()
    d = env.dists()
    vel_si = torch.from_numpy(np.concatenate([gt[:, :3] / d[:, None], gt[:, 3:]], axis=1)).float()
    dir_loss, norm_loss = cns_loss(v_dir, l, vel_si, norm_weight)
    with torch.no_grad():
        action = postprocess(v_dir, l, torch.from_numpy(d).float()).double().numpy()
    use_gt = expert | env.abnormal()
    action[use_gt] = gt[use_gt]
    env.step(action)
    return dir_loss, norm_loss, list(torch.split(h1, [g.num_clusters for g in graphs]))


def update(net: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float) -> None:
    """One optimiser step on the summed loss of a truncated-BPTT window (gradient-norm clip)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    opt.step()


def reset_finished(env: PointEnvBatch, env_cfg: EnvConfig, hidden: list[torch.Tensor | None],
                   expert: np.ndarray, n_expert: int, teacher_p: float) -> None:
    """Start new episodes where one ended (settings ``env_cfg``, the curriculum's now), in place:
    their hidden state becomes None, and each is expert-driven with probability ``teacher_p``
    (always for the first ``n_expert`` environments)."""
    done = env.done()
    if done.any():
        env.cfg = env_cfg
        for b in np.flatnonzero(done):
            env.reset_env(int(b))
            hidden[b] = None
            expert[b] = b < n_expert or env.rng.uniform() < teacher_p


def load_config(path: str | Path | None) -> tuple[TrainConfig, EnvConfig, GraphConfig]:
    """Read ``train`` / ``env`` / ``graph`` sections of a YAML file (missing sections: defaults) through
    :class:`CNSTrainingConfig`; unknown sections and keys fail, naming the valid ones.

    A file holds only what differs from the defaults; ``extends: <file>`` (next to it) makes it an overlay
    of another training file whose keys it replaces one by one, read as a pipeline file's
    (:func:`~vs_controllers.core.pipelines.load_pipeline_file`)."""
    cfg = from_mapping(CNSTrainingConfig, load_pipeline_file(path) if path else {})
    return cfg.train, cfg.env, cfg.graph


def train(tc: TrainConfig, env_cfg: EnvConfig, graph_cfg: GraphConfig, out: Path, resume: bool = False,
          progress_bar: bool = True) -> Path:
    """Run (or continue) a training run; returns the path of the best checkpoint (or last.pt)."""
    torch.set_num_threads(tc.threads)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tc.seed)
    net = GraphVS()
    if tc.init_checkpoint:
        net.load_state_dict(GraphVS.from_checkpoint(tc.init_checkpoint).state_dict())
    net.train()
    opt = _optimizer(net, tc)
    it, best, wall0 = 0, None, 0.0
    last = out / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, weights_only=False)
        net.load_state_dict(state["net"]["state_dict"])
        opt.load_state_dict(state["optimizer"])
        it, best, wall0 = state["iteration"], state["best"], state["wall_s"]
        torch.set_rng_state(state["torch_rng"])
    (out / "config.yaml").write_text(yaml.safe_dump(
        {"train": dataclasses.asdict(tc), "env": dataclasses.asdict(env_cfg), "graph": dataclasses.asdict(graph_cfg)},
        sort_keys=False))
    # A resumed run draws fresh episodes from a seed tied to the iteration, so it stays reproducible.
    rng = np.random.default_rng([tc.seed, it])
    env = PointEnvBatch(_env_cfg_at(env_cfg, tc, it / tc.iterations), tc.batch_size, seed=int(rng.integers(2**31)),
                        graph_cfg=graph_cfg)
    B = tc.batch_size
    n_expert = max(1, int(tc.expert_envs * B)) if tc.expert_envs > 0 else 0
    expert = np.arange(B) < n_expert
    hidden: list[torch.Tensor | None] = [None] * B
    log_path = out / "log.csv"
    new_log = not log_path.is_file() or not resume
    log_file = log_path.open("w" if new_log else "a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(["iteration", "wall_s", "loss", "dir_loss", "norm_loss", "lr", "teacher_p", "curriculum",
                      "median_te_mm", "median_re_deg"])
    acc = torch.zeros(())
    window = {"loss": [], "dir": [], "norm": []}
    t_start = time.perf_counter() - wall0
    net.train()
    bar = tqdm(total=tc.iterations, initial=it, disable=not progress_bar, mininterval=30, smoothing=0.05)
    while it < tc.iterations:
        progress = it / tc.iterations
        teacher_p = _lerp(tc.teacher_start, tc.teacher_end, progress / tc.teacher_decay if tc.teacher_decay else 1)
        for group in opt.param_groups:
            group["lr"] = _lr_at(tc, it)
        dir_loss, norm_loss, hidden = rollout_step(net, env, hidden, expert, tc.norm_weight)
        acc = acc + dir_loss + norm_loss
        window["dir"].append(dir_loss.item())
        window["norm"].append(norm_loss.item())
        window["loss"].append(window["dir"][-1] + window["norm"][-1])
        it += 1
        if it % tc.tbptt == 0:
            update(net, opt, acc, tc.grad_clip)
            acc = torch.zeros(())
            hidden = [None if h is None else h.detach() for h in hidden]
        reset_finished(env, _env_cfg_at(env_cfg, tc, it / tc.iterations), hidden, expert, n_expert, teacher_p)
        bar.update(1)
        if it % tc.log_every == 0:
            te, re = env.errors()
            log.writerow([it, f"{time.perf_counter() - t_start:.1f}", f"{np.mean(window['loss']):.5f}",
                          f"{np.mean(window['dir']):.5f}", f"{np.mean(window['norm']):.5f}", f"{_lr_at(tc, it):.2e}",
                          f"{teacher_p:.3f}", f"{min(1.0, progress / tc.curriculum if tc.curriculum else 1):.3f}",
                          f"{np.median(te) * 1e3:.1f}", f"{np.median(re):.2f}"])
            log_file.flush()
            bar.set_postfix(loss=f"{np.mean(window['loss']):.4f}")
            window = {k: [] for k in window}
        evaluated = tc.eval_every > 0 and (it % tc.eval_every == 0 or it == tc.iterations)
        if evaluated:
            res = evaluate(net, dataclasses.replace(env_cfg, noise=True), tc.eval_episodes, tc.eval_steps)
            res.update(iteration=it, wall_s=time.perf_counter() - t_start)
            with (out / "eval.jsonl").open("a") as f:
                f.write(json.dumps(res) + "\n")
            score = (res["success_rate"], -res["median_re_deg"] - res["median_te_mm"] / 10.0)
            if best is None or score > tuple(best):
                best = list(score)
                torch.save(net.checkpoint(iteration=it, wall_s=res["wall_s"], eval=res,
                                          train=dataclasses.asdict(tc)), out / "best.pt")
            torch.save(net.checkpoint(iteration=it, eval=res), out / f"ckpt_{it:06d}.pt")
        if it % tc.checkpoint_every == 0 or it == tc.iterations or evaluated:
            tmp = out / "last.pt.tmp"
            torch.save({"net": net.checkpoint(iteration=it), "optimizer": opt.state_dict(), "iteration": it,
                        "best": best, "wall_s": time.perf_counter() - t_start,
                        "torch_rng": torch.get_rng_state()}, tmp)
            tmp.replace(last)  # atomic: a kill mid-save never corrupts the resume point
    bar.close()
    log_file.close()
    return out / "best.pt" if (out / "best.pt").is_file() else last


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="YAML with train / env / graph sections")
    p.add_argument("--out", default=None,
                   help="output folder (checkpoints, logs); default runs/<config name>, or runs/cns without --config")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--iterations", type=int, default=None, help="override train.iterations")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    tc, env_cfg, graph_cfg = load_config(args.config)
    if args.iterations is not None:
        tc = dataclasses.replace(tc, iterations=args.iterations)
    out = Path(args.out) if args.out else Path("runs") / (Path(args.config).stem if args.config else "cns")
    path = train(tc, env_cfg, graph_cfg, out, resume=args.resume, progress_bar=not args.no_progress)
    print(f"done: {path}")


if __name__ == "__main__":
    main()
