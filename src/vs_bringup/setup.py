"""Install vs_bringup (ament_python; also installable with pip for the PyPI-wheel workflow).

The launch files and parameter files live at the workspace root (``launch/``, ``config/``) so that a
checkout can run them by path; a colcon build installs them into ``share/vs_bringup`` as well, where
:func:`vs_bringup.launch_logic.share_dir` finds them.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vs_bringup"


def _shared(pattern: str) -> list[str]:
    # Relative to this file: the workspace root is two levels up (src/vs_bringup).
    return sorted(glob(f"../../{pattern}"))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _shared("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", _shared("config/*.yaml")),
        (f"share/{PACKAGE}/config/rviz", _shared("config/rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="Visual Servo Maintainers",
    maintainer_email="maintainers@visual-servo.dev",
    description="Launch files and their tested logic, the MCAP run recorder, run reports and the simulated demo.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "demo = vs_bringup.demo:main",
            "report = vs_bringup.report:main",
        ],
    },
)
