"""Every message conversion under any input (hypothesis, issue #17): a clean value or a clear InputError.

Any float (NaN, ±inf, ±1.79e308), any array length, any stamp (sec over int32, nanosec over uint32) goes
into the decoders of vs_common (stamps, images, camera_info, depth), vs_robot_bridge (twists, poses,
status) and vs_perception (correspondences, keypoints, goals). Each either returns values that are
finite where they must be (a stamp, a pose) or raises InputError with a reason; no other exception.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.ros  # real ROS messages (no DDS)

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from vs_common.core.camera import CameraModel  # noqa: E402
from vs_common.core.errors import InputError  # noqa: E402
from vs_common.ros.geometry import (  # noqa: E402
    array_to_twist,
    matrix_to_pose_stamped,
    pose_to_matrix,
    twist_stamped_to_array,
)
from vs_common.ros.image import (  # noqa: E402
    ENCODINGS,
    array_to_image,
    camera_info_to_model,
    depth_to_metres,
    image_to_array,
    sec_to_stamp,
    stamp_to_sec,
)
from vs_perception.core.types import Correspondences  # noqa: E402
from vs_perception.ros.conversions import (  # noqa: E402
    correspondences_to_msg,
    msg_to_correspondences,
    msg_to_features,
    msg_to_goal,
)
from vs_robot_bridge.core.bridge import BridgeStatus  # noqa: E402
from vs_robot_bridge.core.types import BridgeState, RobotState  # noqa: E402
from vs_robot_bridge.ros.conversions import status_to_diagnostics, status_to_msg  # noqa: E402

from vs_msgs.msg import Correspondences as CorrespondencesMsg  # noqa: E402
from vs_msgs.msg import Goal as GoalMsg  # noqa: E402
from vs_msgs.msg import Keypoints as KeypointsMsg  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F64 = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                st.sampled_from([1.79e308, -1.79e308, 3e38, -3e38, 1e-30, 0.0, -0.0]))
F32 = st.floats(allow_nan=True, allow_infinity=True, width=32)
SEC = st.integers(-(2**31), 2**31 - 1)
NSEC = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 999_999_999, 1_000_000_000, 4_000_000_000]))
FRAMES = st.text(max_size=12)


def _time(sec: int, nanosec: int) -> Time:
    return Time(sec=sec, nanosec=nanosec)


# -- stamps ---------------------------------------------------------------------------------------------------
@SETTINGS
@given(sec=SEC, nanosec=NSEC)
def test_stamp_to_sec_any_stamp(sec, nanosec) -> None:
    try:
        t = stamp_to_sec(_time(sec, nanosec))
    except InputError as err:
        assert nanosec >= 1_000_000_000 and "nanosec" in str(err)
        return
    assert nanosec < 1_000_000_000 and math.isfinite(t) and abs(t - (sec + nanosec * 1e-9)) < 1e-6


@SETTINGS
@given(t=F64)
def test_sec_to_stamp_any_float_is_a_valid_stamp(t) -> None:
    s = sec_to_stamp(t)
    assert 0 <= s.sec <= 2**31 - 1 and 0 <= s.nanosec < 1_000_000_000
    back = stamp_to_sec(s)
    if math.isfinite(t) and 0 <= t < 2**31 - 1:
        assert abs(back - t) <= 1e-6 * max(1.0, t)


# -- images, camera_info, depth ---------------------------------------------------------------------------------
@SETTINGS
@given(encoding=st.one_of(st.sampled_from(sorted(ENCODINGS)), st.text(max_size=6)), width=st.integers(0, 9),
       height=st.integers(0, 9), step=st.integers(0, 80), data=st.binary(max_size=400), big=st.integers(0, 1))
def test_image_to_array_any_image(encoding, width, height, step, data, big) -> None:
    msg = Image(encoding=encoding, width=width, height=height, step=step, data=data, is_bigendian=big)
    try:
        arr = image_to_array(msg)
    except InputError:
        return
    dtype, ch = ENCODINGS[encoding]
    assert arr.shape[:2] == (height, width) and arr.dtype == dtype and (arr.ndim == 2) == (ch == 1)


@SETTINGS
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), encoding=st.sampled_from(sorted(ENCODINGS)),
       seed=st.integers(0, 2**16))
def test_array_to_image_round_trip_or_reject(shape, encoding, seed) -> None:
    dtype, _ = ENCODINGS[encoding]
    arr = (np.random.default_rng(seed).random(shape) * 200).astype(dtype)
    try:
        msg = array_to_image(arr, encoding)
    except InputError:
        return
    try:
        back = image_to_array(msg)
    except InputError as err:
        assert "empty" in str(err)
        return
    np.testing.assert_array_equal(back.reshape(arr.shape), arr)


@SETTINGS
@given(k=st.lists(F64, min_size=9, max_size=9), width=st.integers(0, 2**32 - 1), height=st.integers(0, 2**32 - 1))
def test_camera_info_to_model_any_info(k, width, height) -> None:
    msg = CameraInfo(k=k, width=width, height=height)
    try:
        cam = camera_info_to_model(msg)
    except InputError:
        return
    assert np.all(np.isfinite(cam.K)) and cam.fx > 0 and cam.fy > 0 and cam.width > 0 and cam.height > 0


@SETTINGS
@given(values=st.lists(F32, min_size=1, max_size=20), encoding=st.sampled_from(["16UC1", "32FC1", "mono8"]))
def test_depth_to_metres_positive_or_nan(values, encoding) -> None:
    arr = np.asarray(values, np.float32) if encoding == "32FC1" else \
        np.clip(np.nan_to_num(np.asarray(values, np.float64)), 0, 65535).astype(np.uint16)
    try:
        d = depth_to_metres(arr, encoding)
    except InputError:
        assert encoding == "mono8"
        return
    assert np.all(np.isnan(d) | (np.isfinite(d) & (d > 0)))


# -- poses and twists (vs_common.ros.geometry) ---------------------------------------------------------------
@SETTINGS
@given(v=st.lists(F64, min_size=6, max_size=6), sec=SEC, nanosec=NSEC, frame=FRAMES)
def test_twist_stamped_to_array_any_twist(v, sec, nanosec, frame) -> None:
    msg = TwistStamped()
    msg.header.stamp, msg.header.frame_id = _time(sec, nanosec), frame
    (msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z,
     msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z) = v
    try:
        arr, f, stamp = twist_stamped_to_array(msg)
    except InputError:
        assert nanosec >= 1_000_000_000
        return
    assert arr.shape == (6,) and f == frame and math.isfinite(stamp)
    np.testing.assert_array_equal(arr, np.asarray(v))  # values are judged by the safety filter, not here
    t = array_to_twist(np.nan_to_num(arr))
    assert math.isfinite(t.linear.x)


@SETTINGS
@given(T=st.lists(F64, min_size=16, max_size=16))
def test_matrix_to_pose_stamped_any_matrix(T) -> None:
    try:
        msg = matrix_to_pose_stamped(np.asarray(T).reshape(4, 4), Time(), "base")
    except InputError:
        return
    p, q = msg.pose.position, msg.pose.orientation
    assert all(math.isfinite(x) for x in (p.x, p.y, p.z, q.x, q.y, q.z, q.w))
    back = pose_to_matrix(msg)  # what a valid matrix became decodes again
    assert back.shape == (4, 4) and np.all(np.isfinite(back))


@SETTINGS
@given(xyz=st.lists(F64, min_size=3, max_size=3), quat=st.lists(F64, min_size=4, max_size=4))
def test_pose_to_matrix_any_pose(xyz, quat) -> None:
    msg = PoseStamped()
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = xyz
    q.x, q.y, q.z, q.w = quat
    try:
        T = pose_to_matrix(msg)
    except InputError:
        assert not np.all(np.isfinite(xyz + quat)) or abs(np.linalg.norm(quat) - 1.0) > 1e-3
        return
    assert np.all(np.isfinite(T)) and np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
    np.testing.assert_array_equal(T[:3, 3], xyz)


# -- robot bridge ---------------------------------------------------------------------------------------------


@SETTINGS
@given(age=F64, last=st.lists(F64, min_size=6, max_size=6), rejected=st.integers(0, 2**31), text=st.text(max_size=20))
def test_status_conversions_any_status(age, last, rejected, text) -> None:
    status = BridgeStatus(backend="sim", state=BridgeState.MOVING, robot=RobotState(connected=True), fault=False,
                          fault_text=text, command_age_s=age, last_command_b=np.asarray(last), note=text,
                          rejected=rejected, last_rejection=text)
    msg = status_to_msg(status, Time(), "base")
    assert msg.state == "active" and (math.isnan(msg.command_age_s) or math.isfinite(msg.command_age_s))
    diag = status_to_diagnostics(status, "robot", Time())
    assert diag.status[0].values


# -- perception -----------------------------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(0, 6), extra=st.integers(-1, 1), k=st.lists(F64, min_size=9, max_size=9),
       width=st.integers(0, 5000), height=st.integers(0, 5000), uv=st.lists(F32, min_size=14, max_size=14),
       depth_len=st.integers(0, 7), prior=F32, sec=SEC, nanosec=NSEC)
def test_msg_to_correspondences_any_message(n, extra, k, width, height, uv, depth_len, prior, sec, nanosec) -> None:
    msg = CorrespondencesMsg()
    msg.header.stamp = _time(sec, nanosec)
    msg.width, msg.height, msg.k = width, height, k
    msg.goal_uv = uv[: 2 * n]
    msg.current_uv = uv[: max(0, 2 * n + extra)]
    msg.goal_index = list(range(n))
    msg.score = [0.5] * n
    msg.inlier = [True] * n
    msg.goal_depth = uv[:depth_len]
    msg.distance_prior = prior
    try:
        obs = msg_to_correspondences(msg)
    except InputError:
        return
    assert len(obs) == n and math.isfinite(obs.stamp) and np.all(np.isfinite(obs.goal_uv))
    assert np.all(np.isfinite(obs.current_uv[obs.valid]))
    assert obs.info.get("distance_prior_m", 1.0) > 0
    back = msg_to_correspondences(correspondences_to_msg(obs))
    assert len(back) == n


@SETTINGS
@given(uv=st.lists(F32, max_size=9), n_resp=st.integers(0, 5), dtype=st.integers(0, 3), length=st.integers(0, 8),
       desc=st.binary(max_size=64), nanosec=NSEC)
def test_msg_to_features_any_message(uv, n_resp, dtype, length, desc, nanosec) -> None:
    msg = KeypointsMsg(uv=uv, response=[1.0] * n_resp, size=[1.0] * n_resp, angle=[0.0] * n_resp,
                       descriptor_type=dtype, descriptor_length=length, descriptors=desc)
    msg.header.stamp.nanosec = nanosec
    try:
        feats, extras = msg_to_features(msg)
    except InputError:
        return
    assert feats.uv.shape == (len(uv) // 2, 2) and math.isfinite(extras["stamp"])


@SETTINGS
@given(goal_id=st.text(max_size=5), width=st.integers(0, 6), height=st.integers(0, 6),
       info_size=st.tuples(st.integers(0, 6), st.integers(0, 6)), encoding=st.sampled_from(["rgb8", "mono8", "bgr8",
                                                                                           "32FC1", "yuv"]),
       k=st.lists(F64, min_size=9, max_size=9), data=st.binary(max_size=120), prior=F32, nanosec=NSEC)
def test_msg_to_goal_any_message(goal_id, width, height, info_size, encoding, k, data, prior, nanosec) -> None:
    msg = GoalMsg(goal_id=goal_id, distance_prior=prior)
    msg.header.stamp.nanosec = nanosec
    ch = 1 if encoding in ("mono8", "32FC1") else 3
    msg.image = Image(width=width, height=height, encoding=encoding, step=width * ch, data=data)
    msg.camera_info = CameraInfo(width=info_size[0], height=info_size[1], k=k)
    try:
        goal, d = msg_to_goal(msg)
    except InputError:
        return
    assert goal.goal_id == goal_id and goal.image.shape == (height, width, 3)
    assert math.isnan(d) or d > 0


def test_camera_model_refuses_non_finite() -> None:
    with pytest.raises(InputError):
        CameraModel(K=np.full((3, 3), np.nan), width=1, height=1)
    c = Correspondences(camera=CameraModel(K=np.eye(3), width=1, height=1), goal_uv=[[0, 0]], current_uv=[[np.nan, 0]],
                        valid=[True])
    assert c.num_valid == 0  # a non-finite current pixel is never trusted
