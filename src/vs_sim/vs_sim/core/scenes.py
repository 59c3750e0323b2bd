"""Seeded benchmark scenes for the two environments, stored as JSON in ``vs_sim/data/scenes/``.

``render``: a textured table with 8–12 procedural objects; goal camera 0.5–0.9 m from the scene
centre looking at it (elevation 65–90°, roll ±30°); initial camera on a cap above the scene (elevation
60–90°), also looking at it, rolled up to ±145°, so the initial→goal rotation spans ~5–170° (mean ≈ 79°,
CNS: 2.7–180°, mean 76°) and the translation averages ≈ 30 cm (CNS: 24.8 cm). Sections S, M, L are the thirds
of the scenes sorted by that rotation (CNS: S ≤ ~43°, M 45–92°, L 94–180°).

``image``: a textured plane at z = 0 seen from above, poses sampled like CNS's E_affine (notes §5):
goal r 0.6–0.9 m, elevation 70–90°, roll ±15°; initial r 0.6–0.9 m, elevation 60–90°, roll ±60°,
relative yaw ≤ 37°.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from vs_common.core.config import check_choice
from vs_common.core.errors import ConfigError
from vs_common.core.se3 import invert, look_at, pose_error

ENVS = ("render", "image")
SECTIONS = ("S", "M", "L", "A")
SHAPES = ("box", "cylinder", "sphere")


@dataclass
class Scene:
    """One benchmark episode: world, goal and initial camera poses (optical frame, world = robot base)."""

    id: str
    env: str
    section: str
    w_T_goal: np.ndarray
    w_T_init: np.ndarray
    scene_center: np.ndarray
    seed: int = 0
    objects: list[dict[str, Any]] = field(default_factory=list)
    texture_seed: int = 0

    @property
    def rotation_deg(self) -> float:
        return pose_error(self.w_T_goal, self.w_T_init)[1]

    @property
    def translation_m(self) -> float:
        return pose_error(self.w_T_goal, self.w_T_init)[0]

    @property
    def distance_m(self) -> float:
        """Camera-to-scene-centre distance at the goal (the CNS distance prior)."""
        return float(np.linalg.norm(self.w_T_goal[:3, 3] - self.scene_center))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "env": self.env, "section": self.section, "seed": self.seed,
                "w_T_goal": np.round(self.w_T_goal, 9).tolist(), "w_T_init": np.round(self.w_T_init, 9).tolist(),
                "scene_center": np.round(self.scene_center, 9).tolist(), "texture_seed": self.texture_seed,
                "objects": self.objects}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scene:
        return cls(id=d["id"], env=d["env"], section=d["section"], seed=int(d.get("seed", 0)),
                   w_T_goal=np.asarray(d["w_T_goal"], float), w_T_init=np.asarray(d["w_T_init"], float),
                   scene_center=np.asarray(d["scene_center"], float), objects=list(d.get("objects", [])),
                   texture_seed=int(d.get("texture_seed", 0)))


def _cap_pose(rng: np.random.Generator, center: np.ndarray, r: tuple[float, float], elev_deg: tuple[float, float],
              roll_deg: tuple[float, float], jitter_m: float = 0.0) -> np.ndarray:
    """A camera on a spherical cap above ``center`` looking at it (± a look-at jitter), rolled about z."""
    radius = rng.uniform(*r)
    elev = np.radians(rng.uniform(*elev_deg))
    az = rng.uniform(-np.pi, np.pi)
    eye = center + radius * np.array([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)])
    target = center + rng.uniform(-jitter_m, jitter_m, 3) * np.array([1, 1, 0])
    T = look_at(eye, target, up=np.array([0.0, -1.0, 0.0]))
    roll = Rotation.from_euler("z", rng.uniform(*roll_deg), degrees=True).as_matrix()
    T[:3, :3] = T[:3, :3] @ roll
    return T


def _sections(scenes: list[Scene]) -> None:
    order = np.argsort([s.rotation_deg for s in scenes], kind="stable")
    n = len(scenes)
    for rank, i in enumerate(order):
        scenes[i].section = "SML"[min(3 * rank // n, 2)]


def generate_render_scenes(n: int = 150, seed: int = 2026) -> list[Scene]:
    """The ``render`` scene set (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    scenes = []
    for k in range(n):
        center = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.45, -0.35), 0.0])
        objects = []
        for j in range(int(rng.integers(8, 13))):
            shape = SHAPES[int(rng.integers(0, len(SHAPES)))]
            size = rng.uniform(0.04, 0.12, 3).round(4).tolist()
            xy = center[:2] + rng.uniform(-0.2, 0.2, 2)
            objects.append({"shape": shape, "size": size, "xyz": [round(float(xy[0]), 4), round(float(xy[1]), 4), 0.0],
                            "yaw_deg": round(float(rng.uniform(-180, 180)), 2),
                            "texture_seed": int(rng.integers(0, 2**31 - 1)), "name": f"obj{j}"})
        goal = _cap_pose(rng, center, (0.5, 0.9), (65.0, 90.0), (-30.0, 30.0))
        init = _cap_pose(rng, center, (0.5, 0.9), (60.0, 90.0), (-145.0, 145.0), jitter_m=0.05)
        scenes.append(Scene(id=f"render_{k:03d}", env="render", section="", seed=int(seed) * 1000 + k,
                            w_T_goal=goal, w_T_init=init, scene_center=center, objects=objects,
                            texture_seed=int(rng.integers(0, 2**31 - 1))))
    _sections(scenes)
    return scenes


