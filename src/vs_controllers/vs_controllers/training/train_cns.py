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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

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

__all__ = ["LOG_FIELDS", "CNSTrainingConfig", "TrainConfig", "TrainLoop", "cns_loss", "load_config", "reset_finished",
           "rollout_step", "train", "update"]

#: The columns of a run's ``log.csv`` (CNS's and Depth-PC's).
LOG_FIELDS = ["iteration", "wall_s", "loss", "dir_loss", "norm_loss", "lr", "teacher_p", "curriculum",
              "median_te_mm", "median_re_deg", "s_per_it"]


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


def _n_expert(tc: TrainConfig) -> int:
    """How many environments (the first ones) the expert always drives."""
    return max(1, int(tc.expert_envs * tc.batch_size)) if tc.expert_envs > 0 else 0


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


@dataclass
class TrainLoop:
    """The iterations of a run, shared by the CNS and the Depth-PC trainer; what differs comes in as callbacks.

    One iteration: the learning rate of the schedule, a :func:`rollout_step`, every ``tc.tbptt`` iterations
    an :func:`update` (recurrent states detached, then the wall cap looked at), :func:`reset_finished` with
    the curriculum's settings; every ``tc.log_every`` iterations a ``log.csv`` row (:data:`LOG_FIELDS`);
    every ``tc.eval_every`` and at the last iteration a closed-loop check (a line of ``eval.jsonl``,
    ``ckpt_<it>.pt``, and ``best.pt`` when its score ``(success rate, −median deg − median mm / 10)`` is the
    best yet); every ``tc.checkpoint_every``, at the end and at the cap the journal ``last.pt``.

    Args:
        tc: the schedule; env_cfg: the environments' settings, which the curriculum widens to.
        net, opt: the policy and its optimiser.
        env, hidden, expert: the environments, their recurrent states, the (B,) expert-driven flags.
        out: output folder; log_file: ``log.csv``, open for appending rows.
        check: the closed-loop check of ``net`` (a dict as :func:`~vs_controllers.training.eval_cns.evaluate`'s).
        check_meta: ``(check result, for best.pt) →`` the metadata of the checkpoint saved at a check.
        journal_net: ``iteration →`` the journal's ``net`` entry.
        journal_envs: the journal also holds ``env``, ``hidden``, ``expert`` (an exact resume).
        journal_checks: the journal is also written after each check.
        collate_fn: batches the environments' graphs for ``net``.
        iteration, best, wall0: the iteration, best score and wall seconds so far (a resume's).
        cap_s: wall-time cap (seconds, over resumes).
    """

    tc: TrainConfig
    env_cfg: EnvConfig
    net: GraphVS
    opt: torch.optim.Optimizer
    env: PointEnvBatch
    hidden: list[torch.Tensor | None]
    expert: np.ndarray
    out: Path
    log_file: TextIO
    check: Callable[[], dict[str, Any]]
    check_meta: Callable[[dict[str, Any], bool], dict[str, Any]]
    journal_net: Callable[[int], Any]
    journal_envs: bool = False
    journal_checks: bool = False
    collate_fn: Callable[[list[Any]], GraphBatch] = collate
    iteration: int = 0
    best: list[float] | None = None
    wall0: float = 0.0
    cap_s: float = math.inf
    capped: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._n_expert = _n_expert(self.tc)
        self._log = csv.writer(self.log_file)
        self._acc = torch.zeros(())
        self._window: dict[str, list[float]] = {"loss": [], "dir": [], "norm": []}
        self._t_start = time.perf_counter() - self.wall0
        self._t_window = time.perf_counter()

    def wall_s(self) -> float:
        """Wall seconds of the run so far (over resumes)."""
        return time.perf_counter() - self._t_start

    def run(self, end: int, progress_bar: bool = True) -> None:
        """Iterate until ``end`` or the wall cap (:attr:`capped`).

        Args:
            end: the iteration to stop at (at most ``tc.iterations``).
            progress_bar: show tqdm's bar.
        """
        tc = self.tc
        bar = tqdm(total=tc.iterations, initial=self.iteration, disable=not progress_bar, mininterval=30,
                   smoothing=0.05)
        while self.iteration < end and not self.capped:
            self._step(bar)
            it = self.iteration
            # A capped run skips its closing check: on a shared CPU a check can take as long as
            # hundreds of iterations, and the cap is a deadline. best.pt keeps the last completed check.
            checked = tc.eval_every > 0 and (it % tc.eval_every == 0 or it == tc.iterations)
            if checked:
                self._check()
            if it % tc.checkpoint_every == 0 or it == end or self.capped or (checked and self.journal_checks):
                self._journal()
        bar.close()

    def _step(self, bar: tqdm) -> None:
        """One iteration: roll out, learn every ``tbptt`` iterations, restart finished episodes, log."""
        tc, it = self.tc, self.iteration
        progress = it / tc.iterations
        teacher_p = _lerp(tc.teacher_start, tc.teacher_end, progress / tc.teacher_decay if tc.teacher_decay else 1)
        for group in self.opt.param_groups:
            group["lr"] = _lr_at(tc, it)
        dir_loss, norm_loss, self.hidden = rollout_step(self.net, self.env, self.hidden, self.expert,
                                                        tc.norm_weight, self.collate_fn)
        self._acc = self._acc + dir_loss + norm_loss
        self._window["dir"].append(dir_loss.item())
        self._window["norm"].append(norm_loss.item())
        self._window["loss"].append(self._window["dir"][-1] + self._window["norm"][-1])
        it = self.iteration = it + 1
        if it % tc.tbptt == 0:
            update(self.net, self.opt, self._acc, tc.grad_clip)
            self._acc = torch.zeros(())
            self.hidden = [None if h is None else h.detach() for h in self.hidden]
            self.capped = self.wall_s() > self.cap_s
        reset_finished(self.env, _env_cfg_at(self.env_cfg, tc, it / tc.iterations), self.hidden, self.expert,
                       self._n_expert, teacher_p)
        bar.update(1)
        if it % tc.log_every == 0:
            self._log_row(bar, teacher_p, min(1.0, progress / tc.curriculum if tc.curriculum else 1))

    def _log_row(self, bar: tqdm, teacher_p: float, curriculum: float) -> None:
        """Write the means of the iterations since the last row to ``log.csv``, and start a new window."""
        w = self._window
        te, re = self.env.errors()
        now = time.perf_counter()
        self._log.writerow([self.iteration, f"{now - self._t_start:.1f}", f"{np.mean(w['loss']):.5f}",
                            f"{np.mean(w['dir']):.5f}", f"{np.mean(w['norm']):.5f}",
                            f"{_lr_at(self.tc, self.iteration):.2e}", f"{teacher_p:.3f}", f"{curriculum:.3f}",
                            f"{np.median(te) * 1e3:.1f}", f"{np.median(re):.2f}",
                            f"{(now - self._t_window) / len(w['loss']):.3f}"])
        self.log_file.flush()
        bar.set_postfix(loss=f"{np.mean(w['loss']):.4f}")
        self._window = {k: [] for k in w}
        self._t_window = now

    def _check(self) -> None:
        """A closed-loop check: its line in ``eval.jsonl``, ``ckpt_<it>.pt``, and ``best.pt`` if the best yet."""
        res = self.check()
        res.update(iteration=self.iteration, wall_s=self.wall_s())
        with (self.out / "eval.jsonl").open("a") as f:
            f.write(json.dumps(res) + "\n")
        score = (res["success_rate"], -res["median_re_deg"] - res["median_te_mm"] / 10.0)
        if self.best is None or score > tuple(self.best):
            self.best = list(score)
            torch.save(self.net.checkpoint(iteration=self.iteration, **self.check_meta(res, True)),
                       self.out / "best.pt")
        torch.save(self.net.checkpoint(iteration=self.iteration, **self.check_meta(res, False)),
                   self.out / f"ckpt_{self.iteration:06d}.pt")

    def _journal(self) -> None:
        """Write the journal ``last.pt``, the resume point."""
        state = {"net": self.journal_net(self.iteration), "optimizer": self.opt.state_dict(),
                 "iteration": self.iteration, "best": self.best, "wall_s": self.wall_s(),
                 "torch_rng": torch.get_rng_state()}
        if self.journal_envs:
            state.update(env=self.env, hidden=self.hidden, expert=self.expert)
        tmp = self.out / "last.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.out / "last.pt")  # atomic: a kill mid-save never corrupts the resume point


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
    log_path = out / "log.csv"
    new_log = not log_path.is_file() or not resume
    with log_path.open("w" if new_log else "a", newline="") as log_file:
        if new_log:
            csv.writer(log_file).writerow(LOG_FIELDS)
        TrainLoop(tc, env_cfg, net, opt, env, [None] * B, np.arange(B) < _n_expert(tc), out, log_file,
                  check=lambda: evaluate(net, dataclasses.replace(env_cfg, noise=True), tc.eval_episodes,
                                         tc.eval_steps),
                  check_meta=lambda res, for_best: ({"wall_s": res["wall_s"], "eval": res,
                                                     "train": dataclasses.asdict(tc)} if for_best else {"eval": res}),
                  journal_net=lambda i: net.checkpoint(iteration=i), journal_checks=True,
                  iteration=it, best=best, wall0=wall0).run(tc.iterations, progress_bar)
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
