"""Specification of the ``tokentree`` command line."""

import subprocess
import sys


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
