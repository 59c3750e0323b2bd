"""Servo controller node: Correspondences → TwistStamped (camera optical frame) + ServoStatus + Servo action.

The pipeline (ibvs, cns, ...) is a parameter, described by its :class:`~vs_controllers.core.pipelines.PipelineSpec`;
everything it decides lives in :class:`vs_controllers.core.session.ServoSession` (on the shared servo loop).
Any input the core rejects gives a zero twist and a
status message, never an exception out of a callback.
"""

from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Image
from vs_common.core.config import check_choice, config_fields, flatten_config
from vs_common.core.errors import ConfigError, InputError, VisualServoError
from vs_common.core.frames import COLOR_OPTICAL_FRAME
from vs_common.core.paths import resolve_config
from vs_common.core.topics import (
    CMD_TWIST,
    CORRESPONDENCES,
    GOAL_RELATIVE_DEPTH,
    RELATIVE_DEPTH,
    SERVO_ACTION,
    SERVO_STATUS,
)
from vs_common.ros.geometry import array_to_twist
from vs_common.ros.image import image_to_array, stamp_to_sec
from vs_common.ros.main import spin_node
from vs_common.ros.params import declare_config, declare_read_only
from vs_common.ros.qos import COMMAND_QOS, DATA_QOS, LATCHED_QOS, LATEST_QOS
from vs_perception.core.keypoint_depth import DepthMap, KeypointDepthConfig
from vs_perception.core.observer import OBSERVER_STAGES
from vs_perception.ros.conversions import msg_to_correspondences

from vs_controllers.core.inputs import make_inputs
from vs_controllers.core.loop import LoopConfig
from vs_controllers.core.pipelines import (
    Input,
    controller_settings,
    get_pipeline,
    loop_settings,
    make_controller,
    pipeline_names,
    pipeline_sections,
)
from vs_controllers.core.session import ServoSession, ServoState, SessionConfig, StepResult
from vs_msgs.action import Servo
from vs_msgs.msg import Correspondences as CorrespondencesMsg
from vs_msgs.msg import ServoStatus

#: Controller settings safe to change while servoing (every loop.* setting is: gain schedule, speed limits).
RUNTIME_FIELDS = ("min_points",)


class ServoControllerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("servo_controller", **kwargs)
        self.pipeline = declare_read_only(self, "pipeline", "ibvs", f"Pipeline to run, one of {pipeline_names()}")
        cfg_file = declare_read_only(self, "pipeline_config", "", "Pipeline YAML (observer, <pipeline>_controller "
                                     "and loop sections): the defaults of controller.* and loop.*; "
                                     "'' = the pipeline's config/<pipeline>.yaml")
        self.frame_id = declare_read_only(self, "output_frame", COLOR_OPTICAL_FRAME,
                                          "Frame of the published twist (must be the observing camera's optical frame)")
        check_choice("pipeline", self.pipeline, pipeline_names())
        spec = get_pipeline(self.pipeline)
        if not spec.needs(Input.CORRESPONDENCES):
            raise ConfigError(f"pipeline {spec.name!r} observes {[i.value for i in spec.inputs]}; this node "
                              "subscribes to correspondences")
        session_cfg = declare_config(self, SessionConfig, prefix="session.")
        # The controller's settings are parameters controller.<field>, the loop's loop.<field>, defaults from the
        # pipeline file; the loop's may change at run time (ros2 param set /servo_controller loop.gain 0.8).
        # Nested controller settings are dotted (controller.graph.ap_damping); the file is parsed once, here.
        sections = pipeline_sections(self.pipeline, resolve_config(cfg_file or spec.config_file))
        cls, file_values = controller_settings(self.pipeline, sections)
        live = [name for name, _, _ in config_fields(cls) if name in RUNTIME_FIELDS]
        ctrl_cfg = declare_config(self, cls, prefix="controller.", overrides=file_values, dynamic=live,
                                  on_change=self._set_controller_config)
        loop_cfg = declare_config(self, LoopConfig, prefix="loop.",
                                  overrides=flatten_config(loop_settings(self.pipeline, sections)), dynamic=True,
                                  on_change=self._set_loop_config)
        controller = make_controller(self.pipeline, flatten_config(ctrl_cfg))
        depth_cfg = declare_config(self, KeypointDepthConfig, prefix="relative_depth.") \
            if spec.needs(Input.RELATIVE_DEPTH) else None
        self.inputs = make_inputs(spec, {"relative_depth": depth_cfg})
        self.session = ServoSession(controller, session_cfg, loop_cfg, inputs=list(self.inputs.values()))
        self._observer_ms = 0.0
        self._depth_age_ms = float("nan")
        self._active = None
        self._done: Future | None = None
        self._deadline = float("inf")
        self._t0 = 0.0

        self.pub_twist = self.create_publisher(TwistStamped, CMD_TWIST, COMMAND_QOS)
        self.pub_status = self.create_publisher(ServoStatus, SERVO_STATUS, LATCHED_QOS)
        self.create_subscription(CorrespondencesMsg, CORRESPONDENCES, self._on_obs, DATA_QOS)
        if Input.RELATIVE_DEPTH in self.inputs:
            # Keep-last-1: only the newest map is ever sampled; the goal's is latched by the relative_depth node.
            self.create_subscription(Image, RELATIVE_DEPTH, lambda m: self._on_depth(m, goal=False), LATEST_QOS)
            self.create_subscription(Image, GOAL_RELATIVE_DEPTH, lambda m: self._on_depth(m, goal=True), LATCHED_QOS)
        self.create_timer(0.1, self._on_timer)
        self._action = ActionServer(self, Servo, SERVO_ACTION, execute_callback=self._execute,
                                    goal_callback=self._on_goal, cancel_callback=lambda _h: CancelResponse.ACCEPT)
        self._publish(self._zero(self.session.reason))

    def _set_controller_config(self, config) -> None:  # noqa: ANN001 - the pipeline's controller config class
        # Only RUNTIME_FIELDS can differ from the running config: the controller reads them at every compute().
        self.session.controller.config = config

    def _set_loop_config(self, config: LoopConfig) -> None:
        self.session.loop.config = config  # read at every step

    # -- observations -------------------------------------------------------------------------------
    def _on_depth(self, msg: Image, goal: bool) -> None:
        try:
            depth_map = DepthMap(image_to_array(msg, ("32FC1",)), stamp_to_sec(msg.header.stamp))
        except VisualServoError as err:
            self.get_logger().warn(f"rejected relative depth: {err}", throttle_duration_sec=2.0)
            return
        keypoint_depth = self.inputs[Input.RELATIVE_DEPTH].depth  # type: ignore[attr-defined]
        (keypoint_depth.add_goal if goal else keypoint_depth.update)(depth_map)

    def _on_obs(self, msg: CorrespondencesMsg) -> None:
        try:
            obs = msg_to_correspondences(msg)
            self._observer_ms = sum(obs.info.get(k, 0.0) for k in OBSERVER_STAGES)
            if Input.RELATIVE_DEPTH in self.inputs:
                self._depth_age_ms = 1e3 * self.inputs[Input.RELATIVE_DEPTH].age_s(obs.stamp)  # type: ignore[attr-defined]
            if obs.frame_id != self.frame_id:
                raise InputError(f"observation is in frame {obs.frame_id!r}, the twist frame is {self.frame_id!r}")
            res = self.session.step(obs, clock_s=self.get_clock().now().nanoseconds * 1e-9)
        except VisualServoError as err:
            self.get_logger().warn(f"rejected correspondences: {err}", throttle_duration_sec=2.0)
            res = self._zero(f"rejected correspondences: {err}")
        except Exception as err:  # noqa: BLE001 - a bug in a controller must not leave a velocity standing
            self.get_logger().error(f"controller error: {err!r}", throttle_duration_sec=2.0)
            self.session.state = ServoState.FAILED
            res = self._zero(f"internal controller error: {err!r}")
        # A twist computed from an observation carries the image's stamp, so the bridge judges its staleness
        # from capture time: a stale image can never move the arm.
        self._publish(res, msg.header.stamp if np.any(res.v_c) else None)
        self._maybe_finish()

    def _zero(self, reason: str) -> StepResult:
        return StepResult(v_c=np.zeros(6), state=self.session.state, error=self.session.error, reason=reason,
                          step=self.session.step_count)

    def _on_timer(self) -> None:
        if self._active is not None and self._active.is_cancel_requested:
            self.session.stop("canceled")
        elif self._active is not None and time.monotonic() > self._deadline:
            self.session.state, self.session.reason = ServoState.FAILED, "servo action timed out"
        elif not self.session.check_input():
            self.get_logger().warn(self.session.reason, throttle_duration_sec=2.0)
        else:
            return
        self._publish(self._zero(self.session.reason))
        self._maybe_finish()

    # -- output -------------------------------------------------------------------------------------
    def _publish(self, res: StepResult, stamp: Time | None = None) -> None:
        twist = TwistStamped(twist=array_to_twist(res.v_c))
        twist.header.stamp = self.get_clock().now().to_msg() if stamp is None else stamp
        twist.header.frame_id = self.frame_id
        status = ServoStatus(pipeline=self.pipeline, state=int(res.state), goal_id=self.session.goal_id or "",
                             error=float(res.error), num_correspondences=res.num_valid, num_total=res.num_total,
                             step=res.step, observer_ms=float(self._observer_ms),
                             controller_ms=float(res.controller_ms), relative_depth_age_ms=self._depth_age_ms,
                             message=res.reason)
        status.header = twist.header
        status.last_command = twist.twist
        self.pub_twist.publish(twist)
        self.pub_status.publish(status)
        if self._active is not None:
            self._active.publish_feedback(Servo.Feedback(status=status))

    # -- action -------------------------------------------------------------------------------------
    def _on_goal(self, request: Servo.Goal) -> GoalResponse:
        if self._active is not None:
            self.get_logger().warn("rejecting servo request: a run is already active")
            return GoalResponse.REJECT
        if request.goal_id and self.session.goal_id and request.goal_id != self.session.goal_id:
            self.get_logger().warn(f"rejecting servo request for {request.goal_id!r}: goal is {self.session.goal_id!r}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def _execute(self, handle) -> Servo.Result:
        req = handle.request
        self._active, self._done = handle, Future()
        self._t0 = time.monotonic()
        self._deadline = self._t0 + req.timeout_s if req.timeout_s > 0 else float("inf")
        self.session.start(tolerance=req.tolerance)
        await self._done
        state = self.session.state
        result = Servo.Result(converged=state == ServoState.CONVERGED, final_error=float(self.session.error),
                              steps=self.session.step_count, duration_s=time.monotonic() - self._t0,
                              message=self.session.reason)
        if handle.is_cancel_requested:
            handle.canceled()
        elif result.converged:
            handle.succeed()
        else:
            handle.abort()
        self._active = None
        return result

    def _maybe_finish(self) -> None:
        if self._done is not None and not self._done.done() and self.session.state != ServoState.SERVOING:
            self._done.set_result(True)


def main(args: list[str] | None = None) -> None:
    spin_node(ServoControllerNode, args)


if __name__ == "__main__":
    main()
