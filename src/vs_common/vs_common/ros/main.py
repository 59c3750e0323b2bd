"""The one ``main()`` every plain node uses (Jazzy pattern: init, construct, spin, clean shutdown)."""

from __future__ import annotations

import gc
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """Init rclpy, build the node, spin until Ctrl-C or an external shutdown, then destroy and shut down."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        # The node's modules, models and buffers live until exit: freeze them out of the collector's full
        # passes, which otherwise stall every callback for 0.1-0.5 s in a process holding torch.
        gc.collect()
        gc.freeze()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
