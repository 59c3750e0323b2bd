"""robot_bridge: lifecycle node between ``/vs/servo/cmd_twist`` and the robot (ur_rtde or the simulator).

configure → receive side open, status flowing; activate → control side + watchdog, twists accepted;
deactivate → speedStop; cleanup → disconnect. All safety logic is in :mod:`vs_robot_bridge.core.bridge`.
Parameters: the fields of BridgeConfig, ``safety.*`` (SafetyConfig), ``ur.*`` (UrRtdeConfig), ``sim.*``
(SimBackendConfig), plus ``autostart`` (configure and activate at start-up, for runs without a lifecycle manager).
"""

from __future__ import annotations

import dataclasses

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from vs_common.core.config import from_mapping
from vs_common.core.errors import VisualServoError
from vs_common.core.frames import camera_link, tcp_to_camera_link
from vs_common.core.topics import CMD_TWIST, DIAGNOSTICS, JOINT_STATES, RESET_FAULT, ROBOT_STATUS, TCP_POSE
from vs_common.ros.geometry import matrix_to_pose_stamped, twist_stamped_to_array
from vs_common.ros.main import construct, ignore_further_interrupts, spin_until_shutdown
from vs_common.ros.params import declare_config, declare_read_only
from vs_common.ros.qos import COMMAND_QOS, LATCHED_QOS
from vs_common.ros.tf import TransformPublisher, publish_static_transforms

from vs_msgs.msg import RobotStatus
from vs_robot_bridge.core.backend import RobotBackend, make_backend
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.config import BridgeConfig, SafetyConfig, SimBackendConfig, UrRtdeConfig
from vs_robot_bridge.core.safety import hand_eye_transform
from vs_robot_bridge.ros import conversions as conv
from vs_robot_bridge.ros.sim_orbit import SimOrbitService

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
_GROUPS = ((BridgeConfig, ""), (SafetyConfig, "safety."), (UrRtdeConfig, "ur."), (SimBackendConfig, "sim."))


