"""Run report: summary numbers from known series, the figure, and the bag → report CLI round trip."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vs_bringup.report import RunSeries, summarize, te_rebound, write_report
from vs_common.core.errors import InputError
from vs_common.core.se3 import exp_se3, make_pose
from vs_common.ros.image import image_to_rgb
from vs_controllers.core.session import ServoState

from vs_bringup import report

GOAL = make_pose(Rotation.from_euler("x", 180, degrees=True).as_matrix(), np.array([0.0, -0.4, 0.4]))
HAND_EYE = make_pose(np.eye(3), np.array([0.0, 0.0, 0.05]))
# Start: 100 mm and 25 deg away from the goal camera pose (camera-frame offset).
OFFSET = np.array([0.06, -0.08, 0.0, 0.0, np.radians(25.0), 0.0])


def _converging_poses(n: int) -> np.ndarray:
    """TCP poses whose camera moves exponentially from GOAL·exp(OFFSET) to GOAL (camera-frame offsets)."""
    goal_cam = GOAL @ HAND_EYE
    return np.stack([goal_cam @ exp_se3(OFFSET * np.exp(-k / 8.0)) @ np.linalg.inv(HAND_EYE) for k in range(n)])


def _series(n: int = 60) -> RunSeries:
    t = np.arange(n) * 0.1
    state = np.full(n, int(ServoState.SERVOING))
    state[:3] = ServoState.IDLE
    state[-5:] = ServoState.CONVERGED
    return RunSeries(
        pipeline="ibvs", t_status=t, feature_error=0.2 * np.exp(-t), state=state, step=np.maximum(np.arange(n) - 2, 0),
        observer_ms=np.full(n, 20.0), controller_ms=np.full(n, 2.0),
        t_twist=t, v_c=np.outer(np.exp(-t), [0.05, -0.02, 0.0, 0.0, 0.1, 0.0]),
        t_pose=t, base_T_tcp=_converging_poses(n), goal_base_T_tcp=GOAL, tcp_T_cam=HAND_EYE,
        first_frame=np.zeros((48, 64, 3), np.uint8), last_frame=np.full((48, 64, 3), 200, np.uint8))


def test_camera_errors_known_values():
    te, re = _series().camera_errors()
    assert te[0] * 1e3 == pytest.approx(100.0, rel=0.02)
    assert re[0] == pytest.approx(25.0, rel=1e-6)
    assert te[-1] < te[0] * 0.01 and re[-1] < 0.25
    assert np.all(np.diff(re) < 0)


def test_hand_eye_matters():
    """Errors are those of the camera: with the wrong hand-eye the same TCP poses give another TE."""
    s = _series()
    s_wrong = _series()
    s_wrong.tcp_T_cam = np.eye(4)
    assert abs(s.camera_errors()[0][0] - s_wrong.camera_errors()[0][0]) > 1e-3


def test_summary_numbers():
    s = _series()
    out = summarize(s)
    assert out["converged"] and out["final_state"] == "CONVERGED"
    assert out["steps"] == 57
    te, re = s.camera_errors()  # "initial" = when servoing began (index 3), not the first sample
    assert out["initial_te_mm"] == pytest.approx(te[3] * 1e3) and out["initial_re_deg"] == pytest.approx(re[3])
    assert out["initial_re_deg"] == pytest.approx(25.0 * np.exp(-3 / 8.0))
    assert out["final_te_mm"] < 1.0 and out["success"] is True
    assert out["servo_duration_s"] == pytest.approx(5.5 - 0.3)
    assert out["mean_observer_ms"] == pytest.approx(20.0)
    assert out["initial_feature_error"] == pytest.approx(0.2 * np.exp(-0.3))
    failed = summarize(s, result={"converged": False, "steps": 12})
    assert failed["converged"] is False and failed["steps"] == 12


def test_te_rebound():
    # A monotone approach does not rebound; a swing through the goal rebounds by its size; far never counts.
    assert te_rebound(np.array([0.2, 0.01, 0.004, 0.002, 0.001, 0.001])) == 0.0
    swing = np.array([0.2, 0.004, 0.001, 0.0025, 0.0012, 0.0005])
    assert te_rebound(swing) == pytest.approx(0.0015)
    assert te_rebound(np.array([0.2, 0.1, 0.05])) is None
    assert te_rebound(np.array([0.2, 0.004, 0.2])) == pytest.approx(0.196)  # rises back out: the whole swing


def test_summary_rebound_covers_servoing_only():
    s = _series()
    s.base_T_tcp[:3] = GOAL  # before servoing the camera sat at the goal (as the demo captures it), then jumped away
    out = summarize(s)  # from servo start on, the run decays monotonically
    assert out["te_rebound_mm"] == pytest.approx(0.0) and out["rings"] is False
    s.base_T_tcp[30:40] = s.base_T_tcp[5]  # a swing back out to the pose of step 5 (≈ 50 mm) while servoing
    out = summarize(s)
    assert out["te_rebound_mm"] > 40.0 and out["rings"] is True
    assert summarize(RunSeries(pipeline="cns"))["te_rebound_mm"] is None


def test_summary_without_ground_truth_or_status():
    out = summarize(RunSeries(pipeline="cns"))
    assert out["ground_truth"] is False and out["final_te_mm"] is None and out["success"] is None
    assert out["converged"] is False and out["steps"] == 0


def test_write_report_files(tmp_path):
    summary = write_report(_series(), tmp_path / "run", extra={"scene": 3})
    png = tmp_path / "run" / "report.png"
    assert png.stat().st_size > 20_000
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[0] >= 600 and img.shape[1] >= 1000 and img[..., :3].std() > 0.05
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary)) and on_disk["scene"] == 3
    # An empty run still gives a figure (panels say what is missing) rather than crashing.
    write_report(RunSeries(), tmp_path / "empty")
    assert (tmp_path / "empty" / "report.png").is_file()


NO_ROS = textwrap.dedent("""
    import importlib.abc, sys
    from types import SimpleNamespace as NS

    class NoRos(importlib.abc.MetaPathFinder):  # this interpreter has no ROS: rclpy and messages fail to import
        def find_spec(self, name, path, target=None):
            top = name.split(".")[0]
            if top == "rclpy" or top.endswith(("_msgs", "_interfaces", "_srvs")):
                raise ImportError(f"No module named {name!r} (blocked)")

    sys.meta_path.insert(0, NoRos())
    from vs_bringup.report import series_from_run, summarize

    def pose(z):
        return NS(pose=NS(position=NS(x=0.0, y=0.0, z=z), orientation=NS(x=0.0, y=0.0, z=0.0, w=1.0)))

    stamp = NS(sec=0, nanosec=0)
    twist = NS(header=NS(stamp=stamp, frame_id="c"), twist=NS(linear=NS(x=0.1, y=0.0, z=0.0),
                                                             angular=NS(x=0.0, y=0.0, z=0.2)))
    image = NS(height=2, width=2, encoding="rgb8", step=6, is_bigendian=0, data=bytes(12))
    status = NS(pipeline="ibvs", state=2, error=0.001, step=3, observer_ms=1.0, controller_ms=1.0)
    run = {"/vs/servo/status": [(0.0, status)], "/vs/servo/cmd_twist": [(0.0, twist)],
           "/vs/robot/tcp_pose": [(0.0, pose(0.5)), (0.1, pose(0.4))], "/vs/run/goal_tcp_pose": [(0.0, pose(0.4))],
           "/camera/camera/color/image_raw": [(0.0, image)]}
    out = summarize(series_from_run(run))
    assert out["converged"] and out["final_te_mm"] == 0.0 and out["num_twists"] == 1, out
    print("ok")
