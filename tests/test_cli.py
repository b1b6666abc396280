"""Specification of the ``tokentree`` command line."""

import subprocess
import sys

import pytest


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    assert "zoo" in out.stdout


def test_an_error_is_one_line_with_a_hint_not_a_traceback():
    out = run_cli("zoo", "report", "--models", "nonexistent-model")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "error:" in out.stderr and "hint:" in out.stderr


HEAVY = ("torch", "transformers", "trl", "datasets")


@pytest.mark.parametrize("command", [[], ["train"], ["search"], ["view"], ["bench"], ["zoo"], ["zoo", "report"],
                                     ["zoo", "train"]])
def test_help_imports_no_heavy_library(command):
    """``tokentree [COMMAND] --help`` loads neither torch, transformers, TRL nor datasets (it stays quick)."""
    code = ("import sys; from agents.cli import main\n"
            f"try:\n    main({[*command, '--help']!r})\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
