"""End-to-end command latency of a recorded run (#20): image stamp → twist → robot command.

    python -m vs_bringup.latency runs/<stamp>_<pipeline>      # or a bag directory

A servo twist carries the stamp of the image it was computed from, so:

- ``image_to_twist``: the twist's receipt by the recorder (bag log time) minus its stamp, over the motion
  commands (non-zero twists) of the run: observer + controller + one DDS hop;
- ``image_to_bridge`` / ``image_to_robot``: what the robot bridge measured on its own clock, image stamp →
  arrival and → the control tick that first sent it (``/diagnostics``, :mod:`vs_robot_bridge.core.latency`;
  the last report of the run covers every command since the bridge was activated).

Each is given as ``n``, min, median and p95 in ms. Live, ``ros2 topic echo /diagnostics`` shows the bridge's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vs_bringup import topics as T

#: The bridge's windows in /diagnostics (vs_robot_bridge.core.latency.LATENCIES, STATS).
BRIDGE_WINDOWS = ("image_to_bridge", "image_to_robot")
STATS = ("min", "median", "p95")


def _stats(x_ms: Sequence[float]) -> dict[str, float]:
    x = np.asarray(x_ms, float)
    if x.size == 0:
        return {"n": 0, **{s: float("nan") for s in STATS}}
    return {"n": int(x.size), "min": float(x.min()), "median": float(np.median(x)),
            "p95": float(np.percentile(x, 95))}


def run_latency(bag: str | Path) -> dict[str, dict[str, float]]:
    """``{image_to_twist, image_to_bridge, image_to_robot: {n, min, median, p95}}`` (ms) of a recorded run."""
    from vs_bringup.recorder import read_run

    bag = Path(bag)
    if (bag / "bag").is_dir():
        bag = bag / "bag"
    run = read_run(bag, [T.CMD_TWIST, T.DIAGNOSTICS])
    ages = []
    for t, msg in run.get(T.CMD_TWIST, []):
        tw = msg.twist
        if any((tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z)):
            ages.append(1e3 * (t - (msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec)))
    out = {"image_to_twist": _stats(ages)}
    last: dict[str, str] = {}
    for _, msg in run.get(T.DIAGNOSTICS, []):
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if f"{BRIDGE_WINDOWS[0]}_n" in values:
                last = values
    for w in BRIDGE_WINDOWS:
        n = int(last.get(f"{w}_n", 0) or 0)
        out[w] = {"n": n, **{s: float(last.get(f"{w}_{s}_ms", "nan")) for s in STATS}}
    return out


def latency_line(latency: dict[str, Any]) -> str:
    """One line: ``image → twist median X ms (p95 Y), image → robot ...``."""
    parts = []
    for name in ("image_to_twist", "image_to_robot"):
        s = latency.get(name, {})
        parts.append(f"{name.replace('_to_', ' → ')} median {s.get('median', float('nan')):.0f} ms "
                     f"(p95 {s.get('p95', float('nan')):.0f}, n {s.get('n', 0)})")
    return "latency " + ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vs_bringup.latency", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder (with bag/) or bag directory")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    a = parser.parse_args(argv)
    lat = run_latency(a.run)
    if a.json:
        print(json.dumps(lat, indent=2))
        return 0
    print(f"{'latency (ms)':<18}{'n':>6}{'min':>9}{'median':>9}{'p95':>9}")
    for name, s in lat.items():
        print(f"{name:<18}{s['n']:>6}{s['min']:>9.1f}{s['median']:>9.1f}{s['p95']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