""")


def test_report_runs_without_ros():
    """docs/demo.md: the report of a bag needs rosbags, numpy, scipy and matplotlib, not ROS."""
    res = subprocess.run([sys.executable, "-c", NO_ROS], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr[-2000:]


def test_servo_states_are_the_message_constants():
    """The report reads ServoStatus.state with the session's enum: both must name the same numbers."""
    from vs_msgs.msg import ServoStatus

    assert {s.name: int(s) for s in ServoState} == {s.name: getattr(ServoStatus, s.name) for s in ServoState}
    assert len(ServoState) == 5  # IDLE, SERVOING, CONVERGED, FAILED, PAUSED (ServoStatus.msg)


def test_image_decoding_and_match_drawing():
    class Img:  # duck-typed sensor_msgs/Image, as rosbags deserialises it
        def __init__(self, arr: np.ndarray, enc: str, pad: int = 0) -> None:
            h, w = arr.shape[:2]
            ch = 1 if arr.ndim == 2 else arr.shape[2]
            rows = np.zeros((h, w * ch + pad), np.uint8)
            rows[:, : w * ch] = arr.reshape(h, -1)
            self.height, self.width, self.encoding, self.step, self.data = h, w, enc, w * ch + pad, rows.tobytes()
            self.is_bigendian = 0

    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(image_to_rgb(Img(rgb, "rgb8", pad=3)), rgb)
    assert np.array_equal(image_to_rgb(Img(rgb[:, :, ::-1].copy(), "bgr8")), rgb)
    assert image_to_rgb(Img(rgb[:, :, 0].copy(), "mono8")).shape == (5, 7, 3)
    with pytest.raises(InputError, match="encoding"):
        image_to_rgb(Img(rgb, "16UC1"))
    canvas = np.zeros((40, 40, 3), np.uint8)
    cur = np.array([[10.0, 10.0], [np.nan, np.nan], [30.0, 30.0]])
    goal = np.array([[12.0, 10.0], [5.0, 5.0], [20.0, 30.0]])
    drawn = report.draw_matches(canvas, cur, goal, np.array([True, True, False]))
    assert drawn[10, 10].tolist() == [0, 255, 0]  # the inlier is drawn
    assert drawn[30, 30].sum() == 0  # the outlier is not
    assert canvas.sum() == 0  # input untouched


