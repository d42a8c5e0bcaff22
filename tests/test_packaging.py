"""Packaging: pyproject.toml agrees with the requirements files, the wheel holds the engine
and its ``gpo-studio`` command (never the test doubles), and the engine imports no test,
benchmark or app code."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    """The normalized project name of a requirement line ("llama-cpp-python>=0.3.7")."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]).lower()


def _requirements(file: str) -> set[str]:
    lines = (ROOT / file).read_text(encoding="utf-8").splitlines()
    return {_name(line) for line in lines if line.strip() and not line.lstrip().startswith(("#", "-r"))}


def test_pyproject_lists_the_packages_of_the_requirements_files():
    project = PYPROJECT["project"]
    assert {_name(r) for r in project["dependencies"]} == _requirements("requirements.txt")
    extras = project["optional-dependencies"]
    assert {_name(r) for r in extras["dev"]} == _requirements("requirements-dev.txt")
    assert {_name(r) for r in extras["bench"]} == _requirements("requirements-bench.txt")
    assert {"ruff", "pyright"} <= {_name(r) for r in extras["dev"]}


def test_the_console_script_is_the_cli(capsys):
    assert PYPROJECT["project"]["scripts"] == {"gpo-studio": "gpo_core.cli:main"}
    from gpo_core.cli import main

    assert main(["schedule", "--steps", "3", "--initial", "30", "--final", "10"]) == 0
    budgets = [int(x) for x in capsys.readouterr().out.split()]
    assert len(budgets) == 3 and budgets[-1] == 10 and budgets == sorted(budgets, reverse=True)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "usage: gpo-studio" in capsys.readouterr().out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_engine_never_imports_test_benchmark_or_app_code():
    forbidden = {"gpo_testkit", "tests", "benchmarks", "benchlib", "pages", "app", "app_support", "engine_fakes",
                 "pytest"}
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden)
                 for p in (ROOT / "gpo_core").rglob("*.py") if _imports(p) & forbidden}
    assert offenders == {}


def test_the_wheel_holds_the_engine_and_its_command_only(tmp_path):
    """Built from a copy (a build writes build/ and *.egg-info next to pyproject.toml)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gpo_core", src / "gpo_core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp_path / "dist").glob("gpo_studio-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"gpo_core"}
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "gpo_core").rglob("*.py")
                if "__pycache__" not in p.parts}
    assert expected <= set(names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]" in text and "gpo-studio = gpo_core.cli:main" in text
    from gpo_core import __version__

    assert wheel.name.startswith(f"gpo_studio-{__version__}-")
