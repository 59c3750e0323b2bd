"""The one ``main()`` every plain node uses (Jazzy pattern: init, construct, spin, clean shutdown).

A node that cannot start — a parameter value its config rejects, a parameter of the wrong type, a
missing device or weights file — ends with ONE log line naming the cause and exit status
:data:`STARTUP_FAILED`, not a traceback: ``ros2 launch`` then reports the process as died with that code.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from vs_common.core.errors import VisualServoError

N = TypeVar("N", bound=Node)
#: Exit status of a node that could not start (sysexits' EX_CONFIG).
STARTUP_FAILED = 78


def _program_name() -> str:
    """``observer`` for ``lib/vs_perception/observer`` and for ``python -m vs_perception.nodes.observer``."""
    name = os.path.basename(sys.argv[0] or "node")
    return name[:-3] if name.endswith(".py") else name


def startup_error_text(err: BaseException) -> str:
    """The error as one line (a message spanning lines is joined)."""
    return " ".join(str(err).split())


def construct(factory: Callable[[], N]) -> N:
    """Build a node; a start-up error is logged as one line and ends the process with :data:`STARTUP_FAILED`.

    Call it after ``rclpy.init`` inside the ``try`` whose ``finally`` shuts rclpy down (SystemExit runs it).
    """
    try:
        return factory()
    except (VisualServoError, ParameterException) as err:
        rclpy.logging.get_logger(_program_name()).fatal(
            f"cannot start: {startup_error_text(err)} ({type(err).__name__})")
        raise SystemExit(STARTUP_FAILED) from None


def spin_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """Init rclpy, build the node, spin until Ctrl-C or an external shutdown, then destroy and shut down."""
    rclpy.init(args=args)
    node = None
    try:
        node = construct(factory)
        # The node's modules, models and buffers live until exit: freeze them out of the collector's full
        # passes, which otherwise stall every callback for 0.1-0.5 s in a process holding torch.
        gc.collect()
        gc.freeze()
        spin_until_shutdown(node)
    finally:
        ignore_further_interrupts()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


#: How long an error in spin waits for the context to go down before it counts as a real error (s).
SHUTDOWN_GRACE_S = 0.5


def spin_until_shutdown(node: Node) -> None:
    """``rclpy.spin(node)`` until Ctrl-C or an external shutdown, which both return normally."""
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # SIGINT shut the context down while spin was building its wait set: rclpy (7.1) then raises RCLError
        # "the given context is not valid" instead of ExternalShutdownException. Or the signal landed inside a
        # take: pybind11 turns the interrupt into "Unable to convert call argument" before rclpy's handler has
        # shut the context down (seen in CI). Both are a shutdown; an error with the context still up after
        # SHUTDOWN_GRACE_S is not.
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while rclpy.ok(context=node.context):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def ignore_further_interrupts() -> None:
    """Shutting down: ignore further SIGINTs (call first in ``main``'s ``finally``).

    Ctrl-C in a terminal reaches every node twice, from the terminal and from ``ros2 launch``; the second
    would raise KeyboardInterrupt in the middle of the clean-up (exit code -2, a traceback, a bridge that
    may not have stopped the arm). SIGTERM, launch's escalation, still ends a node that hangs.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
