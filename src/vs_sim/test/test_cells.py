"""The simulated cells: projection, metric depth, stereo disparity, homography rendering, scenes, TCP."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from vs_common.core.errors import ConfigError, InputError
from vs_common.core.se3 import exp_se3, invert, look_at, pose_error
from vs_sim.core.camera import D435_COLOR, depth_from_buffer, project
from vs_sim.core.cells import ImageCell, RenderCell, make_cell
from vs_sim.core.scenes import Scene, generate_image_scenes, generate_render_scenes, load_scenes
from vs_sim.core.tcp import KinematicTcp


def marker_scene(xyz, shape="sphere", size=0.03, height=None) -> Scene:
    return Scene(id=f"marker{xyz}", env="render", section="S", w_T_goal=np.eye(4), w_T_init=np.eye(4),
                 scene_center=np.zeros(3),
                 objects=[{"shape": shape, "size": [size, size, size if height is None else height], "xyz": list(xyz),
                       "yaw_deg": 0.0,
                           "texture_seed": 1}], texture_seed=3)


@pytest.fixture(scope="module")
def render_cell():
    cell = RenderCell()
    yield cell
    cell.close()


def test_known_point_projects_where_it_appears(render_cell) -> None:
    """A small box on the table shows up at the pixel the pinhole model predicts (to a fraction of a pixel)."""
    center = np.array([0.05, -0.03, 0.0])
    scene = marker_scene(center, shape="box", size=0.03, height=0.002)  # a flat square tag on the table
    render_cell.load_scene(scene)
    w_T_c = look_at(np.array([0.0, 0.0, 0.6]), np.zeros(3))  # straight down, tag off-centre: no side faces
    f_with = render_cell.render(w_T_c, ("depth",))
    scene_empty = marker_scene(center)
    scene_empty.objects, scene_empty.id = [], "empty"
    render_cell.load_scene(scene_empty)
    f_without = render_cell.render(w_T_c, ("depth",))
    mask = np.nan_to_num(f_without.depth - f_with.depth) > 0.001  # where the tag covers the table
    # Pixel (u, v) is drawn iff its sample point lies inside the projected top face: predict that mask
    # from the pinhole model. A half-pixel error would flip a whole boundary row and column (~60 pixels).
    h = 0.015
    corners = center + np.array([[-h, -h, 0.002], [h, -h, 0.002], [h, h, 0.002], [-h, h, 0.002]])
    uv = project(D435_COLOR, (invert(w_T_c) @ np.c_[corners, np.ones(4)].T).T[:, :3])
    vv, uu = np.mgrid[0:D435_COLOR.height, 0:D435_COLOR.width]
    inside = np.ones(mask.shape, bool)
    e1, e2 = uv[1] - uv[0], uv[2] - uv[1]
    clockwise = e1[0] * e2[1] - e1[1] * e2[0] > 0
    for a, b in zip(uv, np.roll(uv, -1, axis=0)):  # convex polygon: same side of every edge
        cross = (b[0] - a[0]) * (vv - a[1]) - (b[1] - a[1]) * (uu - a[0])
        inside &= cross >= 0 if clockwise else cross <= 0
    assert mask.sum() > 500
    assert np.sum(mask != inside) <= 6, f"{np.sum(mask != inside)} pixels differ from the pinhole prediction"


def test_depth_is_metric(render_cell) -> None:
    scene = marker_scene([5.0, 5.0, 0.0])  # object far out of view: only the table
    render_cell.load_scene(scene)
    w_T_c = look_at(np.array([0.0, 0.0, 0.7]), np.zeros(3))
    depth = render_cell.render(w_T_c, ("depth",)).depth
    assert np.nanmedian(depth[200:280, 280:360]) == pytest.approx(0.7, abs=0.003)
    assert np.isnan(depth_from_buffer(np.ones((2, 2)))).all()


def test_ir_pair_disparity_matches_baseline() -> None:
    cell = ImageCell()
    cell.load_scene(generate_image_scenes(1, seed=5)[0])
    Z = 0.8
    w_T_c = look_at(np.array([0.0, 0.0, Z]), np.zeros(3))
    f = cell.render(w_T_c, ("ir",))
    import cv2

    sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=64, blockSize=7)
    disp = sgbm.compute(f.ir_left, f.ir_right).astype(np.float32) / 16.0
    d = np.median(disp[150:330, 200:440][disp[150:330, 200:440] > 0])
    assert d == pytest.approx(cell.ir_camera.fx * cell.baseline_m / Z, rel=0.03)


def test_homography_rendering_matches_projection() -> None:
    """Poster corners mapped by the cell's homography land where the plane points project."""
    cell = ImageCell()
    cell.load_scene(generate_image_scenes(1, seed=1)[0])
    w_T_c = look_at(np.array([0.1, -0.2, 0.8]), np.array([0.02, 0.01, 0.0]))
    H = cell.plane_to_pixel(D435_COLOR, w_T_c)
    h, w = cell._poster.shape[:2]
    ij = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [300, 200]], float)
    uv = (H @ np.c_[ij, np.ones(4)].T).T
    uv = uv[:, :2] / uv[:, 2:]
    sx, sy = cell.PLANE_W_M / w, cell.PLANE_H_M / h
    w_P = np.c_[-cell.PLANE_W_M / 2 + (ij[:, 0] + 0.5) * sx, cell.PLANE_H_M / 2 - (ij[:, 1] + 0.5) * sy, np.zeros(4)]
    c_P = (invert(w_T_c) @ np.c_[w_P, np.ones(4)].T).T[:, :3]
    assert np.allclose(uv, project(D435_COLOR, c_P), atol=1e-6)
    depth = cell.render(w_T_c, ("depth",)).depth
    u, v = np.round(project(D435_COLOR, c_P[3:4])[0]).astype(int)
    assert depth[v, u] == pytest.approx(c_P[3, 2], abs=2e-3)


