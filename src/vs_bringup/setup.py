"""Install vs_bringup (ament_python; also installable with pip for the PyPI-wheel workflow).

The launch files and parameter files live at the workspace root (``launch/``, ``config/``) so that a
checkout can run them by path; a colcon build installs them into ``share/vs_bringup`` as well (every file
under ``config/``, folders kept), where ``ros2 launch vs_bringup <file>`` and
:func:`vs_bringup.launch_logic.share_dir` find them. With ``--symlink-install`` they are links to the
checkout: edits need no rebuild, new files do.
"""

import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "vs_bringup"
# colcon runs this file from a build folder holding links to it: resolve() finds the checkout (src/vs_bringup).
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _tree(folder: str, pattern: str = "*") -> list[tuple[str, list[str]]]:
    """data_files entries installing ROOT/folder/** (matching pattern) into share/<pkg>/folder/**."""
    by_dir: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob(pattern)):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.parent.relative_to(ROOT).as_posix()
            # Relative to this package (colcon and setuptools want relative data_files sources).
            by_dir.setdefault(f"share/{PACKAGE}/{rel}", []).append(os.path.relpath(path, HERE))
    return sorted(by_dir.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_tree("launch", "*.launch.py"),
        *_tree("config"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="Visual Servo Maintainers",
    maintainer_email="maintainers@visual-servo.dev",
    description="Launch files and their tested logic, the MCAP run recorder, run reports and the simulated demo.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            # Tools get package-specific names; `recorder` is a node executable the launch uses (lib/vs_bringup).
            "vs_demo = vs_bringup.demo:main",
            "vs_report = vs_bringup.report:main",
            "recorder = vs_bringup.recorder:main",
        ],
    },
)
