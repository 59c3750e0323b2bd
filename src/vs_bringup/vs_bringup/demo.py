"""The simulated servo demo (``make demo``): the whole ROS 2 graph in one process against the PyBullet cell.

    python -m vs_bringup.demo [--pipeline ibvs] [--env render] [--scene ID] [--out runs/]

What it does, as a user would by hand with ``ros2 launch`` + ``ros2 service call`` + ``ros2 action send_goal``:

1. composes the nodes of ``servo.launch.py use_sim:=true`` (same node set, same YAML parameters, via
   :mod:`vs_bringup.launch_logic`) in one process: a private rclpy Context, a MultiThreadedExecutor,
   DDS discovery kept on this host, the robot bridge with a simulated backend owned by the demo, on an
   executor thread of its own (see :class:`DemoGraph`);
2. with the simulated arm at the goal view, calls ``/vs/perception/set_goal`` (SOURCE_CURRENT_FRAME) and
   publishes the goal TCP pose (``/vs/run/goal_tcp_pose``, latched: the ground truth of the run);
3. moves the simulated camera away from the goal (an orbit about the viewed point: ``--rotation-deg``
   about a tilted axis, which also translates the camera by more than 10 cm);
4. sends the ``/vs/servo/servo`` action, printing its feedback, and waits for the result;
5. records the run (MCAP, :class:`~vs_bringup.recorder.RunRecorder`) and writes
   ``runs/<stamp>_<pipeline>/{bag/, report.png, summary.json}`` by replaying the bag
   (:func:`vs_bringup.report.report_from_bag`), then prints the final TE / RE.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, NotReadyError, VisualServoError
from vs_common.core.frames import BASE_FRAME
from vs_common.core.orbit import DEFAULT_ORBIT_AXIS, orbit_offset
from vs_common.core.se3 import invert, pose_error, pose_from_xyz_quat
from vs_common.core.topics import SERVO_ACTION, SET_GOAL
from vs_controllers.core.pipelines import get_pipeline, resolve

from vs_bringup import launch_logic as L
from vs_bringup import topics as T


@dataclass(frozen=True)
class DemoConfig:
    """One demo run."""

    pipeline: str = describe(f"Pipeline, one of {list(L.PIPELINES)}.", default="ibvs")
    env: str = describe(f"Simulated environment, one of {list(L.ENVS)}.", default="render")
    scene: str = describe("Scene id ('' = the environment's first scene).", default="")
    observer: str = describe(f"Keypoint detector, one of {list(L.OBSERVERS)} ('auto' = the pipeline file's).",
                             default="auto")
    out: str = describe("Folder the run folder <stamp>_<pipeline>/ is written into.", default="runs")
    rotation_deg: float = describe("Initial rotation away from the goal view (deg).", default=25.0)
    axis: tuple[float, float, float] = describe(
        "Rotation axis of the initial offset, camera frame (normalised); tilts and rolls the view.",
        default=DEFAULT_ORBIT_AXIS)
    timeout_s: float = describe("Servo action timeout (s).", default=180.0)
    image_rate_hz: float = describe("Rate cap of recorded images (Hz); keeps the bag small (the last frame is "
                                    "always kept).", default=0.5)
    domain_id: int = describe("ROS domain id of the run (ROS_DOMAIN_ID when set).", default=0)
    threads: int = describe("Executor threads.", default=4)

    def __post_init__(self) -> None:
        check_choice("pipeline", self.pipeline, L.PIPELINES)
        check_choice("env", self.env, L.ENVS)
        check_choice("observer", self.observer, L.OBSERVERS)
        check_range("rotation_deg", self.rotation_deg, 0.0, 90.0)
        if len(self.axis) != 3 or float(np.linalg.norm(self.axis)) < 1e-6:
            raise ConfigError(f"axis must be a non-zero 3-vector, got {self.axis!r}")
        check_range("timeout_s", self.timeout_s, 0.0, lo_open=True)
        check_range("image_rate_hz", self.image_rate_hz, 0.0)
        check_range("domain_id", self.domain_id, 0, 232)
        check_range("threads", self.threads, 2, 64)


def as_ros_parameters(values: dict[str, Any]) -> list:
    """``{name: value}`` → rclpy ``Parameter`` list for ``parameter_overrides`` (types inferred)."""
    from rclpy.parameter import Parameter

    out = []
    for name, value in values.items():
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, list) and value and all(isinstance(x, (int, float)) for x in value) \
                and any(isinstance(x, float) for x in value):
            value = [float(x) for x in value]  # YAML [0, 0.5] must be a double array, not a mixed list
        out.append(Parameter(name, value=value))
    return out


def _wait(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise NotReadyError(f"timed out after {timeout:.0f} s waiting for {what}")


def _wait_future(future: Any, timeout: float, what: str) -> Any:
    _wait(future.done, timeout, what)
    return future.result()


class DemoGraph:
    """The composed graph of one demo run: nodes, executor threads, the simulated arm and the recorder.

    The robot bridge spins on its own single-threaded executor. On the shared MultiThreadedExecutor its
    125 Hz control tick queued behind renders, detections and network steps (and their garbage), and the
    simulated arm's watchdog (then 1 Hz; 0.5 Hz now) — which, like the UR's, stops the program when the bridge
    falls silent — tripped on a loaded 2-core machine (tick gaps of 0.35-0.55 s measured in the test suite, > 1 s
    at times).
    With ``ros2 launch`` every node is a process of its own, so this only concerns the in-process demo.
    """

    def __init__(self, cfg: DemoConfig, run_dir: Path) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

        from vs_bringup.recorder import RunRecorder

        self.cfg = cfg
        args = L.LaunchArgs(pipeline=cfg.pipeline, use_sim=True, observer=cfg.observer, scene=cfg.scene,
                            env=cfg.env)
        self.params = {s.name: L.resolve_parameters(s) for s in L.node_specs(args)}
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=cfg.domain_id)
        self.nodes: list = []
        self.executor = MultiThreadedExecutor(num_threads=cfg.threads, context=self.ctx)
        self.bridge_executor = SingleThreadedExecutor(context=self.ctx)
        self._threads: list[threading.Thread] = []
        try:
            self._compose()
            xyz, quat = L.bridge_hand_eye()
            detector = self.params.get("observer", {}).get("detector", cfg.observer)  # observer=auto → the file's
            custom = {"pipeline": cfg.pipeline, "env": cfg.env, "scene": cfg.scene, "observer": detector,
                      "hand_eye_xyz": json.dumps(xyz), "hand_eye_quat_xyzw": json.dumps(quat)}
            topics = T.run_topics(cfg.pipeline, cfg.image_rate_hz, with_color=False)
            self.recorder = RunRecorder(self.ctx, topics,
                                        run_dir / "bag", custom_data=custom)
            self.executor.add_node(self.recorder.node)
        except BaseException:
            self.close()
            raise

    def _compose(self) -> None:
        from geometry_msgs.msg import PoseStamped
        from rclpy.action import ActionClient
        from rclpy.node import Node
        from vs_common.ros.qos import LATCHED_QOS
        from vs_controllers.nodes.servo_controller import ServoControllerNode
        from vs_robot_bridge.core.config import SimBackendConfig
        from vs_robot_bridge.core.sim_backend import SimBackend
        from vs_robot_bridge.nodes.robot_bridge import RobotBridgeNode
        from vs_sim.nodes.sim_camera import SimCameraNode

        from vs_msgs.action import Servo
        from vs_msgs.srv import SetGoal

        def kw(name: str) -> dict[str, Any]:
            return {"context": self.ctx, "parameter_overrides": as_ros_parameters(self.params[name])}

        bridge_params = self.params["robot_bridge"]
        sim_cfg = SimBackendConfig(**{k.split(".", 1)[1]: (tuple(v) if isinstance(v, list) else v)
                                      for k, v in bridge_params.items() if k.startswith("sim.")})
        # The demo owns the simulated arm so it can place the camera at the start view (see start_from()).
        self.arm = SimBackend(sim_cfg)
        camera_kw = kw("camera")
        # One process for the whole graph: render in a child so PyBullet's GIL-holding renderer does not stall
        # the observer, the controller and the bridge (docs/demo.md, "Timing in the one-process demo").
        camera_kw["parameter_overrides"] += as_ros_parameters({"render_in_child_process": True})
        self.camera = SimCameraNode(**camera_kw)
        self.nodes.append(self.camera)
        # The perception nodes of the pipeline's spec, as the launch file starts them (launch_logic.node_specs).
        for role in get_pipeline(self.cfg.pipeline).nodes:
            self.nodes.append(resolve(L.PERCEPTION_NODES[role].node_class)(**kw(role)))
        self.nodes.append(ServoControllerNode(**kw("servo_controller")))
        xyz, quat = L.bridge_hand_eye()
        self.tcp_T_cam = pose_from_xyz_quat(xyz, quat)
        # The arm starts at the scene's goal view and the workspace box holds it: launch_logic's
        # sim_start_overrides (sim.initial_*, safety.workspace_*), as under ros2 launch use_sim:=true.
        self.bridge = RobotBridgeNode(backend=self.arm, **kw("robot_bridge"))
        self.nodes.append(self.bridge)
        self.client = Node("demo", context=self.ctx)
        self.nodes.append(self.client)
        self.set_goal_client = self.client.create_client(SetGoal, SET_GOAL)
        self.servo_client = ActionClient(self.client, Servo, SERVO_ACTION)
        self.goal_pose_pub = self.client.create_publisher(PoseStamped, T.GOAL_TCP_POSE, LATCHED_QOS)
        for node in self.nodes:
            self._executor_of(node).add_node(node)

    def _executor_of(self, node: Any) -> Any:
        """The robot bridge's own executor for the bridge, the shared one for every other node."""
        return self.bridge_executor if node is getattr(self, "bridge", None) else self.executor

    # -- running ----------------------------------------------------------------------------------------
    def start(self) -> None:
        from rclpy.lifecycle import TransitionCallbackReturn

        self._threads = [threading.Thread(target=ex.spin, name=name, daemon=True)
                         for ex, name in ((self.bridge_executor, "demo-bridge"), (self.executor, "demo-executor"))]
        for thread in self._threads:
            thread.start()
        if self.bridge.trigger_configure() != TransitionCallbackReturn.SUCCESS or \
                self.bridge.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise VisualServoError("the robot bridge did not configure / activate (see its log)")

    def wait_for_frames(self, n: int, timeout: float = 60.0) -> Any:
        """Wait until the simulated camera has rendered ``n`` new frames; return the last one."""
        seen = [self.camera.last_frame]
        count = [0]

        def new_frames() -> bool:
            frame = self.camera.last_frame
            if frame is not None and frame is not seen[0]:
                seen[0] = frame
                count[0] += 1
            return count[0] >= n

        _wait(new_frames, timeout, f"{n} frames from the simulated camera")
        return seen[0]

    def capture_goal(self) -> tuple[str, np.ndarray, float]:
        """SetGoal(SOURCE_CURRENT_FRAME) at the current view; returns goal id, goal TCP pose, viewed distance."""
        from vs_common.ros.geometry import matrix_to_pose_stamped

        from vs_msgs.srv import SetGoal

        goal_tcp = self.arm.base_T_tcp.copy()
        self.wait_for_camera_at(goal_tcp)
        frame = self.wait_for_frames(2)
        depth = getattr(frame, "depth", None)
        finite = depth[np.isfinite(depth) & (depth > 0)] if depth is not None else np.zeros(0)
        distance = float(np.median(finite)) if finite.size else 0.4
        if "goal" not in get_pipeline(self.cfg.pipeline).nodes:
            return "", goal_tcp, distance  # no goal image (KOVIS: the task is in its training data)
        _wait(self.set_goal_client.service_is_ready, 30.0, f"the {SET_GOAL} service")
        for attempt in range(5):  # the goal node may not have its first frame / camera_info yet
            req = SetGoal.Request(source=SetGoal.Request.SOURCE_CURRENT_FRAME)
            resp = _wait_future(self.set_goal_client.call_async(req), 60.0, "SetGoal")
            if resp.success:
                break
            print(f"[demo] SetGoal attempt {attempt + 1}: {resp.message}", flush=True)
            self.wait_for_frames(2)
        else:
            raise VisualServoError(f"SetGoal failed: {resp.message}")
        stamp = self.client.get_clock().now().to_msg()
        self.goal_pose_pub.publish(matrix_to_pose_stamped(goal_tcp, stamp, BASE_FRAME))
        print(f"[demo] goal {resp.goal_id!r}: {resp.num_keypoints} keypoints, scene at {distance:.3f} m", flush=True)
        return resp.goal_id, goal_tcp, distance

    def start_from(self, base_T_tcp: np.ndarray) -> None:
        """Place the simulated arm at ``base_T_tcp`` (at rest) and wait for views rendered from there."""
        self.arm.base_T_tcp = np.array(base_T_tcp, dtype=float)  # the sim backend's public pose state
        self.wait_for_camera_at(base_T_tcp)
        self.wait_for_frames(2)

    def wait_for_camera_at(self, base_T_tcp: np.ndarray, timeout: float = 30.0) -> None:
        """Wait until the simulated camera renders from ``base_T_tcp`` (it follows /vs/robot/tcp_pose)."""
        def there() -> bool:
            seen = self.camera.base_T_tcp
            return seen is not None and max(pose_error(seen, base_T_tcp)) < 1e-3
        _wait(there, timeout, "the simulated camera to follow the arm")

    def servo(self, goal_id: str) -> dict[str, Any]:
        """Send the Servo action, print feedback about once a second, return the result as a dict."""
        from vs_msgs.action import Servo

        if not self.servo_client.wait_for_server(timeout_sec=30.0):
            raise NotReadyError(f"the {SERVO_ACTION} action server is not available")
        last = [0.0]

        def on_feedback(fb: Any) -> None:
            s = fb.feedback.status
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                print(f"[demo] step {s.step:4d}  error {s.error:.5f}  matches {s.num_correspondences:3d}/"
                      f"{s.num_total:<4d} observer {s.observer_ms:5.1f} ms  {s.message}", flush=True)

        goal = Servo.Goal(goal_id=goal_id, tolerance=0.0, timeout_s=float(self.cfg.timeout_s))
        handle = _wait_future(self.servo_client.send_goal_async(goal, feedback_callback=on_feedback), 30.0,
                              "the Servo goal to be accepted")
        if not handle.accepted:
            raise VisualServoError("the servo controller rejected the Servo goal")
        res = _wait_future(handle.get_result_async(), self.cfg.timeout_s + 30.0, "the Servo result").result
        return {"converged": bool(res.converged), "final_error": float(res.final_error), "steps": int(res.steps),
                "duration_s": float(res.duration_s), "message": res.message}

    def close(self) -> None:
        """Finish the bag, stop the arm, tear the graph down. Idempotent."""
        # Jazzy's Executor.shutdown() does not wait for callbacks in flight (its wait is skipped): take the
        # nodes out first so nothing new starts, let running callbacks (a render, a detection) finish, then
        # shut down and drain the MultiThreadedExecutor's pool before destroying anything they use.
        recorder = getattr(self, "recorder", None)
        for node in [*self.nodes, *([recorder.node] if recorder is not None else [])]:
            self._executor_of(node).remove_node(node)
        if self._threads:
            time.sleep(0.5)
        if recorder is not None:
            recorder.close()
        bridge = getattr(self, "bridge", None)
        if bridge is not None and bridge.core is not None:
            bridge.core.cleanup()  # speedStop + disconnect, as the bridge's own main() does on exit
        self.executor.shutdown(timeout_sec=5.0)
        self.bridge_executor.shutdown(timeout_sec=5.0)
        for thread in self._threads:
            thread.join(timeout=5.0)
        pool = getattr(self.executor, "_executor", None)
        if pool is not None:
            pool.shutdown(wait=True)
        for node in self.nodes:
            node.destroy_node()
        self.nodes = []
        self.ctx.try_shutdown()


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run one demo; return the summary written to ``<out>/<stamp>_<pipeline>/summary.json``."""
    from vs_bringup.report import report_from_bag

    run_dir = Path(cfg.out) / f"{time.strftime('%Y%m%d_%H%M%S')}_{cfg.pipeline}"
    run_dir.mkdir(parents=True, exist_ok=False)
    print(f"[demo] {cfg.pipeline} in the simulated cell ({cfg.env}, scene {cfg.scene or 'default'}), "
          f"domain {cfg.domain_id}, run folder {run_dir}", flush=True)
    t_start = time.monotonic()
    try:
        graph = DemoGraph(cfg, run_dir)
    except BaseException:
        if not any(run_dir.iterdir()):
            run_dir.rmdir()  # leave no empty run folder behind
        raise
    # Everything imported and built so far lives as long as the run: keep it out of the collector's full
    # passes, which otherwise grow to 0.2-0.5 s (all threads wait on them) in a process holding torch + PyG.
    gc.collect()
    gc.freeze()
    try:
        graph.start()
        goal_id, goal_tcp, distance = graph.capture_goal()
        goal_cam = goal_tcp @ graph.tcp_T_cam
        start_cam = orbit_offset(goal_cam, distance, cfg.rotation_deg, cfg.axis)
        te0, re0 = pose_error(goal_cam, start_cam)
        graph.start_from(start_cam @ invert(graph.tcp_T_cam))
        print(f"[demo] start: {te0 * 1e3:.0f} mm and {re0:.1f} deg from the goal view; servoing", flush=True)
        result = graph.servo(goal_id)
        final_tcp = graph.arm.base_T_tcp.copy()
        te, re = pose_error(goal_cam, final_tcp @ graph.tcp_T_cam)
        graph.recorder.set_custom_data("action_result", json.dumps(result))
    finally:
        graph.close()
        gc.unfreeze()
    summary = report_from_bag(run_dir)
    summary.update({"direct_final_te_mm": te * 1e3, "direct_final_re_deg": re, "start_te_mm": te0 * 1e3,
                    "start_re_deg": re0, "wall_time_s": time.monotonic() - t_start,
                    "bag_mb": sum(p.stat().st_size for p in (run_dir / "bag").iterdir()) / 1e6,
                    "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"[demo] {'converged' if result['converged'] else 'NOT converged'} after {result['steps']} steps "
          f"({result['duration_s']:.1f} s): final TE {te * 1e3:.2f} mm, RE {re:.3f} deg "
          f"(start {te0 * 1e3:.0f} mm, {re0:.1f} deg)", flush=True)
    print(f"[demo] wrote {run_dir}/report.png, summary.json and bag/ ({summary['bag_mb']:.1f} MB)", flush=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (``make demo``)."""
    parser = argparse.ArgumentParser(prog="python -m vs_bringup.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="ibvs", choices=L.PIPELINES)
    parser.add_argument("--env", default="render", choices=L.ENVS)
    parser.add_argument("--scene", default="", help="scene id ('' = the first)")
    parser.add_argument("--observer", default="auto", choices=L.OBSERVERS,
                        help="keypoint detector; auto = the pipeline's parameter file (CNS: sift, IBVS: akaze)")
    parser.add_argument("--out", default="runs", help="parent folder of the run folder")
    parser.add_argument("--rotation-deg", type=float, default=25.0, help="initial rotation away from the goal")
    parser.add_argument("--timeout", type=float, default=180.0, help="servo timeout (s)")
    parser.add_argument("--image-rate", type=float, default=0.5, help="rate cap of recorded images (Hz)")
    a = parser.parse_args(argv)
    # Before rclpy initialises DDS: a demo talks to itself only.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        cfg = DemoConfig(pipeline=a.pipeline, env=a.env, scene=a.scene, observer=a.observer, out=a.out,
                         rotation_deg=a.rotation_deg, timeout_s=a.timeout, image_rate_hz=a.image_rate,
                         domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0") or 0))
        summary = run_demo(cfg)
    except VisualServoError as exc:
        print(f"[demo] error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"[demo] error: a part of the graph is missing ({exc}); run `make setup`", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0 if summary.get("converged") else 1


if __name__ == "__main__":
    sys.exit(main())
