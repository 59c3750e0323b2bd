"""Shared pytest fixtures: a private rclpy context per test on a random DDS domain, localhost only.

Tests of several packages (and several concurrent test runs on one machine) must not hear each other,
so every ROS test gets its own context on its own domain id, and discovery never leaves the loopback.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture
def ros_context() -> Iterator[object]:
    """An initialised ``rclpy.Context`` on a random domain id; shut down after the test."""
    rclpy = pytest.importorskip("rclpy")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=random.randint(1, 100))
    try:
        yield ctx
    finally:
        ctx.try_shutdown()


@pytest.fixture
def ros_executor(ros_context) -> Iterator[object]:
    """A single-threaded executor bound to :func:`ros_context`; nodes added to it are destroyed after."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ros_context)
    try:
        yield ex
    finally:
        for node in list(ex.get_nodes()):
            ex.remove_node(node)
            node.destroy_node()
        ex.shutdown()


def spin_until(executor, condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Spin ``executor`` until ``condition()`` is true or ``timeout`` seconds pass; return the condition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        executor.spin_once(timeout_sec=step)
    return condition()


@pytest.fixture
def spin() -> Callable[..., bool]:
    """The :func:`spin_until` helper as a fixture."""
    return spin_until
