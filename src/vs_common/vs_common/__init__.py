"""vs_common."""
