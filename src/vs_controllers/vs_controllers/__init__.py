"""vs_controllers."""
