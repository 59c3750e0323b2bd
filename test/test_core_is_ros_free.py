"""Every ``core`` module must import without rclpy or any message package (STYLE.md rule 1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def core_modules() -> list[str]:
    mods = []
    for path in sorted(SRC.glob("*/*/core/**/*.py")):
        rel = path.relative_to(path.parents[len(path.relative_to(SRC).parts) - 2])
        mod = ".".join(rel.with_suffix("").parts)
        mods.append(mod.removesuffix(".__init__"))
    return mods


CHECK = textwrap.dedent("""
    import importlib, sys
    def ros_loaded():
        return sorted(m for m in sys.modules
                      if m.split(".")[0] in ("rclpy", "rosidl_runtime_py", "rosidl_parser")
                      or m.split(".")[0].endswith("_msgs") or m.split(".")[0].endswith("_srvs"))
    for m in sys.argv[1:]:
        importlib.import_module(m)
        bad = ros_loaded()
        if bad:
            print(f"importing {m} loaded ROS modules:", ", ".join(bad[:10]))
            sys.exit(1)
""")


def test_core_modules_found() -> None:
    mods = core_modules()
    assert "vs_common.core.errors" in mods and "vs_common.core.se3" in mods


PACKAGES = sorted({m.split(".")[0] for m in core_modules()})


@pytest.mark.parametrize("package", PACKAGES)
def test_core_modules_import_without_ros(package: str) -> None:
    """One fresh interpreter per package imports each of its core modules in turn."""
    mods = [m for m in core_modules() if m.split(".")[0] == package]
    res = subprocess.run([sys.executable, "-c", CHECK, *mods], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{package}: {res.stdout}{res.stderr[-2000:]}"


def test_checker_catches_rclpy(tmp_path: Path) -> None:
    """The check itself must fail when a module pulls in rclpy (guards against a check that cannot fail)."""
    (tmp_path / "badcore.py").write_text("import rclpy\n")
    res = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + CHECK,
                          "badcore"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "rclpy" in res.stdout
