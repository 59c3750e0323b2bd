"""Install vs_controllers (ament_python; also installable with pip for the PyPI-wheel workflow)."""

from setuptools import find_packages, setup

PACKAGE = "vs_controllers"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["weights/*.pt", "weights/*.md", "weights/*.csv", "weights/*.jsonl"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="Visual Servo Maintainers",
    maintainer_email="maintainers@visual-servo.dev",
    description="Visual-servo controllers (IBVS, CNS, Depth-PC, KOVIS, DFBVS), training CLIs and the benchmark.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "servo_controller = vs_controllers.nodes.servo_controller:main",
            "vs_benchmark = vs_controllers.benchmark.cli:main",
        ],
    },
)
