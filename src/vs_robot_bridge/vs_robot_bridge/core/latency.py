"""Command latency in the servo graph (#20): how old a twist's image is when the bridge gets it and sends it.

A servo twist carries the stamp of the image it was computed from (``vs_controllers`` servo node), so the
bridge measures the end-to-end latency of every motion command on its own clock:

- ``image_to_bridge``: image stamp → the command's arrival at the bridge (observer + controller + transport);
- ``image_to_robot``: image stamp → the control tick that first sends it to the robot (+ up to one tick).

Zero twists are left out: the servo node stamps them with the time it publishes (nothing was observed),
and a zero command moves nothing. ``/diagnostics`` reports the min / median / p95 of each window
(:func:`latency_values`); ``python -m vs_bringup.latency <run folder>`` prints them for a recorded run.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: The windows reported, in order: (key, what it measures).
LATENCIES = (("image_to_bridge", "image stamp → command arrival at the bridge"),
             ("image_to_robot", "image stamp → first control tick that sends the command"))
#: Statistics of each window in ``/diagnostics``, keys ``<window>_<stat>_ms`` (and ``<window>_n``).
STATS = ("min", "median", "p95")


class LatencyWindow:
    """The last ``size`` latencies (s) and their statistics (ms)."""

    def __init__(self, size: int = 5000) -> None:
        self._x: deque[float] = deque(maxlen=int(size))

    def __len__(self) -> int:
        return len(self._x)

    def add(self, latency_s: float) -> None:
        if np.isfinite(latency_s):
            self._x.append(float(latency_s))

    def clear(self) -> None:
        self._x.clear()

    def stats_ms(self) -> dict[str, float]:
        """``{min, median, p95}`` in ms (NaN when empty)."""
        if not self._x:
            return {s: float("nan") for s in STATS}
        x = 1e3 * np.asarray(self._x)
        return {"min": float(x.min()), "median": float(np.median(x)), "p95": float(np.percentile(x, 95))}


def latency_values(windows: dict[str, LatencyWindow]) -> dict[str, str]:
    """Diagnostics key/values of the windows: ``<name>_n`` and ``<name>_<stat>_ms``."""
    out: dict[str, str] = {}
    for name, _ in LATENCIES:
        w = windows[name]
        out[f"{name}_n"] = str(len(w))
        out.update({f"{name}_{k}_ms": f"{v:.1f}" for k, v in w.stats_ms().items()})
    return out
