"""Benchmark: time from the last valid command to the zero command (speedStop) reaching the backend.

Runs the real lifecycle node with the simulated backend in this process, over real DDS: a probe node
streams camera-frame TwistStamped at ``--rate`` Hz for ``--burst`` s and then falls silent; the time from
publishing the last command to the backend receiving ``speedStop`` is one sample. Prints the
distribution and exits non-zero when the maximum exceeds ``--limit-ms`` (the requirement is ≤ 100 ms).

    python -m vs_robot_bridge.tools.latency_benchmark --trials 30
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np


def run(trials: int, rate_hz: float, burst_s: float, control_rate_hz: float, domain_id: int) -> np.ndarray:
    """Measure ``trials`` silence-to-stop latencies (s)."""
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from vs_common.core.frames import COLOR_OPTICAL_FRAME
    from vs_common.core.topics import CMD_TWIST
    from vs_common.ros.qos import COMMAND_QOS

    from vs_robot_bridge.core.sim_backend import SimBackend
    from vs_robot_bridge.nodes.robot_bridge import RobotBridgeNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    sim = SimBackend()
    stops: list[float] = []
    sim.on_command = lambda what, v: stops.append(time.monotonic()) if what == "speedStop" else None
    node = RobotBridgeNode(backend=sim, context=ctx,
                           parameter_overrides=[Parameter("control_rate_hz", value=control_rate_hz)])
    probe = rclpy.create_node("latency_probe", context=ctx)
    pub = probe.create_publisher(TwistStamped, CMD_TWIST, COMMAND_QOS)
    # The bridge gets its own executor thread, as it would own its process in deployment.
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    node.trigger_configure()
    node.trigger_activate()
    time.sleep(0.5)  # discovery
    samples = []
    try:
        for i in range(trials):
            msg = TwistStamped()
            msg.header.frame_id = COLOR_OPTICAL_FRAME
            msg.twist.linear.x = 0.02 * (1 if i % 2 else -1)  # back and forth, stays in the workspace
            t_last = 0.0
            for _ in range(int(burst_s * rate_hz)):
                msg.header.stamp = probe.get_clock().now().to_msg()
                pub.publish(msg)
                t_last = time.monotonic()
                time.sleep(1.0 / rate_hz)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not (stops and stops[-1] > t_last):
                time.sleep(0.001)
            if stops and stops[-1] > t_last:
                samples.append(stops[-1] - t_last)
            time.sleep(0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        probe.destroy_node()
        rclpy.try_shutdown(context=ctx)
    return np.asarray(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rate", type=float, default=30.0, help="command rate of the fake controller (Hz)")
    parser.add_argument("--burst", type=float, default=0.3, help="seconds of commands before each silence")
    parser.add_argument("--control-rate", type=float, default=125.0, help="bridge control loop rate (Hz)")
    parser.add_argument("--limit-ms", type=float, default=100.0)
    parser.add_argument("--domain-id", type=int, default=77)
    args = parser.parse_args(argv)
    s = run(args.trials, args.rate, args.burst, args.control_rate, args.domain_id) * 1e3
    if s.size == 0:
        print("no stop observed")
        return 1
    print(f"last valid command -> speedStop at the backend, {s.size}/{args.trials} trials, "
          f"control {args.control_rate:.0f} Hz, commands {args.rate:.0f} Hz:")
    print(f"  min {s.min():.1f} ms  median {np.median(s):.1f} ms  p95 {np.percentile(s, 95):.1f} ms  "
          f"max {s.max():.1f} ms  (limit {args.limit_ms:.0f} ms)")
    return 0 if s.size == args.trials and s.max() <= args.limit_ms else 1


if __name__ == "__main__":
    raise SystemExit(main())
