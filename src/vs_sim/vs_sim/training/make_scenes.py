"""Regenerate the stored benchmark scenes (deterministic): python -m vs_sim.training.make_scenes."""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from vs_sim.core.scenes import generate_image_scenes, generate_render_scenes, save_scenes, scenes_path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--render-seed", type=int, default=2026)
    ap.add_argument("--image-seed", type=int, default=2023)
    ap.add_argument("-n", type=int, default=150)
    args = ap.parse_args(argv)
    for env, scenes in (("render", generate_render_scenes(args.n, args.render_seed)),
                        ("image", generate_image_scenes(args.n, args.image_seed))):
        save_scenes(scenes, scenes_path(env))
        rot = np.array([s.rotation_deg for s in scenes])
        tr = np.array([s.translation_m for s in scenes]) * 100
        by = Counter(s.section for s in scenes)
        edges = {sec: (rot[[s.section == sec for s in scenes]].min(), rot[[s.section == sec for s in scenes]].max())
                 for sec in "SML"}
        print(f"{env}: {len(scenes)} scenes → {scenes_path(env)}; sections {dict(by)}; "
              f"rotation {rot.min():.1f}–{rot.max():.1f}° (mean {rot.mean():.1f}); "
              f"translation {tr.min():.1f}–{tr.max():.1f} cm (mean {tr.mean():.1f}); "
              + ", ".join(f"{k} {a:.0f}–{b:.0f}°" for k, (a, b) in edges.items()))


if __name__ == "__main__":
    main()
