"""The depth_pc pipeline: servo.launch.py with pipeline:=depth_pc; every other argument passes through
(a contradicting ``pipeline:=...`` is refused, not silently replaced).

    ros2 launch vs_bringup depth_pc.launch.py use_sim:=true rviz:=true
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vs_bringup import launch_logic
except ImportError:  # run by path from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "vs_bringup"))
    from vs_bringup import launch_logic

PIPELINE = "depth_pc"


def generate_launch_description():
    return launch_logic.pipeline_launch_description(PIPELINE, Path(__file__).with_name("servo.launch.py"))
