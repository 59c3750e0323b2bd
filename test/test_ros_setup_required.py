"""A missing ROS setup fails the test run with what to do; it never skips the ROS tier (issue #18 item 5).

The rule lives in the root conftest.py; here pytest runs in a child interpreter where rclpy and every
message package fail to import, as on a machine where `make setup` did not run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NO_ROS_PYTEST = textwrap.dedent("""
    import importlib.abc, sys

    class NoRos(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            top = name.split(".")[0]
            if top == "rclpy" or top.endswith(("_msgs", "_interfaces", "_srvs")):
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, NoRos())
    import pytest
    sys.exit(pytest.main(["-p", "no:cacheprovider", "--collect-only", "-q", *sys.argv[1:]]))
""")


def _pytest_without_ros(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_ROS_PYTEST, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_missing_ros_fails_the_run_naming_make_setup() -> None:
    res = _pytest_without_ros("test/test_msgs_roundtrip.py", "src/vs_common/test/test_se3.py")
    out = res.stdout + res.stderr
    assert res.returncode == 4, out  # a usage error: nothing ran, nothing was skipped
    assert "make setup" in out and "cannot import rclpy" in out, out


def test_deselecting_the_ros_tier_runs_without_ros() -> None:
    """``-m "not ros"`` is the one way to run without ROS: the ROS modules found are not even imported."""
    res = _pytest_without_ros("-m", "not ros", "test", "src/vs_common/test")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "test_se3.py::" in out and "test_layering.py::" in out, out
    assert "test_msgs_roundtrip" not in out and "ERROR" not in out, out