def test_scene_files_are_deterministic_and_sectioned() -> None:
    for env, gen in (("render", generate_render_scenes), ("image", generate_image_scenes)):
        stored = load_scenes(env)
        assert len(stored) == 150
        fresh = gen()
        assert [s.id for s in fresh] == [s.id for s in stored]
        assert all(np.allclose(a.w_T_init, b.w_T_init, atol=1e-8) for a, b in zip(fresh, stored))
        secs = {k: [s.rotation_deg for s in stored if s.section == k] for k in "SML"}
        assert all(len(v) == 50 for v in secs.values())
        assert max(secs["S"]) <= min(secs["M"]) and max(secs["M"]) <= min(secs["L"])
    assert all(8 <= len(s.objects) <= 12 for s in load_scenes("render"))
    assert len(load_scenes("render", section="L")) == 50
    with pytest.raises(ConfigError, match="choose one of"):
        load_scenes("render", section="X")
    with pytest.raises(ConfigError, match="unknown scene ids"):
        load_scenes("image", ids=["nope"])


def test_goal_view_is_textured_and_initial_view_overlaps() -> None:
    import cv2

    scene = load_scenes("render")[10]
    cell = make_cell("render")
    cell.load_scene(scene)
    goal, init = cell.render(scene.w_T_goal).color, cell.render(scene.w_T_init).color
    sift = cv2.SIFT_create()
    kg, dg = sift.detectAndCompute(goal, None)
    ki, di = sift.detectAndCompute(init, None)
    assert len(kg) > 200
    m = cv2.BFMatcher().knnMatch(di, dg, k=2)
    good = [a for a, b in m if a.distance < 0.75 * b.distance]
    assert len(good) > 20


def test_render_cell_leaves_no_texture_files_behind(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where tempfile puts the cell's texture files
    cell = RenderCell()
    for scene in load_scenes("render")[:2]:
        cell.load_scene(scene)
        assert cell.render(scene.w_T_goal).color.std() > 10  # the textures were loaded before their files went
        assert list(tmp_path.iterdir()) == []  # nothing left even while the cell is open (a killed worker)
    cell.close()
    cell.close()  # idempotent
    with pytest.raises(InputError, match="closed"):
        cell._texture(1)


def test_bad_pose_and_stream_are_rejected() -> None:
    cell = make_cell("image")
    cell.load_scene(load_scenes("image")[0])
    with pytest.raises(InputError):
        cell.render(np.full((4, 4), np.nan))
    with pytest.raises(ConfigError):
        cell.render(np.eye(4), ("thermal",))


def test_kinematic_tcp_integrates_constant_twist() -> None:
    tcp_T_cam = exp_se3(np.array([0.0, 0.0, 0.05, 0.0, 0.0, 0.3]))
    w_T_cam0 = look_at(np.array([0.0, 0.0, 0.6]), np.zeros(3))
    tcp = KinematicTcp.from_camera_pose(w_T_cam0, tcp_T_cam)
    v = np.array([0.02, 0.0, 0.01, 0.0, 0.0, 0.2])
    for _ in range(50):
        tcp.apply_camera_twist(v, 0.02)
    expected = w_T_cam0 @ exp_se3(v * 1.0)
    te, re = pose_error(tcp.w_T_cam, expected)
    assert te < 1e-9 and re < 1e-7
    with pytest.raises(InputError):
        tcp.apply_camera_twist(np.array([np.nan] * 6), 0.1)
