"""vs_msgs/Correspondences ↔ :class:`vs_perception.core.types.Correspondences`."""

from __future__ import annotations

import numpy as np
from vs_common.core.camera import CameraModel
from vs_common.core.errors import InputError
from vs_common.ros.image import sec_to_stamp, stamp_to_sec

from vs_msgs.msg import Correspondences as CorrespondencesMsg
from vs_perception.core.types import Correspondences


def _optional(values, n: int, name: str) -> np.ndarray | None:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    if arr.size != n:
        raise InputError(f"Correspondences.{name} has {arr.size} entries, expected 0 or {n}")
    return arr


def msg_to_correspondences(msg: CorrespondencesMsg) -> Correspondences:
    """Decode and validate a Correspondences message (raises InputError with the reason)."""
    goal_uv = np.asarray(msg.goal_uv, dtype=np.float64)
    cur_uv = np.asarray(msg.current_uv, dtype=np.float64)
    if goal_uv.size % 2:
        raise InputError(f"goal_uv has odd length {goal_uv.size}")
    n = goal_uv.size // 2
    if cur_uv.size != 2 * n:
        raise InputError(f"current_uv has {cur_uv.size} values, expected {2 * n}")
    for name in ("goal_index", "score", "inlier"):
        if len(getattr(msg, name)) != n:
            raise InputError(f"Correspondences.{name} has {len(getattr(msg, name))} entries, expected {n}")
    if not np.all(np.isfinite(goal_uv)):
        raise InputError("goal_uv contains NaN or Inf")
    camera = CameraModel(K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3), width=int(msg.width),
                         height=int(msg.height))
    return Correspondences(
        camera=camera, goal_uv=goal_uv.reshape(n, 2), current_uv=cur_uv.reshape(n, 2),
        valid=np.asarray(msg.inlier, dtype=bool), goal_ids=np.asarray(msg.goal_index, dtype=np.int64),
        score=np.asarray(msg.score, dtype=np.float64),
        goal_depth=_optional(msg.goal_depth, n, "goal_depth"),
        current_depth=_optional(msg.current_depth, n, "current_depth"),
        relative_depth=_optional(msg.relative_depth, n, "relative_depth"),
        goal_relative_depth=_optional(msg.goal_relative_depth, n, "goal_relative_depth"),
        goal_id=msg.goal_id, stamp=stamp_to_sec(msg.header.stamp), frame_id=msg.header.frame_id,
        info={"detect_ms": float(msg.detect_ms), "match_ms": float(msg.match_ms), "ransac_ms": float(msg.ransac_ms)},
    )


def correspondences_to_msg(obs: Correspondences, goal_stamp: float = 0.0) -> CorrespondencesMsg:
    """Encode a Correspondences (stamp and frame from ``obs``)."""
    msg = CorrespondencesMsg()
    msg.header.stamp = sec_to_stamp(obs.stamp)
    msg.header.frame_id = obs.frame_id
    msg.goal_id = obs.goal_id
    msg.goal_stamp = sec_to_stamp(goal_stamp)
    msg.width, msg.height = obs.camera.width, obs.camera.height
    msg.k = obs.camera.K.reshape(-1).tolist()
    msg.goal_uv = obs.goal_uv.astype(np.float32).reshape(-1).tolist()
    msg.current_uv = obs.current_uv.astype(np.float32).reshape(-1).tolist()
    msg.goal_index = obs.goal_ids.astype(np.int32).tolist()
    msg.score = np.asarray(obs.score, dtype=np.float32).tolist()
    msg.inlier = [bool(v) for v in obs.valid]
    for name in ("goal_depth", "current_depth", "relative_depth", "goal_relative_depth"):
        arr = getattr(obs, name)
        if arr is not None:
            setattr(msg, name, np.asarray(arr, dtype=np.float32).tolist())
    msg.detect_ms = float(obs.info.get("detect_ms", 0.0))
    msg.match_ms = float(obs.info.get("match_ms", 0.0))
    msg.ransac_ms = float(obs.info.get("ransac_ms", 0.0))
    return msg
