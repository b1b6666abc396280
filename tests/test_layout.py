"""The repository's layout holds: modules stay small, every package is installed, the harness lives in benchmarks/."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
"""The module size limit (tests, examples and the benchmark harness included)."""
FOLDERS = ("tokentree_env", "agents", "benchmarks", "tests", "examples")


def _modules():
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_at_most_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (> {MAX_LINES}): split it by concern"


def test_every_package_folder_is_installed_under_its_import_name():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {str(p.parent.relative_to(ROOT)).replace("/", ".") for folder in ("tokentree_env", "agents")
               for p in (ROOT / folder).rglob("__init__.py")}
    assert set(config["packages"]) == folders | {"tokentree_benchmarks"}
    assert config["package-dir"] == {"tokentree_benchmarks": "benchmarks"}


def test_the_agents_package_holds_no_benchmark_harness_and_the_contracts_say_who_may_import_it():
    assert not (ROOT / "agents" / "bench").exists()
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    harness = next(c for c in contracts if "tokentree_benchmarks" in c.get("forbidden_modules", []))
    assert set(harness["source_modules"]) == {"tokentree_env", "agents"}
    assert harness["ignore_imports"] == ["agents.cli -> tokentree_benchmarks.suite"]  # the one exception
