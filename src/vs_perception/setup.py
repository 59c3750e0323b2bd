"""Install vs_perception (ament_python; also installable with pip for the PyPI-wheel workflow)."""

from setuptools import find_packages, setup

PACKAGE = "vs_perception"

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
    description="Cameras, keypoints, matching, relative depth, goal management and debug views.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "camera = vs_perception.nodes.camera_node:main",
            "relative_depth = vs_perception.nodes.relative_depth_node:main",
            "observer = vs_perception.nodes.observer:main",
            "goal = vs_perception.nodes.goal:main",
        ],
    },
)