def generate_image_scenes(n: int = 150, seed: int = 2023) -> list[Scene]:
    """The ``image`` scene set (CNS E_affine-like poses over a textured plane at z = 0)."""
    rng = np.random.default_rng(seed)
    center = np.zeros(3)
    scenes: list[Scene] = []
    while len(scenes) < n:
        goal = _cap_pose(rng, center, (0.6, 0.9), (70.0, 90.0), (-15.0, 15.0), jitter_m=0.03)
        init = _cap_pose(rng, center, (0.6, 0.9), (60.0, 90.0), (-60.0, 60.0), jitter_m=0.05)
        rel = invert(goal) @ init
        yaw = abs(np.degrees(Rotation.from_matrix(rel[:3, :3]).as_euler("zyx")[0]))
        te, re = pose_error(goal, init)
        if yaw > 37.0 or te < 0.02 or re < 2.0:
            continue  # as CNS: bounded relative yaw, no trivial pairs
        k = len(scenes)
        scenes.append(Scene(id=f"image_{k:03d}", env="image", section="", seed=int(seed) * 1000 + k,
                            w_T_goal=goal, w_T_init=init, scene_center=center,
                            texture_seed=int(rng.integers(0, 2**31 - 1))))
    _sections(scenes)
    return scenes


def scenes_path(env: str) -> Path:
    check_choice("env", env, ENVS)
    return Path(str(resources.files("vs_sim") / "data" / "scenes" / f"{env}.json"))


def save_scenes(scenes: list[Scene], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps([s.to_json() for s in scenes], separators=(",", ":")))


def load_scenes(env: str, section: str | None = None, ids: list[str] | None = None) -> list[Scene]:
    """The stored scenes of ``env``, optionally one section (S, M, L; A = all) or given ids (in that order)."""
    path = scenes_path(env)
    if not path.is_file():
        raise ConfigError(f"scene file {path} missing; run python -m vs_sim.training.make_scenes")
    scenes = [Scene.from_json(d) for d in json.loads(path.read_text())]
    if section not in (None, "A"):
        check_choice("section", section, SECTIONS)
        scenes = [s for s in scenes if s.section == section]
    if ids is not None:
        by_id = {s.id: s for s in scenes}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ConfigError(f"unknown scene ids {missing[:5]} in {env}; ids look like {scenes[0].id}")
        scenes = [by_id[i] for i in ids]
    return scenes
