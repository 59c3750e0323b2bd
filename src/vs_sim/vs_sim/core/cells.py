"""The simulated cells: what the camera sees from a pose, in the two benchmark environments.

``render``: PyBullet in DIRECT mode (CPU TinyRenderer) — a textured table with procedural objects.
``image``: a textured plane rendered exactly by a homography with OpenCV (fast; for CI).

Both expose the same interface (``camera``, ``ir_camera``, ``baseline_m``, ``load_scene``, ``render``)
so the benchmark and the ROS sim camera node do not care which one runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.camera import CameraModel
from vs_common.core.config import check_choice
from vs_common.core.errors import InputError
from vs_common.core.se3 import invert, make_pose

from vs_sim.core.camera import (
    D435_BASELINE_M,
    D435_COLOR,
    D435_IR,
    FAR_M,
    NEAR_M,
    depth_from_buffer,
    gl_projection,
    gl_view,
)
from vs_sim.core.scenes import ENVS, Scene
from vs_sim.core.textures import make_poster, make_texture

STREAMS = ("color", "depth", "ir")
#: The simulated camera's frame rate (Hz; its ``rate_hz`` default): the render takes ~0.1 s on 2 cores.
CAMERA_RATE_HZ = 10.0


@dataclass
class Frame:
    """One rendered frame. Shapes: color (H, W, 3) uint8 RGB; depth (H, W) float32 m (NaN = nothing);
    ir_left / ir_right (H, W) uint8 (IR imagers; left at the colour pose, right +baseline along x)."""

    w_T_c: np.ndarray
    color: np.ndarray | None = None
    depth: np.ndarray | None = None
    ir_left: np.ndarray | None = None
    ir_right: np.ndarray | None = None


def _check(w_T_c: np.ndarray, streams: tuple[str, ...]) -> np.ndarray:
    T = np.asarray(w_T_c, float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"camera pose must be a finite 4x4 transform, got shape {T.shape}")
    for s in streams:
        check_choice("stream", s, STREAMS)
    return T


def _to_ir(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class RenderCell:
    """PyBullet table-top cell (DIRECT mode, TinyRenderer on the CPU)."""

    def __init__(self, camera: CameraModel = D435_COLOR, ir_camera: CameraModel = D435_IR,
                 baseline_m: float = D435_BASELINE_M) -> None:
        import pybullet as p  # imported here: only this cell needs it

        self._p = p
        self.camera, self.ir_camera, self.baseline_m = camera, ir_camera, baseline_m
        self._client = p.connect(p.DIRECT)
        self._textures: dict[tuple[int, bool], int] = {}
        self._scene_id: str | None = None
        self._proj = {id(camera): gl_projection(camera).T.reshape(-1).tolist(),
                      id(ir_camera): gl_projection(ir_camera).T.reshape(-1).tolist()}

    def close(self) -> None:
        """Disconnect from PyBullet (idempotent)."""
        if self._client is not None:
            self._p.disconnect(self._client)
            self._client = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _texture(self, seed: int, poster: bool = False) -> int:
        key = (seed, poster)
        if key not in self._textures:
            if self._client is None:
                raise InputError("the render cell is closed")
            img = make_poster(seed, 1024, 1024) if poster else make_texture(seed)
            # PyBullet loads textures only from files and keeps its own copy: the file lives in a folder
            # that is gone once it is loaded, so a worker killed mid-run leaves nothing in /tmp.
            with tempfile.TemporaryDirectory(prefix="vs_sim_tex_") as folder:
                path = Path(folder) / f"{'poster' if poster else 'tex'}_{seed}.png"
                cv2.imwrite(str(path), img[:, :, ::-1])
                self._textures[key] = self._p.loadTexture(str(path), physicsClientId=self._client)
        return self._textures[key]

    def load_scene(self, scene: Scene) -> None:
        """Build the scene's world (no physics: objects sit where the scene file puts them)."""
        if scene.id == self._scene_id:
            return
        p, cid = self._p, self._client
        p.resetSimulation(physicsClientId=cid)
        self._textures.clear()
        # Table: one quad under a 1024² non-repeating poster (~1.2 mm per texel): a tiled texture would
        # make every keypoint ambiguous.
        s, reps = 0.6, 1.0
        c = scene.scene_center
        verts = [[c[0] - s, c[1] - s, 0], [c[0] + s, c[1] - s, 0], [c[0] + s, c[1] + s, 0], [c[0] - s, c[1] + s, 0]]
        vs = p.createVisualShape(p.GEOM_MESH, vertices=verts, indices=[0, 1, 2, 0, 2, 3],
                                 uvs=[[0, 0], [reps, 0], [reps, reps], [0, reps]], normals=[[0, 0, 1]] * 4,
                                 physicsClientId=cid)
        table = p.createMultiBody(0, -1, vs, physicsClientId=cid)
        p.changeVisualShape(table, -1, textureUniqueId=self._texture(scene.texture_seed, poster=True),
                            rgbaColor=[1, 1, 1, 1], physicsClientId=cid)
        for obj in scene.objects:
            sx, sy, sz = obj["size"]
            if obj["shape"] == "box":
                vs = p.createVisualShape(p.GEOM_BOX, halfExtents=[sx / 2, sy / 2, sz / 2], physicsClientId=cid)
                z = sz / 2
            elif obj["shape"] == "cylinder":
                vs = p.createVisualShape(p.GEOM_CYLINDER, radius=sx / 2, length=sz, physicsClientId=cid)
                z = sz / 2
            else:
                vs = p.createVisualShape(p.GEOM_SPHERE, radius=sx / 2, physicsClientId=cid)
                z = sx / 2
            q = Rotation.from_euler("z", obj["yaw_deg"], degrees=True).as_quat().tolist()
            body = p.createMultiBody(0, -1, vs, basePosition=[obj["xyz"][0], obj["xyz"][1], z], baseOrientation=q,
                                     physicsClientId=cid)
            p.changeVisualShape(body, -1, textureUniqueId=self._texture(obj["texture_seed"]),
                                rgbaColor=[1, 1, 1, 1], physicsClientId=cid)
        self._scene_id = scene.id

    def _shot(self, w_T_c: np.ndarray, cam: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        p = self._p
        view = gl_view(w_T_c).T.reshape(-1).tolist()
        _, _, rgba, zbuf, _ = p.getCameraImage(cam.width, cam.height, view, self._proj[id(cam)],
                                               renderer=p.ER_TINY_RENDERER, flags=p.ER_NO_SEGMENTATION_MASK,
                                               shadow=0, physicsClientId=self._client)
        rgba = np.reshape(np.asarray(rgba, np.uint8), (cam.height, cam.width, 4))
        return np.ascontiguousarray(rgba[:, :, :3]), np.reshape(np.asarray(zbuf, np.float32), (cam.height, cam.width))

    def render(self, w_T_c: np.ndarray, streams: tuple[str, ...] = ("color", "depth")) -> Frame:
        """Render the requested streams from the optical-frame pose ``w_T_c``."""
        T = _check(w_T_c, tuple(streams))
        if self._scene_id is None:
            raise InputError("render() before load_scene()")
        frame = Frame(w_T_c=T.copy())
        if "color" in streams or "depth" in streams:
            rgb, zbuf = self._shot(T, self.camera)
            frame.color = rgb if "color" in streams else None
            frame.depth = depth_from_buffer(zbuf, NEAR_M, FAR_M) if "depth" in streams else None
        if "ir" in streams:
            right = T @ make_pose(t=np.array([self.baseline_m, 0.0, 0.0]))
            frame.ir_left = _to_ir(self._shot(T, self.ir_camera)[0])
            frame.ir_right = _to_ir(self._shot(right, self.ir_camera)[0])
        return frame


class ImageCell:
    """A textured plane (1.2 m × 0.9 m at z = 0, centred on the origin) rendered exactly by homography."""

    PLANE_W_M, PLANE_H_M = 1.2, 0.9

    def __init__(self, camera: CameraModel = D435_COLOR, ir_camera: CameraModel = D435_IR,
                 baseline_m: float = D435_BASELINE_M) -> None:
        self.camera, self.ir_camera, self.baseline_m = camera, ir_camera, baseline_m
        self._poster: np.ndarray | None = None
        self._seed: int | None = None
        self._scene_id: str | None = None

    def load_scene(self, scene: Scene) -> None:
        if scene.texture_seed != self._seed:
            self._poster = make_poster(scene.texture_seed)
            self._seed = scene.texture_seed
        self._scene_id = scene.id

    def plane_to_pixel(self, cam: CameraModel, w_T_c: np.ndarray) -> np.ndarray:
        """(3, 3) homography: poster pixel (i, j) → image pixel, for a camera at ``w_T_c``."""
        assert self._poster is not None, "load_scene() first"
        h, w = self._poster.shape[:2]
        # poster pixel → plane metres (x right, y "up" the poster = +y world), pixel centres at integers
        S = np.array([[self.PLANE_W_M / w, 0, -self.PLANE_W_M / 2 + 0.5 * self.PLANE_W_M / w],
                      [0, -self.PLANE_H_M / h, self.PLANE_H_M / 2 - 0.5 * self.PLANE_H_M / h], [0, 0, 1]])
        c_T_w = invert(w_T_c)
        H = cam.K @ np.column_stack([c_T_w[:3, 0], c_T_w[:3, 1], c_T_w[:3, 3]])
        return H @ S

    def plane_depth(self, cam: CameraModel, w_T_c: np.ndarray) -> np.ndarray:
        """Exact metric Z of the plane z = 0 at every pixel (NaN off the poster or behind the camera)."""
        c_T_w = invert(w_T_c)
        n_c = c_T_w[:3, 2]                     # plane normal in the camera frame
        d_c = float(n_c @ c_T_w[:3, 3])        # n·X = d for plane points X (camera frame)
        u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
        rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u, float)], axis=-1)
        denom = rays @ n_c
        with np.errstate(divide="ignore", invalid="ignore"):
            Z = d_c / denom
        X = rays * Z[..., None]
        w_X = X @ w_T_c[:3, :3].T + w_T_c[:3, 3]
        inside = (np.abs(w_X[..., 0]) <= self.PLANE_W_M / 2) & (np.abs(w_X[..., 1]) <= self.PLANE_H_M / 2) & (Z > 0)
        return np.where(inside, Z, np.nan).astype(np.float32)

    def _shot(self, w_T_c: np.ndarray, cam: CameraModel) -> np.ndarray:
        H = self.plane_to_pixel(cam, w_T_c)
        return cv2.warpPerspective(self._poster, H, (cam.width, cam.height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def render(self, w_T_c: np.ndarray, streams: tuple[str, ...] = ("color", "depth")) -> Frame:
        T = _check(w_T_c, tuple(streams))
        if self._poster is None:
            raise InputError("render() before load_scene()")
        frame = Frame(w_T_c=T.copy())
        if "color" in streams:
            frame.color = self._shot(T, self.camera)
        if "depth" in streams:
            frame.depth = self.plane_depth(self.camera, T)
        if "ir" in streams:
            right = T @ make_pose(t=np.array([self.baseline_m, 0.0, 0.0]))
            frame.ir_left = _to_ir(self._shot(T, self.ir_camera))
            frame.ir_right = _to_ir(self._shot(right, self.ir_camera))
        return frame


def make_cell(env: str, **options) -> RenderCell | ImageCell:
    """A cell for environment ``env`` ("render" or "image"); options go to its constructor."""
    check_choice("env", env, ENVS)
    return RenderCell(**options) if env == "render" else ImageCell(**options)
