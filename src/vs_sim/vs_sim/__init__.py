"""vs_sim."""
