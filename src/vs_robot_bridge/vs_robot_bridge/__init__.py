"""vs_robot_bridge."""
