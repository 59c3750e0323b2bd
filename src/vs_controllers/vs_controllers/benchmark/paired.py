"""Paired comparison of two benchmark runs on the scenes they share.

Two pipelines (or two settings of one) run on the same scenes are compared scene by scene, which
separates them far better than two independent success rates do:

- success (CNS criterion): the scenes only A solves and only B solves, with McNemar's exact test
  (a two-sided binomial test on the discordant scenes, ``scipy.stats.binomtest``);
- TS, TE, RE on the scenes both solve: each run's mean, the median of the per-scene differences
  A − B, and the Wilcoxon signed-rank test of those differences (``scipy.stats.wilcoxon``).

Inputs are episode journals (``<out>/episodes.jsonl``, as the benchmark writes them, or the gzipped
copies in ``docs/results/``); a scene journaled more than once counts with its last record.

Example:
    python -m vs_controllers.benchmark.paired bench_results/depth_pc-render-sgbm/episodes.jsonl \\
        bench_results/cns-render/episodes.jsonl --names depth_pc,cns
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from vs_common.core.errors import InputError

__all__ = ["compare", "load_journal", "main", "markdown"]

#: The per-scene quantities compared on jointly solved scenes: (key, record field, scale, unit).
METRICS = (("ts", "steps", 1.0, "steps"), ("te_mm", "te_m", 1e3, "mm"), ("re_deg", "re_deg", 1.0, "°"))


def load_journal(path: str | Path) -> dict[str, dict[str, Any]]:
    """Scene id → episode record of a journal (``.jsonl`` or ``.jsonl.gz``; the last record of a scene wins).

    Raises:
        InputError: the file is missing, or a line is not a journal entry.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no journal at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[str, dict[str, Any]] = {}
    with opener(path, "rt") as f:
        for k, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                rec = entry.get("record", entry)
                out[str(rec["scene_id"])] = rec
            except (json.JSONDecodeError, AttributeError, KeyError) as err:
                raise InputError(f"{path}:{k} is not a journal entry ({err})") from err
    return out


def compare(a: Mapping[str, Mapping[str, Any]], b: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Scene-by-scene comparison of runs ``a`` and ``b`` (scene id → record) on their common scenes.

    Returns:
        {"n", "sr_a", "sr_b", "only_a", "only_b" (scene ids), "mcnemar_p", "both" (count of jointly solved
        scenes), and per metric ``key``: "<key>_a", "<key>_b" (means over jointly solved scenes),
        "<key>_median_diff" (A − B), "<key>_p" (Wilcoxon; NaN with fewer than 2 non-zero differences)}.

    Raises:
        InputError: the runs share no scene.
    """
    common = sorted(set(a) & set(b))
    if not common:
        raise InputError("the two runs share no scene")
    ok_a = {s for s in common if a[s]["success_cns"]}
    ok_b = {s for s in common if b[s]["success_cns"]}
    only_a, only_b = sorted(ok_a - ok_b), sorted(ok_b - ok_a)
    discordant = len(only_a) + len(only_b)
    out: dict[str, Any] = {
        "n": len(common), "sr_a": len(ok_a) / len(common), "sr_b": len(ok_b) / len(common),
        "only_a": only_a, "only_b": only_b,
        "mcnemar_p": float(stats.binomtest(len(only_a), discordant, 0.5).pvalue) if discordant else 1.0,
    }
    both = sorted(ok_a & ok_b)
    out["both"] = len(both)
    for key, field, scale, _ in METRICS:
        va = np.array([a[s][field] for s in both], dtype=float) * scale
        vb = np.array([b[s][field] for s in both], dtype=float) * scale
        out[f"{key}_a"] = float(va.mean()) if both else math.nan
        out[f"{key}_b"] = float(vb.mean()) if both else math.nan
        diff = va - vb
        out[f"{key}_median_diff"] = float(np.median(diff)) if both else math.nan
        out[f"{key}_p"] = (float(stats.wilcoxon(diff).pvalue) if np.count_nonzero(diff) >= 2 else math.nan)
    return out


def markdown(c: Mapping[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    """The comparison as a markdown table and a line on the discordant scenes."""
    lines = [f"| on the {c['n']} common scenes | {name_a} | {name_b} | median {name_a} − {name_b} | p |",
             "|---|---|---|---|---|",
             f"| SR (CNS) | {100 * c['sr_a']:.1f} % | {100 * c['sr_b']:.1f} % | solved only by {name_a}: "
             f"{len(c['only_a'])}, only by {name_b}: {len(c['only_b'])} | {c['mcnemar_p']:.3g} (McNemar, exact) |"]
    for key, _, _, unit in METRICS:
        lines.append(f"| {key.split('_')[0].upper()} ({unit}), the {c['both']} scenes both solve "
                     f"| {c[f'{key}_a']:.2f} | {c[f'{key}_b']:.2f} | {c[f'{key}_median_diff']:+.2f} "
                     f"| {c[f'{key}_p']:.3g} (Wilcoxon) |")
    lines.append("")
    lines.append(f"Only {name_a}: {', '.join(c['only_a']) or '—'}; only {name_b}: {', '.join(c['only_b']) or '—'}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vs_controllers.benchmark.paired", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="journal of run A (episodes.jsonl or .jsonl.gz)")
    p.add_argument("b", help="journal of run B")
    p.add_argument("--names", default="A,B", help="the two runs' names in the table, comma-separated")
    args = p.parse_args(argv)
    names = args.names.split(",")
    if len(names) != 2:
        print("paired: --names takes two comma-separated names", file=sys.stderr)
        return 2
    try:
        print(markdown(compare(load_journal(args.a), load_journal(args.b)), *names))
    except InputError as err:
        print(f"paired: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
