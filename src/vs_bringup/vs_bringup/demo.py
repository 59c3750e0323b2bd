"""The simulated servo demo (``make demo``): the ROS 2 graph of ``ros2 launch`` against the PyBullet cell.

    python -m vs_bringup.demo [--pipeline ibvs] [--env render] [--scene ID] [--out runs/]

What it does, as a user would by hand with ``ros2 launch`` + ``ros2 service call`` + ``ros2 action send_goal``:

1. starts the nodes of ``servo.launch.py use_sim:=true`` (the same node set from the pipeline's spec, the
   same executables and YAML parameters, via :mod:`vs_bringup.launch_logic`), each in its own process, on
   domain ``ROS_DOMAIN_ID`` with DDS discovery kept on this host (see :class:`DemoGraph`);
2. with the simulated arm at the goal view, calls ``/vs/perception/set_goal`` (SOURCE_CURRENT_FRAME) and
   publishes the goal TCP pose (``/vs/run/goal_tcp_pose``, latched: the ground truth of the run);
3. moves the simulated camera away from the goal with ``/vs/sim/orbit`` (``--rotation-deg`` about a tilted
   axis, about the viewed point, which also translates the camera by more than 10 cm);
4. sends the ``/vs/servo/servo`` action, printing its feedback, and waits for the result;
5. records the run (MCAP, :class:`~vs_bringup.recorder.RunRecorder`) and writes
   ``runs/<stamp>_<pipeline>/{bag/, report.png, summary.json, logs/, params/}`` by replaying the bag
   (:func:`vs_bringup.report.report_from_bag`), then prints the final TE / RE, the loop rate and the
   command latency (:mod:`vs_bringup.latency`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from vs_common.core.camera import median_depth_m
from vs_common.core.config import check_choice, check_range, describe
from vs_common.core.errors import ConfigError, NotReadyError, VisualServoError
from vs_common.core.frames import BASE_FRAME
from vs_common.core.orbit import DEFAULT_ORBIT_AXIS
from vs_common.core.se3 import invert, pose_error, pose_from_xyz_quat
from vs_common.core.topics import SERVO_ACTION, SET_GOAL, SIM_ORBIT
from vs_controllers.core.pipelines import get_pipeline

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
    """The graph of one demo run: the launch file's nodes, each in a process of its own, and the demo's client.

    Every node of ``servo.launch.py use_sim:=true`` (:func:`vs_bringup.launch_logic.node_specs`: the same
    executables, parameter files and overrides, the bridge autostarting its simulated arm) runs as
    launch_ros would start it (:func:`~vs_bringup.launch_logic.node_command`), so the loop runs at the nodes'
    own rate: no GIL shared with the renderer. The demo's process holds only its client node and the
    recorder. The arm is moved to the start view with ``/vs/sim/orbit`` and read from ``/vs/robot/tcp_pose``,
    as a user of ``ros2 launch`` would. Node logs go to ``<run>/logs/<node>.log``.
    """

    def __init__(self, cfg: DemoConfig, run_dir: Path) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from vs_bringup.recorder import RunRecorder

        self.cfg = cfg
        args = L.LaunchArgs(pipeline=cfg.pipeline, use_sim=True, observer=cfg.observer, scene=cfg.scene,
                            env=cfg.env)
        self.specs = L.node_specs(args)
        self.params = {s.name: L.resolve_parameters(s) for s in self.specs}
        self.run_dir = run_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list[Any] = []
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=cfg.domain_id)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self._thread: threading.Thread | None = None
        self.recorder = None
        try:
            self._client()
            xyz, quat = L.bridge_hand_eye()
            self.tcp_T_cam = pose_from_xyz_quat(xyz, quat)
            # observer=auto → the pipeline file's detector
            detector = self.params.get("observer", {}).get(L.DETECTOR_PARAMETER, cfg.observer)
            custom = {"pipeline": cfg.pipeline, "env": cfg.env, "scene": cfg.scene, "observer": detector,
                      "hand_eye_xyz": json.dumps(xyz), "hand_eye_quat_xyzw": json.dumps(quat)}
            topics = [*T.run_topics(cfg.pipeline, cfg.image_rate_hz, with_color=False),
                      T.TopicSpec(T.DIAGNOSTICS, "diagnostic_msgs/msg/DiagnosticArray", "reliable")]
            self.recorder = RunRecorder(self.ctx, topics, run_dir / "bag", custom_data=custom)
            self.executor.add_node(self.recorder.node)
        except BaseException:
            self.close()
            raise

    def _client(self) -> None:
        from geometry_msgs.msg import PoseStamped
        from rclpy.action import ActionClient
        from rclpy.node import Node
        from sensor_msgs.msg import CameraInfo, Image
        from vs_common.ros.qos import LATCHED_QOS, SENSOR_QOS

        from vs_msgs.action import Servo
        from vs_msgs.msg import RobotStatus
        from vs_msgs.srv import SetGoal, SimOrbit

        self.client = Node("demo", context=self.ctx)
        self.set_goal_client = self.client.create_client(SetGoal, SET_GOAL)
        self.orbit_client = self.client.create_client(SimOrbit, SIM_ORBIT)
        self.servo_client = ActionClient(self.client, Servo, SERVO_ACTION)
        self.goal_pose_pub = self.client.create_publisher(PoseStamped, T.GOAL_TCP_POSE, LATCHED_QOS)
        self.tcp: tuple[float, np.ndarray] | None = None  # (stamp s, base_T_tcp) of the newest /vs/robot/tcp_pose
        self.frame_stamps: list[float] = []  # image stamps (s) of the camera frames seen (camera_info)
        self.depth: Any = None  # the newest aligned depth image
        self.bridge_state = ""
        sub = self.client.create_subscription
        sub(PoseStamped, T.TCP_POSE, self._on_tcp, 10)
        sub(CameraInfo, T.COLOR_INFO, lambda m: self.frame_stamps.append(_stamp_s(m.header.stamp)), SENSOR_QOS)
        sub(Image, T.ALIGNED_DEPTH, lambda m: setattr(self, "depth", m), SENSOR_QOS)
        sub(RobotStatus, T.ROBOT_STATUS, lambda m: setattr(self, "bridge_state", m.state), LATCHED_QOS)
        self.executor.add_node(self.client)

    def _on_tcp(self, msg: Any) -> None:
        from vs_common.ros.geometry import pose_to_matrix

        self.tcp = (_stamp_s(msg.header.stamp), pose_to_matrix(msg))

    # -- running ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every node's process and the demo's executor; wait until the bridge is active."""
        self._thread = threading.Thread(target=self.executor.spin, name="demo-executor", daemon=True)
        self._thread.start()
        env = {**os.environ, "ROS_DOMAIN_ID": str(self.cfg.domain_id), "PYTHONUNBUFFERED": "1",
               "RCUTILS_COLORIZED_OUTPUT": "0"}
        logs, params = self.run_dir / "logs", self.run_dir / "params"
        logs.mkdir()
        params.mkdir()
        for spec in self.specs:
            exe = L.executable_path(spec.package, spec.executable)
            if exe is None:
                raise NotReadyError(f"{spec.package} {spec.executable} is not installed (ros2 run would not find "
                                    "it): run `make setup` and source the workspace (.venv/setup.bash)")
            over = None
            if spec.overrides:
                over = params / f"{spec.name}.yaml"
                over.write_text(L.overrides_yaml(spec))
            log = open(logs / f"{spec.name}.log", "w")  # noqa: SIM115 - closed in close()
            self._logs.append(log)
            self.procs[spec.name] = subprocess.Popen(L.node_command(spec, exe, over), env=env, stdout=log,
                                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.wait(lambda: self.bridge_state == "active" and self.tcp is not None, 120.0,
                  "the robot bridge to activate")

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        """:func:`_wait`, failing at once (with the log's tail) when a node's process has ended."""
        def done() -> bool:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    tail = (self.run_dir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                    raise VisualServoError(f"node {name} exited with status {proc.returncode} while waiting for "
                                           f"{what}: " + " | ".join(tail))
            return cond()
        _wait(done, timeout, what)

    def wait_for_frames(self, n: int, after_s: float = -math.inf, timeout: float = 60.0) -> None:
        """Wait until the camera has published ``n`` frames stamped after ``after_s`` (s)."""
        self.wait(lambda: sum(t > after_s for t in self.frame_stamps[-2 * n - 5:]) >= n, timeout,
                  f"{n} frames from the simulated camera")

    def capture_goal(self) -> tuple[str, np.ndarray, float]:
        """SetGoal(SOURCE_CURRENT_FRAME) at the current view; returns goal id, goal TCP pose, viewed distance."""
        from vs_common.ros.geometry import matrix_to_pose_stamped
        from vs_common.ros.image import image_to_depth_m

        from vs_msgs.srv import SetGoal

        assert self.tcp is not None  # start() waited for it
        stamp_s, goal_tcp = self.tcp
        self.wait_for_frames(2, after_s=stamp_s)  # rendered from the goal view (the arm is at rest there)
        self.wait(lambda: self.depth is not None, 30.0, "an aligned depth frame")
        distance = median_depth_m(image_to_depth_m(self.depth)) or 0.4
        if "goal" not in get_pipeline(self.cfg.pipeline).nodes:
            return "", goal_tcp, distance  # no goal image (KOVIS: the task is in its training data)
        self.wait(self.set_goal_client.service_is_ready, 60.0, f"the {SET_GOAL} service")
        for attempt in range(15):  # the goal node may not be matched with the camera yet (discovery under load)
            req = SetGoal.Request(source=SetGoal.Request.SOURCE_CURRENT_FRAME)
            resp = _wait_future(self.set_goal_client.call_async(req), 60.0, "SetGoal")
            if resp.success:
                break
            print(f"[demo] SetGoal attempt {attempt + 1}: {resp.message}", flush=True)
            time.sleep(1.0)
            self.wait_for_frames(2)
        else:
            raise VisualServoError(f"SetGoal failed: {resp.message}")
        stamp = self.client.get_clock().now().to_msg()
        self.goal_pose_pub.publish(matrix_to_pose_stamped(goal_tcp, stamp, BASE_FRAME))
        print(f"[demo] goal {resp.goal_id!r}: {resp.num_keypoints} keypoints, scene at {distance:.3f} m", flush=True)
        return resp.goal_id, goal_tcp, distance

    def orbit(self, distance: float) -> np.ndarray:
        """``/vs/sim/orbit`` by the demo's offset about the point ``distance`` ahead; returns the start camera pose
        (base frame) once views rendered from there arrive."""
        from vs_common.ros.geometry import pose_to_matrix

        from vs_msgs.srv import SimOrbit

        self.wait(self.orbit_client.service_is_ready, 30.0, f"the {SIM_ORBIT} service")
        req = SimOrbit.Request(angle_deg=float(self.cfg.rotation_deg), axis=[float(x) for x in self.cfg.axis],
                               distance_m=float(distance))
        resp = _wait_future(self.orbit_client.call_async(req), 30.0, "SimOrbit")
        if not resp.success:
            raise VisualServoError(resp.message)
        start_cam = pose_to_matrix(resp.camera_pose)
        start_tcp = start_cam @ invert(self.tcp_T_cam)

        def there() -> bool:
            return self.tcp is not None and max(pose_error(self.tcp[1], start_tcp)) < 1e-3
        self.wait(there, 30.0, "the arm at the start view")
        assert self.tcp is not None
        self.wait_for_frames(2, after_s=self.tcp[0])
        return start_cam

    def final_tcp(self, timeout: float = 3.0) -> np.ndarray:
        """The TCP pose once the arm has stopped (two poses 0.2 s apart within 1e-5), or after ``timeout``."""
        assert self.tcp is not None
        deadline, last = time.monotonic() + timeout, self.tcp[1]
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.tcp[1]
            if max(pose_error(now, last)) < 1e-5:
                break
            last = now
        return self.tcp[1].copy()

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
        """Finish the bag, end every node (SIGINT: the bridge stops the arm; SIGKILL after 15 s). Idempotent."""
        if self.recorder is not None:
            self.executor.remove_node(self.recorder.node)
            self.recorder.close()
            self.recorder = None
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10.0)
        self.procs = {}
        for log in self._logs:
            log.close()
        self._logs = []
        self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.ctx.try_shutdown()


def _stamp_s(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run one demo; return the summary written to ``<out>/<stamp>_<pipeline>/summary.json``."""
    from vs_bringup.latency import latency_line, run_latency
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
    try:
        graph.start()
        goal_id, goal_tcp, distance = graph.capture_goal()
        goal_cam = goal_tcp @ graph.tcp_T_cam
        start_cam = graph.orbit(distance)
        te0, re0 = pose_error(goal_cam, start_cam)
        print(f"[demo] start: {te0 * 1e3:.0f} mm and {re0:.1f} deg from the goal view; servoing", flush=True)
        result = graph.servo(goal_id)
        te, re = pose_error(goal_cam, graph.final_tcp() @ graph.tcp_T_cam)
        assert graph.recorder is not None
        graph.recorder.set_custom_data("action_result", json.dumps(result))
    finally:
        graph.close()
    summary = report_from_bag(run_dir)
    latency = run_latency(run_dir / "bag")
    rate = result["steps"] / result["duration_s"] if result["duration_s"] > 0 else float("nan")
    summary.update({"direct_final_te_mm": te * 1e3, "direct_final_re_deg": re, "start_te_mm": te0 * 1e3,
                    "start_re_deg": re0, "wall_time_s": time.monotonic() - t_start, "latency_ms": latency,
                    "loop_rate_hz": rate,
                    "bag_mb": sum(p.stat().st_size for p in (run_dir / "bag").iterdir()) / 1e6,
                    "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"[demo] {'converged' if result['converged'] else 'NOT converged'} after {result['steps']} steps "
          f"({result['duration_s']:.1f} s): final TE {te * 1e3:.2f} mm, RE {re:.3f} deg "
          f"(start {te0 * 1e3:.0f} mm, {re0:.1f} deg)", flush=True)
    print(f"[demo] loop {rate:.1f} Hz; {latency_line(latency)}", flush=True)
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
    # The nodes run in sessions of their own: a SIGTERM must unwind through DemoGraph.close() to end them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
