"""Render a cell in a child process, so its renderer does not hold this process's GIL.

PyBullet's ``getCameraImage`` keeps Python's GIL for a whole frame (≈ 100–170 ms on 2 cores). In a process
that also runs the observer, the controller and the robot bridge on threads (the one-process demo), every
other thread then waits for the frame in progress whenever it needs the GIL back: a CNS step that costs
9 ms of CPU took ~300 ms of wall time. :class:`CellProcess` forks a child that owns a copy of the loaded
cell and renders on request; the parent waits on a pipe, which releases the GIL.

The child is forked (not spawned) so it inherits the cell exactly as built — including a stand-in cell a
test installed — and needs no re-import. It only renders and pickles frames; it never touches ROS.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from typing import Any

import numpy as np
from vs_common.core.errors import NotReadyError, VisualServoError

__all__ = ["CellProcess", "fork_available"]


def fork_available() -> bool:
    """Whether this platform can fork a child (Linux, macOS); elsewhere render in process."""
    return "fork" in mp.get_all_start_methods()


def _serve(cell: Any, conn: Any) -> None:
    """Child loop: ``(seq, w_T_c, streams)`` → ``(seq, "ok", frame)`` or ``(seq, "error", text)``; ``None`` ends it."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        if request is None:
            return
        seq, w_T_c, streams = request
        try:
            reply = (seq, "ok", cell.render(w_T_c, streams=streams))
        except Exception as err:  # noqa: BLE001 — report to the parent, keep serving
            reply = (seq, "error", f"{type(err).__name__}: {err}")
        conn.send(reply)


class CellProcess:
    """A loaded cell rendered by a forked child; other attributes read the parent's copy.

    Args:
        cell: a cell with its scene loaded (``render(w_T_c, streams=...)`` returning a picklable frame).
        timeout_s: longest wait for one frame before :class:`NotReadyError`.

    ``render`` is thread-safe (one request at a time). Call :meth:`close` when done (also on garbage
    collection of the owner: the child is a daemon and exits when the pipe closes).
    """

    def __init__(self, cell: Any, timeout_s: float = 10.0) -> None:
        if not fork_available():
            raise VisualServoError("rendering in a child process needs fork (Linux / macOS)")
        self.cell = cell
        self.timeout_s = float(timeout_s)
        ctx = mp.get_context("fork")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(cell, child_conn), name="vs-sim-render", daemon=True)
        self._proc.start()
        child_conn.close()
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    def render(self, w_T_c: np.ndarray, streams: tuple[str, ...] = ("color", "depth")) -> Any:
        """Render in the child; same contract as the cell's ``render``."""
        with self._lock:
            if not self._proc.is_alive():
                raise NotReadyError(f"the render process exited (code {self._proc.exitcode})")
            self._seq += 1
            self._conn.send((self._seq, np.asarray(w_T_c, float), tuple(streams)))
            deadline = time.monotonic() + self.timeout_s
            while True:  # a reply to an earlier, timed-out request is stale (another pose): drop it
                if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                    raise NotReadyError(f"no frame from the render process within {self.timeout_s:.1f} s")
                try:
                    seq, status, payload = self._conn.recv()
                except (EOFError, OSError) as err:
                    raise NotReadyError(f"the render process exited while rendering ({err!r})") from err
                if seq == self._seq:
                    break
        if status != "ok":
            raise VisualServoError(f"render process: {payload}")
        return payload

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the child (idempotent)."""
        with self._lock:
            if self._proc.is_alive():
                try:
                    self._conn.send(None)
                except OSError:
                    pass
                self._proc.join(timeout_s)
                if self._proc.is_alive():
                    self._proc.terminate()
                    self._proc.join(timeout_s)
            self._conn.close()

    def __getattr__(self, name: str) -> Any:
        # camera, ir_camera, baseline_m, ...: static, identical in the parent's copy.
        if name in ("cell", "_proc", "_conn", "_lock", "_seq", "timeout_s"):
            raise AttributeError(name)
        return getattr(self.cell, name)
