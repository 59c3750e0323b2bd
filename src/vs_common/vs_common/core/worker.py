"""A worker thread that runs only the newest job: slow per-frame work off a node's callbacks.

:meth:`LatestWorker.submit` never blocks: a job waiting for the thread is replaced by a newer one (and
counted in :attr:`LatestWorker.dropped`), so a slow estimator (Depth Anything V2: up to ~1.4 s a frame
on 2 cores) always works on the newest frame and the executor's callbacks keep flowing. A ``priority``
job (the goal image) is never replaced by an ordinary one; it runs next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["LatestWorker"]


class LatestWorker:
    """One daemon thread running the newest submitted job.

    Args:
        on_error: called with the exception a job raised (the thread lives on); None = ignore.
        name: the thread's name.
    """

    def __init__(self, on_error: Callable[[BaseException], None] | None = None, name: str = "latest-worker") -> None:
        self._cond = threading.Condition()
        self._job: Callable[[], None] | None = None
        self._priority: Callable[[], None] | None = None
        self._busy = False
        self._stop = False
        self._on_error = on_error
        self.dropped = 0
        self.done = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None], priority: bool = False) -> None:
        """Queue ``job``, replacing the one waiting (same priority); never blocks."""
        with self._cond:
            if priority:
                self._priority = job
            else:
                self.dropped += self._job is not None
                self._job = job
            self._cond.notify()

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        with self._cond:
            return not self._busy and self._job is None and self._priority is None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the running job (waiting ones are dropped)."""
        with self._cond:
            self._stop = True
            self._job = self._priority = None
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._job is None and self._priority is None:
                    self._cond.wait()
                if self._stop:
                    return
                job = self._priority or self._job
                if self._priority is not None:
                    self._priority = None
                else:
                    self._job = None
                self._busy = True
            try:
                if job is not None:
                    job()
            except Exception as err:  # noqa: BLE001 - a failing job must not end the thread
                if self._on_error is not None:
                    self._on_error(err)
            finally:
                with self._cond:
                    self._busy = False
                    self.done += 1
