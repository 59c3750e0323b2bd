"""Test support for vs_perception and the packages above it (virtual devices; no hardware needed)."""