def _write_bag(path, n: int = 30) -> None:
    """A recorded-looking run: status, twists, TCP poses, goal pose, colour images + correspondences."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from rclpy import serialization as rclpy_serialization
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import Image
    from vs_bringup.recorder import vs_typestore
    from vs_common.ros.geometry import matrix_to_pose_stamped

    from vs_msgs.msg import Correspondences, ServoStatus

    def pose_msg(T: np.ndarray) -> PoseStamped:
        return matrix_to_pose_stamped(T, Time(), "base")

    store = vs_typestore()
    poses = _converging_poses(n)
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.set_custom_data("pipeline", "ibvs")
    w.set_custom_data("hand_eye_xyz", json.dumps(HAND_EYE[:3, 3].tolist()))
    w.set_custom_data("hand_eye_quat_xyzw", json.dumps([0.0, 0.0, 0.0, 1.0]))
    w.set_custom_data("action_result", json.dumps({"converged": True, "steps": n, "final_error": 0.001}))
    w.open()
    conns = {name: w.add_connection(name, typ, typestore=store) for name, typ in [
        ("/vs/servo/status", "vs_msgs/msg/ServoStatus"), ("/vs/servo/cmd_twist", "geometry_msgs/msg/TwistStamped"),
        ("/vs/robot/tcp_pose", "geometry_msgs/msg/PoseStamped"),
        ("/vs/run/goal_tcp_pose", "geometry_msgs/msg/PoseStamped"),
        ("/camera/camera/color/image_raw", "sensor_msgs/msg/Image"),
        ("/vs/perception/correspondences", "vs_msgs/msg/Correspondences")]}

    def put(topic: str, k: int, msg) -> None:
        w.write(conns[topic], 1_000_000_000 + k * 40_000_000, rclpy_serialization.serialize_message(msg))

    put("/vs/run/goal_tcp_pose", 0, pose_msg(GOAL))
    for k in range(n):
        state = ServoStatus.CONVERGED if k == n - 1 else ServoStatus.SERVOING
        put("/vs/servo/status", k, ServoStatus(pipeline="ibvs", state=state, step=k + 1, error=0.1 * 0.8 ** k,
                                               observer_ms=15.0, controller_ms=1.0))
        tw = TwistStamped()
        tw.twist.angular.y = 0.1 * 0.8 ** k
        put("/vs/servo/cmd_twist", k, tw)
        put("/vs/robot/tcp_pose", k, pose_msg(poses[k]))
        if k in (0, n - 1):
            put("/camera/camera/color/image_raw", k, Image(height=40, width=40, encoding="rgb8", step=120,
                                                           data=bytes(40 * 40 * 3)))
            put("/vs/perception/correspondences", k, Correspondences(
                width=40, height=40, goal_uv=[5.0, 5.0, 30.0, 30.0], current_uv=[10.0, 10.0, 28.0, 30.0],
                goal_index=[0, 1], score=[1.0, 1.0], inlier=[True, True]))
    w.close()


def test_report_cli_from_bag(tmp_path, capsys):
    run_dir = tmp_path / "20260101_000000_ibvs"
    run_dir.mkdir()
    _write_bag(run_dir / "bag")
    assert report.main([str(run_dir)]) == 0
    assert "converged=True" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["pipeline"] == "ibvs" and summary["steps"] == 30
    assert summary["initial_te_mm"] == pytest.approx(100.0, rel=0.02)
    assert summary["final_re_deg"] == pytest.approx(25.0 * np.exp(-29 / 8.0), rel=1e-3)
    assert summary["action_result"]["final_error"] == pytest.approx(0.001)
    assert (run_dir / "report.png").stat().st_size > 20_000
    from vs_bringup.recorder import read_run

    series = report.series_from_run(read_run(run_dir / "bag"))
    assert series.last_frame is not None and series.last_frame[10, 10].tolist() == [0, 255, 0]


def test_report_cli_errors(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "no single rosbag2 bag" in capsys.readouterr().err
