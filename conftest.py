"""Shared pytest fixtures: a private rclpy context per test on a random DDS domain, localhost only.

Tests of several packages (and several concurrent test runs on one machine) must not hear each other,
so every ROS test gets its own context on its own domain id, and discovery never leaves the loopback.

A missing or broken ROS setup (rclpy or the workspace's vs_msgs not importable) fails the run with what
to do; it never skips the ROS tier. Only a run that deselects the tier itself (``-m "not ros"``) goes on
without ROS, and then does not import the modules marked ``ros``.
"""

from __future__ import annotations

import importlib
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")

#: What "ROS is set up" means for the tests: rclpy and every interface kind of the workspace's vs_msgs.
ROS_MODULES = ("rclpy", "vs_msgs.msg", "vs_msgs.srv", "vs_msgs.action")
ROS_SETUP_HINT = ("ROS 2 is not set up for this interpreter: {error}. Run `make setup` (it installs ROS 2 Jazzy's "
                  "Python packages into .venv and builds vs_msgs), then `source .venv/bin/activate` and test again "
                  "(`make test` does both). `pytest -m \"not ros\"` runs the tests that need no ROS.")
_ROS_ERROR = pytest.StashKey[str | None]()
_MODULE_MARKED_ROS = re.compile(r"^pytestmark\s*=.*\bpytest\.mark\.ros\b", re.MULTILINE)


def ros_setup_error() -> str | None:
    """Why the ROS modules the tests need do not import, or None when they do."""
    for name in ROS_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as err:
            return f"cannot import {name} ({err})"
    return None


def _ros_tier_deselected(config: pytest.Config) -> bool:
    return bool(re.search(r"\bnot\s+ros\b", config.getoption("markexpr", "") or ""))


def pytest_configure(config: pytest.Config) -> None:
    error = ros_setup_error()
    config.stash[_ROS_ERROR] = error
    if error and not _ros_tier_deselected(config):
        raise pytest.UsageError(ROS_SETUP_HINT.format(error=error))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without ROS (only reachable with ``-m "not ros"``), leave the modules marked ``ros`` unimported."""
    if config.stash.get(_ROS_ERROR, None) and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_") and _MODULE_MARKED_ROS.search(collection_path.read_text()):
        return True
    return None



@pytest.fixture
def ros_context() -> Iterator[object]:
    """An initialised ``rclpy.Context`` on a random domain id; shut down after the test."""
    import rclpy

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
