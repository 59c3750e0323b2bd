"""vs_perception."""
