"""Install vs_common (ament_python; also installable with pip for the PyPI-wheel workflow)."""

from setuptools import find_packages, setup

PACKAGE = "vs_common"

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
    description="Shared error hierarchy, typed-config helpers and ROS conversions used by every vs_* package.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            # "name = vs_common.nodes.module:main",
        ],
    },
)
