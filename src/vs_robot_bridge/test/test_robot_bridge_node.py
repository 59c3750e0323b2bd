"""The lifecycle node with real rclpy: transitions through the real lifecycle services, messages over DDS."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger
from vs_common.ros.qos import COMMAND_QOS, LATCHED_QOS
from vs_robot_bridge.core.config import SimBackendConfig
from vs_robot_bridge.core.sim_backend import SimBackend
from vs_robot_bridge.nodes.robot_bridge import RobotBridgeNode

from vs_msgs.msg import RobotStatus

pytestmark = pytest.mark.ros
CAM = "camera_color_optical_frame"


class Harness:
    """The bridge node plus a probe node (publisher, subscribers, service clients) spun in a thread."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        # A private DDS domain so parallel test runs on this machine cannot cross-talk.
        rclpy.init(context=self.context, domain_id=100 + os.getpid() % 100)
        # The simulated watchdog at 1 Hz: these tests are about commands, and on a loaded 2-core machine a tick
        # can come > 100 ms late, latching a watchdog fault mid-test (test_bridge_sim covers the trip itself).
        self.sim = SimBackend(SimBackendConfig(watchdog_min_frequency_hz=1.0))
        self.bridge = RobotBridgeNode(backend=self.sim, context=self.context,
                                      parameter_overrides=[rclpy.parameter.Parameter("status_rate_hz", value=50.0)])
        self.probe = rclpy.create_node("probe", context=self.context)
        self.cmd_pub = self.probe.create_publisher(TwistStamped, "/vs/servo/cmd_twist", COMMAND_QOS)
        self.status: list[RobotStatus] = []
        self.poses: list[PoseStamped] = []
        self.diags: list[DiagnosticArray] = []
        self.probe.create_subscription(RobotStatus, "/vs/robot/status", self.status.append, LATCHED_QOS)
        self.probe.create_subscription(PoseStamped, "/vs/robot/tcp_pose", self.poses.append, 10)
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)
        self.change = self.probe.create_client(ChangeState, "/robot_bridge/change_state")
        self.reset = self.probe.create_client(Trigger, "/vs/robot/reset_fault")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.bridge)
        self.executor.add_node(self.probe)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def call(self, client, request, timeout: float = 5.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
        future = client.call_async(request)
        t0 = time.monotonic()
        while not future.done() and time.monotonic() - t0 < timeout:
            time.sleep(0.01)
        assert future.done(), f"{client.srv_name} did not answer"
        return future.result()

    def transition(self, tid: int) -> bool:
        return self.call(self.change, ChangeState.Request(transition=Transition(id=tid))).success

    def send(self, v, frame: str = CAM, age_s: float = 0.0) -> None:
        msg = TwistStamped()
        stamp_ns = self.probe.get_clock().now().nanoseconds - int(age_s * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = frame
        (msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z,
         msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z) = (float(x) for x in v)
        self.cmd_pub.publish(msg)

    def stream(self, v, seconds: float, rate: float = 50.0, **kw) -> None:
        for _ in range(int(seconds * rate)):
            self.send(v, **kw)
            time.sleep(1.0 / rate)

    def wait_for(self, predicate, timeout: float = 3.0) -> bool:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if predicate():
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self.executor.shutdown()
        self.bridge.destroy_node()
        self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


def test_lifecycle_motion_silence_and_bad_commands(h):
    assert h.transition(Transition.TRANSITION_CONFIGURE)
    assert h.wait_for(lambda: h.status and h.status[-1].state == "inactive")
    h.stream([0, 0, 0.05, 0, 0, 0], 0.2)  # inactive: ignored
    assert "speedL" not in h.sim.calls
    assert h.transition(Transition.TRANSITION_ACTIVATE)
    assert h.wait_for(lambda: h.status[-1].state == "active")

    z0 = h.sim.base_T_tcp[:3, 3].copy()
    h.stream([0, 0, 0.05, 0, 0, 0], 0.6)  # camera-z: the default camera looks down, so the TCP goes down
    assert h.sim.calls.count("speedL") > 20
    moved = h.sim.base_T_tcp[:3, 3] - z0
    assert moved[2] < -0.01 and abs(moved[0]) < 1e-3
    assert h.poses and h.poses[-1].header.frame_id == "base"

    # silence: a zero (speedStop) follows within a generous bound (the benchmark measures it precisely)
    t_last = time.monotonic()
    assert h.wait_for(lambda: h.sim.calls[-1] == "speedStop", timeout=1.0)
    assert time.monotonic() - t_last < 0.5

    n = h.sim.calls.count("speedL")
    h.stream([0, 0, 0.05, 0, 0, 0], 0.3, age_s=0.5)  # stale stamps
    h.stream([0, 0, 0.05, 0, 0, 0], 0.2, frame="map")  # unknown frame
    h.stream([0, 0, float("nan"), 0, 0, 0], 0.2)
    assert h.sim.calls.count("speedL") == n
    assert h.wait_for(lambda: "non-finite" in h.status[-1].last_command_note)

    assert h.transition(Transition.TRANSITION_DEACTIVATE)
    assert h.sim.calls[-1] == "speedStop" and not h.sim.control_open
    assert h.transition(Transition.TRANSITION_CLEANUP)
    assert h.wait_for(lambda: h.status[-1].state == "unconfigured")


def test_protective_stop_latches_until_reset_service(h):
    assert h.transition(Transition.TRANSITION_CONFIGURE)
    assert h.transition(Transition.TRANSITION_ACTIVATE)
    h.stream([0.02, 0, 0, 0, 0, 0], 0.3, frame="base")
    h.sim.inject_protective_stop()
    assert h.wait_for(lambda: h.status[-1].fault and h.status[-1].protective_stop)
    assert h.wait_for(lambda: any(s.level == DiagnosticStatus.ERROR for d in h.diags[-3:] for s in d.status))
    assert not h.call(h.reset, Trigger.Request()).success  # still stopped on the pendant
    h.sim.clear_stops()
    n = h.sim.calls.count("speedL")
    h.stream([0.02, 0, 0, 0, 0, 0], 0.3, frame="base")
    assert h.sim.calls.count("speedL") == n and h.status[-1].fault  # latched: never resumes by itself
    response = h.call(h.reset, Trigger.Request())
    assert response.success, response.message
    assert h.wait_for(lambda: not h.status[-1].fault)
    h.stream([0.02, 0, 0, 0, 0, 0], 0.3, frame="base")
    assert h.sim.calls.count("speedL") > n
    np.testing.assert_allclose(h.status[-1].last_command.linear.x, 0.02, atol=1e-6)


def test_params_file_sets_parameters():
    from pathlib import Path

    yaml_path = Path(__file__).resolve().parents[3] / "config" / "robot_bridge.yaml"
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=100 + os.getpid() % 100)
    try:
        node = RobotBridgeNode(context=ctx, backend=SimBackend(),
                               cli_args=["--ros-args", "--params-file", str(yaml_path),
                                         "-p", "safety.max_linear_speed:=0.05"])
        assert node.get_parameter("safety.max_linear_speed").value == 0.05
        assert list(node.get_parameter("safety.workspace_min").value) == [-0.7, -0.7, 0.05]
        from rclpy.lifecycle import TransitionCallbackReturn

        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.core.filter.config.max_linear_speed == 0.05
        node.trigger_cleanup()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


def test_invalid_lifecycle_requests_refused_without_exit(h):
    """Issue #17 repro 2: while active, change_state with id 0, 1, 2, 99 or 255 ended the process (rclpy 7.1.6)."""
    assert h.transition(Transition.TRANSITION_CONFIGURE)
    assert h.transition(Transition.TRANSITION_ACTIVATE)
    for tid in (0, 1, 2, 99, 255, Transition.TRANSITION_ACTIVATE):
        assert not h.transition(tid), tid
    label = ChangeState.Request(transition=Transition(label="configure"))
    assert not h.call(h.change, label).success
    assert h.thread.is_alive()
    n = h.sim.calls.count("speedL")
    h.stream([0.02, 0, 0, 0, 0, 0], 0.3, frame="base")  # still active and obeying
    assert h.sim.calls.count("speedL") > n
    assert h.transition(Transition.TRANSITION_DEACTIVATE)  # valid transitions still work
    assert h.call(h.change, ChangeState.Request(transition=Transition(label="activate"))).success


def test_repro3_future_and_unnormalised_stamps_never_move(h):
    """Issue #17 repro 3 over DDS: stamps up to 2^31 - 1 s, and a 3 s old stamp with nanosec = 4e9."""
    assert h.transition(Transition.TRANSITION_CONFIGURE)
    assert h.transition(Transition.TRANSITION_ACTIVATE)
    h.stream([0.02, 0, 0, 0, 0, 0], 0.2, frame="base", age_s=-3600.0)
    msg = TwistStamped()
    msg.header.frame_id, msg.twist.linear.x = "base", 0.02
    for sec, nanosec in ((2**31 - 1, 0), (int(time.time()) - 3, 4_000_000_000)):
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
        for _ in range(10):
            h.cmd_pub.publish(msg)
            time.sleep(0.02)
    assert "speedL" not in h.sim.calls
    assert h.wait_for(lambda: "nanosec" in h.status[-1].last_command_note or "future" in h.status[-1].last_command_note)
