"""The ibvs pipeline: servo.launch.py with pipeline:=ibvs; every other argument passes through.

    ros2 launch vs_bringup ibvs.launch.py use_sim:=true rviz:=true
"""

from __future__ import annotations

from pathlib import Path

PIPELINE = "ibvs"


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    base = str(Path(__file__).with_name("servo.launch.py"))
    return LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(base),
                                                       launch_arguments={"pipeline": PIPELINE}.items())])
