"""spin_until_shutdown: a shutdown that overtakes rclpy's spin is a shutdown, any other error is not."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros


def test_an_error_after_shutdown_ends_the_spin_quietly(ros_context, monkeypatch):
    import rclpy
    from vs_common.ros import main as M

    node = rclpy.create_node("spin_probe", context=ros_context)

    def spin_overtaken(n):  # what rclpy 7.1 does when SIGINT shuts the context down mid-wait
        ros_context.shutdown()
        raise RuntimeError("failed to initialize wait set: the given context is not valid")

    monkeypatch.setattr(rclpy, "spin", spin_overtaken)
    M.spin_until_shutdown(node)  # returns: the context is gone, so this was the shutdown
    node.destroy_node()


def test_an_error_while_running_is_raised(ros_context, monkeypatch):
    import rclpy
    from vs_common.ros import main as M

    node = rclpy.create_node("spin_probe", context=ros_context)

    def spin_fails(n):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(rclpy, "spin", spin_fails)
    with pytest.raises(RuntimeError, match="a real bug"):
        M.spin_until_shutdown(node)
    node.destroy_node()


def test_an_error_just_before_the_shutdown_ends_the_spin_quietly(ros_context, monkeypatch):
    """The signal lands inside a take: the error comes first, rclpy's handler shuts the context down after."""
    import threading

    import rclpy
    from vs_common.ros import main as M

    node = rclpy.create_node("spin_probe", context=ros_context)

    def spin_interrupted(n):
        threading.Timer(0.1, ros_context.shutdown).start()
        raise RuntimeError("Unable to convert call argument '0' to Python object")

    monkeypatch.setattr(rclpy, "spin", spin_interrupted)
    M.spin_until_shutdown(node)
    assert not rclpy.ok(context=ros_context)
    node.destroy_node()
