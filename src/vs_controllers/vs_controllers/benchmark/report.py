"""Benchmark outputs: results.json, results.md (README-ready table) and plots (matplotlib, Agg)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MD_HEADER", "markdown_row", "markdown_table", "write_plots", "write_results"]

MD_HEADER = ("| pipeline | env | section | N | SR (CNS) [95% CI] | SR (RE<3°, TE<3cm) | TS (steps) | RE (°) "
             "| TE (mm) | observer ms | controller ms | total ms |\n"
             "|---|---|---|---|---|---|---|---|---|---|---|---|")


def _pm(m: float, s: float, nd: int) -> str:
    return "–" if not math.isfinite(m) else f"{m:.{nd}f} ± {s:.{nd}f}"


def markdown_row(pipeline: str, env: str, section: str, s: dict[str, Any]) -> str:
    """One table row from a :func:`~vs_controllers.benchmark.metrics.summarise` dict."""
    lo, hi = s["sr_ci95"]
    return (f"| {pipeline} | {env} | {section} | {s['n']} | {100 * s['sr']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"| {100 * s['sr_strict']:.1f} % | {_pm(s['ts'], s['ts_std'], 1)} | {_pm(s['re_deg'], s['re_deg_std'], 2)} "
            f"| {_pm(s['te_mm'], s['te_mm_std'], 2)} | {s['observer_ms']:.1f} | {s['controller_ms']:.2f} "
            f"| {s['total_ms']:.1f} |")


def markdown_table(rows: Sequence[str]) -> str:
    return MD_HEADER + "\n" + "\n".join(rows) + "\n"


def _json_safe(obj: Any) -> Any:
    """NaN/inf → None and numpy scalars → Python, so the file is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_results(out_dir: Path, meta: dict[str, Any], summaries: list[dict[str, Any]],
                  records: list[dict[str, Any]], md_rows: list[str]) -> tuple[Path, Path]:
    """Write ``results.json`` (meta, summaries, per-episode records) and ``results.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "results.json"
    js.write_text(json.dumps(_json_safe({"meta": meta, "summaries": summaries, "episodes": records}), indent=1))
    md = out_dir / "results.md"
    md.write_text(markdown_table(md_rows))
    return js, md


def write_plots(out_dir: Path, records: list[dict[str, Any]], title: str = "", max_trajectories: int = 6) -> list[Path]:
    """Error curves, final-error scatter + histogram, and a few camera trajectories (PNG files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    colour = lambda r: "tab:green" if r["success_cns"] else "tab:red"  # noqa: E731

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for r in records:
        for ax, key in zip(axes, ("error_curve", "te_curve", "re_curve")):
            y = np.asarray(r[key], dtype=float)
            if key == "te_curve":
                y = 1e3 * y
            ax.semilogy(np.arange(len(y)), np.maximum(y, 1e-9), color=colour(r), alpha=0.4, lw=0.8)
    for ax, lab in zip(axes, ("feature error (normalised)", "TE (mm)", "RE (deg)")):
        ax.set_xlabel("step")
        ax.set_ylabel(lab)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"{title} per-episode errors (green: success, red: failure)")
    fig.tight_layout()
    paths.append(out_dir / "error_curves.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    te = np.array([1e3 * r["te_m"] for r in records])
    re = np.array([r["re_deg"] for r in records])
    ax1.scatter(np.maximum(te, 1e-3), np.maximum(re, 1e-4), c=[colour(r) for r in records], s=14)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.axvline(30.0, ls="--", color="k", lw=0.8)
    ax1.axhline(3.0, ls="--", color="k", lw=0.8)
    ax1.set_xlabel("final TE (mm)")
    ax1.set_ylabel("final RE (deg)")
    ax1.set_title("final errors (dashed: strict success box)")
    bins = np.logspace(-3, 3, 31)
    ax2.hist(np.clip(te, 1e-3, 1e3), bins=bins, alpha=0.6, label="TE (mm)")
    ax2.hist(np.clip(re, 1e-3, 1e3), bins=bins, alpha=0.6, label="RE (deg)")
    ax2.set_xscale("log")
    ax2.legend()
    ax2.set_title("final error histogram")
    fig.suptitle(title)
    fig.tight_layout()
    paths.append(out_dir / "final_errors.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    for r in records[:max_trajectories]:
        p = np.asarray(r["trajectory"], dtype=float)
        if len(p) == 0:
            continue
        ax.plot(p[:, 0], p[:, 1], p[:, 2], color=colour(r), lw=1)
        ax.scatter(*p[0], color="k", s=10)
        ax.scatter(*p[-1], color=colour(r), s=14, marker="x")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(f"{title} camera trajectories (first {max_trajectories})")
    fig.tight_layout()
    paths.append(out_dir / "trajectories.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
