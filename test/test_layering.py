"""Dependencies between the vs_* packages point one way (DESIGN.md §3), in code, tests and package.xml.

``vs_common`` at the bottom; ``vs_sim`` ← ``vs_perception`` ← ``vs_controllers``; the real-robot bridge knows
nothing of the simulator (its sim backend implements the bridge's backend protocol with vs_common's SE(3)
math); ``vs_bringup`` composes everything. Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: package → the other vs_* packages it may import (vs_msgs, the interfaces, counts as one).
ALLOWED = {
    "vs_common": set(),
    "vs_sim": {"vs_common"},
    "vs_perception": {"vs_common", "vs_sim", "vs_msgs"},
    "vs_controllers": {"vs_common", "vs_sim", "vs_perception", "vs_msgs"},
    "vs_robot_bridge": {"vs_common", "vs_msgs"},
    "vs_bringup": {"vs_common", "vs_sim", "vs_perception", "vs_controllers", "vs_robot_bridge", "vs_msgs"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level vs_* packages a Python file imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.startswith("vs_")}
    return found


def declared_dependencies(package: str) -> set[str]:
    root = ET.parse(SRC / package / "package.xml").getroot()
    tags = ("depend", "exec_depend", "build_depend", "test_depend")
    return {e.text.strip() for tag in tags for e in root.iter(tag) if e.text and e.text.startswith("vs_")}


def test_every_python_package_is_listed() -> None:
    assert {p.parent.name for p in SRC.glob("*/setup.py")} == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    """Code and tests of ``package`` import only the packages below it."""
    bad = {}
    for path in sorted((SRC / package).rglob("*.py")):
        extra = imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            bad[str(path.relative_to(SRC))] = sorted(extra)
    assert not bad, f"{package} may import only {sorted(ALLOWED[package])}; found {bad}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_xml_matches_the_layers(package: str) -> None:
    """package.xml declares no vs_* package above it, and every vs_* package its code imports."""
    declared = declared_dependencies(package)
    assert declared <= ALLOWED[package], f"{package}/package.xml depends on {sorted(declared - ALLOWED[package])}"
    code = set().union(*(imported_packages(p) for p in (SRC / package / package).rglob("*.py"))) - {package}
    assert code <= declared, f"{package} imports {sorted(code - declared)} without declaring it in package.xml"


def test_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The scan must catch a lazy import (guards against a check that cannot fail)."""
    (tmp_path / "m.py").write_text("def f():\n    from vs_sim.core.cells import make_cell\n    import vs_msgs.msg\n")
    assert imported_packages(tmp_path / "m.py") == {"vs_sim", "vs_msgs"}
