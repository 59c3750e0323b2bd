"""The graph's names: topics, services and actions of every node (DESIGN.md §4), as plain strings (no ROS here).

Nodes of every package, the launch logic, the recorder and the tests take their names from here, so a
rename happens in one place; each name stays remappable at run time (``--ros-args -r old:=new``). Frame
ids are in :mod:`vs_common.core.frames`; which topics a run records is :func:`vs_bringup.topics.run_topics`.
"""

from __future__ import annotations

# --- camera: the realsense-ros names (the sim camera publishes the same, so the driver is a drop-in) ---------
#: Namespace of the camera's topics: realsense-ros publishes under /<camera_namespace>/<camera_name>.
CAMERA_NS = "/camera/camera"
COLOR_IMAGE = f"{CAMERA_NS}/color/image_raw"
COLOR_INFO = f"{CAMERA_NS}/color/camera_info"
ALIGNED_DEPTH = f"{CAMERA_NS}/aligned_depth_to_color/image_raw"
ALIGNED_DEPTH_INFO = f"{CAMERA_NS}/aligned_depth_to_color/camera_info"
DEPTH_IMAGE = f"{CAMERA_NS}/depth/image_rect_raw"
DEPTH_INFO = f"{CAMERA_NS}/depth/camera_info"
INFRA1_IMAGE = f"{CAMERA_NS}/infra1/image_rect_raw"
INFRA1_INFO = f"{CAMERA_NS}/infra1/camera_info"
INFRA2_IMAGE = f"{CAMERA_NS}/infra2/image_rect_raw"
INFRA2_INFO = f"{CAMERA_NS}/infra2/camera_info"

# --- perception -------------------------------------------------------------------------------------------
GOAL = "/vs/perception/goal"
SET_GOAL = "/vs/perception/set_goal"  # service vs_msgs/srv/SetGoal
CORRESPONDENCES = "/vs/perception/correspondences"
MATCHES_IMAGE = "/vs/perception/debug/matches_image"
MARKERS = "/vs/perception/markers"
#: The relative depth of the latest processed colour image (32FC1, larger = farther, NaN unknown), stamped with
#: that image's stamp; frames that arrive while a map is computed are dropped.
RELATIVE_DEPTH = "/vs/perception/relative_depth"
#: The relative depth of the goal image (latched), stamped with the goal's stamp.
GOAL_RELATIVE_DEPTH = "/vs/perception/goal_relative_depth"

# --- controller -------------------------------------------------------------------------------------------
CMD_TWIST = "/vs/servo/cmd_twist"
SERVO_STATUS = "/vs/servo/status"
SERVO_ACTION = "/vs/servo/servo"  # action vs_msgs/action/Servo

# --- robot bridge -----------------------------------------------------------------------------------------
ROBOT_STATUS = "/vs/robot/status"
TCP_POSE = "/vs/robot/tcp_pose"
RESET_FAULT = "/vs/robot/reset_fault"  # service std_srvs/srv/Trigger
SIM_ORBIT = "/vs/sim/orbit"  # service vs_msgs/srv/SimOrbit (sim backend only)
JOINT_STATES = "/joint_states"
DIAGNOSTICS = "/diagnostics"
TF = "/tf"
TF_STATIC = "/tf_static"

#: Ground truth the demo publishes (latched) so a bag alone can be scored: the TCP pose at the goal view.
GOAL_TCP_POSE = "/vs/run/goal_tcp_pose"

#: Topics that carry full images; recorded at a reduced rate by default (a 640x480 rgb8 frame is 0.9 MB).
IMAGE_TOPICS = (COLOR_IMAGE, MATCHES_IMAGE, ALIGNED_DEPTH, INFRA1_IMAGE, INFRA2_IMAGE, RELATIVE_DEPTH)
