"""The servo graph: camera (simulated or RealSense), goal + observer, servo controller, robot bridge, rviz, bag.

    ros2 launch vs_bringup servo.launch.py pipeline:=ibvs use_sim:=true observer:=akaze rviz:=true record:=true
    ros2 launch vs_bringup servo.launch.py -s        # the arguments, their descriptions and choices

All decisions (which nodes, which parameter files, remappings, the bag command, what to do without rviz2
or rosbag2) are made by ``vs_bringup.launch_logic``, which is tested without ``launch``; this file only
turns its plain data into launch actions. An argument that is not declared here ends the launch before
anything starts (``ros2 launch`` itself would ignore it). ``launch`` / ``launch_ros`` are imported inside
the functions so the file parses and lints where they are not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vs_bringup import launch_logic
except ImportError:  # run by path from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "vs_bringup"))
    from vs_bringup import launch_logic


def _graph(context, *args, **kwargs):
    """OpaqueFunction body: resolve the arguments, then build one action per node (+ the recorder)."""
    from launch.actions import EmitEvent, ExecuteProcess, LogInfo
    from launch.events import matches_action
    from launch.logging import get_logger
    from launch_ros.actions import LifecycleNode, Node
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    # Every configuration in scope, not only the declared ones: an unknown or misspelt argument raises here.
    args = launch_logic.parse_launch_args(dict(context.launch_configurations))
    plan = launch_logic.launch_plan(args)
    for warning in plan.warnings:
        get_logger("vs_bringup").warning(warning)
    actions = [LogInfo(msg=f"vs_bringup: pipeline={args.pipeline} use_sim={args.use_sim} observer={args.observer}")]
    for spec in plan.specs:
        common = dict(package=spec.package, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                      parameters=spec.parameters, remappings=list(spec.remappings), arguments=list(spec.arguments),
                      output="screen")
        if not spec.lifecycle:
            actions.append(Node(**common))
            continue
        node = LifecycleNode(**common)
        actions.append(node)
        if not spec.overrides.get("autostart", False):
            # A real arm: configure (status flows) but wait for an explicit `ros2 lifecycle set ... activate`.
            actions.append(EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                                       transition_id=Transition.TRANSITION_CONFIGURE)))
    if plan.record_cmd:
        actions.append(ExecuteProcess(cmd=plan.record_cmd, output="screen"))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                      **({"choices": list(a.choices)} if a.choices else {}))
                for a in launch_logic.LAUNCH_ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_graph)])
