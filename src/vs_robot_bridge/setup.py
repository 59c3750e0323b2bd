"""Install vs_robot_bridge (ament_python; also installable with pip for the PyPI-wheel workflow)."""

from setuptools import find_packages, setup

PACKAGE = "vs_robot_bridge"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="Visual Servo Maintainers",
    maintainer_email="maintainers@visual-servo.dev",
    description="Robot backends (ur_rtde, simulation) behind a tested safety layer, as a lifecycle node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "robot_bridge = vs_robot_bridge.nodes.robot_bridge:main",
            "vs_ur_check = vs_robot_bridge.tools.ur_check:main",
            "vs_bridge_latency = vs_robot_bridge.tools.latency_benchmark:main",
        ],
    },
)