class RobotBridgeNode(LifecycleNode):
    """Wires :class:`RobotBridge` to topics; ``backend`` may be injected (tests, benchmarks)."""

    def __init__(self, node_name: str = "robot_bridge", backend: RobotBackend | None = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        for cls, prefix in _GROUPS:
            declare_config(self, cls, prefix)
        declare_read_only(self, "autostart", False, "Configure and activate at start-up (no lifecycle manager)")
        self._injected = backend
        self.core: RobotBridge | None = None
        self._last_state = None
        self._entities: list = []
        self._guard_change_state()

    def _guard_change_state(self) -> None:
        """Answer a transition the current state does not have with success = false instead of dying.

        rclpy 7.1.6 (Jazzy) raises RCLError "Transition is not registered" out of the executor for such a
        ChangeState request (ids 0, 1, 2, 99, 255 while active), which ends the process; check first.
        """
        service = getattr(self, "_service_change_state", None)
        if service is None:  # enable_communication_interface=False: no service to guard
            return
        upstream = service.callback

        def guarded(req: ChangeState.Request, resp: ChangeState.Response) -> ChangeState.Response:
            available = {tid: label for tid, label, *_ in self._state_machine.available_transitions}
            state = self._state_machine.current_state[1]
            wanted = req.transition.label or req.transition.id
            if wanted not in (available.values() if req.transition.label else available):
                self.get_logger().warning(f"refused lifecycle transition {wanted!r} in state {state!r}; "
                                          f"available: {sorted(available.items())}")
                resp.success = False
                return resp
            try:
                return upstream(req, resp)
            except Exception as err:  # noqa: BLE001 — a lifecycle request must never end the node
                self.get_logger().error(f"lifecycle transition {wanted!r} failed: {err!r}")
                resp.success = False
                return resp

        service.callback = guarded

    def _config(self, cls: type, prefix: str):
        return from_mapping(cls, {f.name: self.get_parameter(prefix + f.name).value for f in dataclasses.fields(cls)})

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            cfg, safety, ur, sim = (self._config(cls, p) for cls, p in _GROUPS)
            self.core = RobotBridge(cfg, safety, self._injected or make_backend(cfg.backend, ur, sim))
            self.core.configure()
        except VisualServoError as err:
            self.get_logger().error(f"configure failed: {err}")
            return FAILURE
        self.status_pub = self.create_publisher(RobotStatus, ROBOT_STATUS, LATCHED_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, TCP_POSE, 10)
        self.joint_pub = self.create_publisher(JointState, JOINT_STATES, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self._entities = [
            self.status_pub, self.pose_pub, self.joint_pub, self.diag_pub,
            self.create_subscription(TwistStamped, CMD_TWIST, self._on_twist, COMMAND_QOS),
            self.create_service(Trigger, RESET_FAULT, self._on_reset),
            self.create_timer(1.0 / cfg.control_rate_hz, self._on_tick),
            self.create_timer(1.0 / cfg.status_rate_hz, self._publish_status),
        ]
        self._entities += self._frames(safety)
        if self.core.backend.name == "sim":  # the simulated cell's offset mechanism (docs/demo.md)
            self._entities += SimOrbitService(self, self.core).entities
        self._publish_status()
        return SUCCESS

    def _frames(self, safety: SafetyConfig) -> list:
        """TF: ``base → tool0`` on /tf with every status, the hand-eye ``tool0 → camera_link`` on /tf_static."""
        self._tf = TransformPublisher(self)
        static = publish_static_transforms(
            self, [(safety.tcp_frame, camera_link(), tcp_to_camera_link(hand_eye_transform(safety)))])
        return [p for p in (self._tf.publisher, static) if p is not None]

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.core.activate()
        except VisualServoError as err:
            self.get_logger().error(f"activate failed: {err}")
            return FAILURE
        self._publish_status()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.core.deactivate()
        self._publish_status()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.core.cleanup()
        self._publish_status()
        self._destroy_entities()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.core is not None:
            self.core.cleanup()
        self._destroy_entities()
        return SUCCESS

    def _destroy_entities(self) -> None:
        for e in self._entities:
            for destroy in (self.destroy_timer, self.destroy_subscription, self.destroy_service,
                            self.destroy_publisher):
                if destroy(e):
                    break
        self._entities = []

    def _on_twist(self, msg: TwistStamped) -> None:
        try:
            try:
                v, frame, stamp = twist_stamped_to_array(msg)
                reason = self.core.submit(v, frame, stamp, self.now_s())
            except VisualServoError as err:  # an undecodable command (bad stamp): refused like an invalid one
                reason = self.core.refuse(f"malformed command: {err}")
            if reason and self.core.active:
                self.get_logger().warning(f"command refused: {reason}", throttle_duration_sec=1.0)
        except Exception as err:  # noqa: BLE001 — never let a bad message keep an old velocity alive
            self.core.filter.clear()
            self.get_logger().error(f"command callback failed: {err}", throttle_duration_sec=1.0)

    def _on_tick(self) -> None:
        try:
            self.core.tick(self.now_s())
        except Exception as err:  # noqa: BLE001 — a bug in the loop must stop the robot, not the node
            self.core.latch_fault(f"internal error: {err}")
        if self.core.state != self._last_state:
            self._publish_status()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.core.reset_fault(self.now_s())
        self.get_logger().info(f"reset_fault: {response.message}")
        self._publish_status()
        return response

    def _publish_status(self) -> None:
        try:
            status, stamp = self.core.status(), self.get_clock().now().to_msg()
            self._last_state = status.state
            base = self.core.filter.config.base_frame
            self.status_pub.publish(conv.status_to_msg(status, stamp, base))
            self.diag_pub.publish(conv.status_to_diagnostics(status, f"{self.get_name()}: robot", stamp))
            r = status.robot
            if r.base_T_tcp is not None:
                self.pose_pub.publish(matrix_to_pose_stamped(r.base_T_tcp, stamp, base))
                self._tf.publish(r.base_T_tcp, base, self.core.filter.config.tcp_frame, stamp)
            if r.joint_positions is not None:
                self.joint_pub.publish(conv.joint_state_msg(r.joint_names, r.joint_positions, r.joint_velocities,
                                                            stamp))
        except Exception as err:  # noqa: BLE001
            self.get_logger().error(f"status publication failed: {err}", throttle_duration_sec=1.0)


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = construct(RobotBridgeNode)  # a bad parameter: one log line, exit status STARTUP_FAILED
        if node.get_parameter("autostart").value and node.trigger_configure() == SUCCESS:
            node.trigger_activate()  # on failure the node stays up, unconfigured/inactive, for a manual retry
        spin_until_shutdown(node)
    except (KeyboardInterrupt, ExternalShutdownException):  # during configure / activate
        pass
    finally:
        ignore_further_interrupts()  # a second Ctrl-C must not cut the arm's stop short
        if node is not None:
            if node.core is not None:
                node.core.cleanup()  # speedStop + stopScript + disconnect, whatever state we were in
                node.get_logger().info("shutdown: arm stopped, robot links closed")
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
