"""CellProcess: a forked child renders exactly what the cell renders in process, and fails cleanly."""

import os
import time

import numpy as np
import pytest
from vs_common.core.errors import InputError, NotReadyError, VisualServoError
from vs_sim.core.cells import make_cell
from vs_sim.core.render_process import CellProcess, fork_available
from vs_sim.core.scenes import load_scenes

pytestmark = pytest.mark.skipif(not fork_available(), reason="no fork on this platform")


@pytest.fixture(params=["image", "render"])
def cell(request):
    c = make_cell(request.param)
    scene = load_scenes(request.param)[0]
    c.load_scene(scene)
    c.test_pose = scene.w_T_goal
    return c


def test_child_renders_the_same_frame(cell):
    proc = CellProcess(cell)
    try:
        here = cell.render(cell.test_pose, streams=("color", "depth"))
        there = proc.render(cell.test_pose, streams=("color", "depth"))
        np.testing.assert_array_equal(there.color, here.color)
        np.testing.assert_array_equal(there.depth, here.depth)
        np.testing.assert_array_equal(there.w_T_c, here.w_T_c)
        assert proc.camera is cell.camera  # static attributes come from the parent's copy
    finally:
        proc.close()
    proc.close()  # idempotent
    assert not proc.alive


def test_child_reports_bad_requests_and_keeps_serving(cell):
    proc = CellProcess(cell)
    try:
        with pytest.raises(VisualServoError, match="InputError"):
            proc.render(np.full((4, 4), np.nan))
        with pytest.raises(InputError):
            cell.render(np.full((4, 4), np.nan))  # the same contract in process
        assert proc.render(cell.test_pose, streams=("color",)).color.shape == (480, 640, 3)
    finally:
        proc.close()


def test_a_dead_child_is_a_clear_error(cell):
    proc = CellProcess(cell)
    try:
        os.kill(proc._proc.pid, 9)
        proc._proc.join(5.0)
        with pytest.raises(NotReadyError, match="exited"):
            proc.render(cell.test_pose)
    finally:
        proc.close()


class _SlowCell:
    """Renders its pose's x as the frame; the first render takes 1 s."""

    camera = None

    def __init__(self) -> None:
        self.calls = 0

    def render(self, w_T_c, streams=("color",)):
        self.calls += 1
        if self.calls == 1:
            time.sleep(1.0)
        return float(w_T_c[0, 3])


def test_a_late_reply_is_not_taken_for_the_next_frame():
    proc = CellProcess(_SlowCell(), timeout_s=0.2)
    try:
        first, second = np.eye(4), np.eye(4)
        second[0, 3] = 7.0
        with pytest.raises(NotReadyError, match="within"):
            proc.render(first)
        proc.timeout_s = 5.0
        assert proc.render(second) == 7.0  # not the late frame of the first pose
    finally:
        proc.close()
