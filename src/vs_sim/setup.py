"""Install vs_sim (ament_python; also installable with pip for the PyPI-wheel workflow)."""

from setuptools import find_packages, setup

PACKAGE = "vs_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["data/scenes/*.json"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="Visual Servo Maintainers",
    maintainer_email="maintainers@visual-servo.dev",
    description="PyBullet simulated cell: procedural scenes, D435-like camera model, kinematic eye-in-hand TCP.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_camera = vs_sim.nodes.sim_camera:main",
            "vs_make_scenes = vs_sim.training.make_scenes:main",
        ],
    },
)
