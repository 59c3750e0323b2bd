"""Locate the workspace's config/ and weights folders in a source checkout, a colcon install or Docker."""

from __future__ import annotations

import os
from pathlib import Path

from vs_common.core.errors import ConfigError


def config_dir() -> Path:
    """The config/ folder: $VS_CONFIG_DIR, else the source checkout's, else vs_bringup's installed share."""
    env = os.environ.get("VS_CONFIG_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "config").is_dir() and (parent / "src").is_dir():
            return parent / "config"
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vs_bringup")) / "config"
    except Exception as err:  # noqa: BLE001 - any failure means "not installed"
        raise ConfigError("cannot find the config/ folder; set VS_CONFIG_DIR") from err


def resolve_config(path_or_name: str) -> Path:
    """An absolute/relative path that exists, or a name looked up in :func:`config_dir`."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    candidate = config_dir() / path_or_name
    if candidate.is_file():
        return candidate
    raise ConfigError(f"config file {path_or_name!r} not found (looked in . and {config_dir()})")
