"""The ``/vs/sim/orbit`` service (vs_msgs/srv/SimOrbit) of the robot bridge with the simulated backend.

It moves the simulated camera away from where it is by an orbit about the viewed point — the offset a
servo run starts from (docs/demo.md, "From ros2 launch"). Distance 0 = the median depth of the latest
aligned depth frame, the demo's rule. Refused while a servo command moves the arm.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from vs_common.core.errors import VisualServoError
from vs_common.core.topics import ALIGNED_DEPTH, SIM_ORBIT
from vs_common.ros.geometry import matrix_to_pose_stamped
from vs_common.ros.image import image_to_depth_m
from vs_common.ros.qos import SENSOR_QOS

from vs_msgs.srv import SimOrbit
from vs_robot_bridge.core.bridge import RobotBridge
from vs_robot_bridge.core.safety import hand_eye_transform
from vs_robot_bridge.core.sim_orbit import plan_orbit, viewing_distance_m

SERVICE = SIM_ORBIT
#: Where the viewing distance comes from (the sim camera's realsense-ros topic).
DEPTH_TOPIC = ALIGNED_DEPTH


class SimOrbitService:
    """Serves :data:`SERVICE` for ``core`` (its backend must be the simulator: it has ``teleport``)."""

    def __init__(self, node: Node, core: RobotBridge) -> None:
        self.node, self.core = node, core
        self._depth: Image | None = None
        self.entities = [
            node.create_subscription(Image, DEPTH_TOPIC, self._on_depth, SENSOR_QOS),
            node.create_service(SimOrbit, SERVICE, self._on_orbit),
        ]

    def _on_depth(self, msg: Image) -> None:
        self._depth = msg

    def _on_orbit(self, req: SimOrbit.Request, resp: SimOrbit.Response) -> SimOrbit.Response:
        safety = self.core.filter.config
        tcp_T_cam = hand_eye_transform(safety)
        stamp = self.node.get_clock().now().to_msg()
        base_T_tcp = self.core.backend.base_T_tcp
        try:
            if not self.core.active:
                raise VisualServoError("the robot bridge is not active (configure and activate it first)")
            distance = float(req.distance_m)
            if distance == 0.0:
                depth = None if self._depth is None else image_to_depth_m(self._depth)
                distance = viewing_distance_m(depth)
            new_tcp, base_T_cam = plan_orbit(base_T_tcp, tcp_T_cam, float(req.angle_deg), list(req.axis), distance,
                                             safety.workspace_min, safety.workspace_max)
            self.core.backend.teleport(new_tcp)
        except VisualServoError as err:
            resp.success, resp.message = False, f"orbit refused: {err}"
            resp.camera_pose = matrix_to_pose_stamped(base_T_tcp @ tcp_T_cam, stamp, safety.base_frame)
            self.node.get_logger().warning(resp.message)
            return resp
        resp.success = True
        moved = np.linalg.norm(base_T_cam[:3, 3] - (base_T_tcp @ tcp_T_cam)[:3, 3])
        resp.message = (f"camera orbited by {req.angle_deg:g} deg about the point {distance:.3f} m ahead "
                        f"(camera moved {moved * 1e3:.0f} mm)")
        resp.camera_pose = matrix_to_pose_stamped(base_T_cam, stamp, safety.base_frame)
        self.node.get_logger().info(resp.message)
        return resp
