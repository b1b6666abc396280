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


@pytest.mark.parametrize(("before", "after", "best", "says"), [
    (0.30, 0.50, 0.70, "closed 50 % of the gap"),
    (0.58, 0.46, 0.36, "no gap to close"),  # a real primary already above its best teacher (README, real models)
    (0.40, 0.40, 0.40, "no gap to close"),
])
def test_the_closing_line_compares_the_primary_with_the_best_teacher_without_dividing_by_no_gap(before, after, best,
                                                                                                says):
    from agents.cli import _against_best_teacher

    line = _against_best_teacher({"task_accuracy_before": before, "task_accuracy_after": after,
                                  "teachers": {"best": best}})
    assert says in line and "nan" not in line
    assert _against_best_teacher({"task_accuracy_before": before, "task_accuracy_after": after, "teachers": {}}) == ""


def test_search_help_lists_every_agent_spec_and_says_what_batch_batches(capsys):
    from agents.cli import main
    from agents.specs import AGENT_SPECS

    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps lines at hyphens
    assert all(spec in text for spec in AGENT_SPECS)
    assert "episodes (prompts) each agent plays together in lockstep" in text


def test_coverage_first_self_play_and_the_student_in_the_panel_are_modes_of_train():
    from agents.cli import TRAIN_OPTIONS, build_parser
    from agents.training import TrainConfig

    args = build_parser().parse_args(["train", "--coverage-first", "--student-in-panel", "--distill-min-visits", "3"])
    config = TrainConfig(**{k: getattr(args, k) for k in TRAIN_OPTIONS})
    assert config.coverage_first and config.student_in_panel and config.distill_min_visits == 3
    plain = build_parser().parse_args(["train"])
    assert not TrainConfig(**{k: getattr(plain, k) for k in TRAIN_OPTIONS}).coverage_first


def test_train_refuses_a_simulation_count_its_agent_cannot_honour_naming_both(tmp_path):
    out = run_cli("train", "--agent", "mcts:4", "--simulations", "8", "--output-dir", str(tmp_path / "run"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "mcts:4" in out.stderr and "simulations=8" in out.stderr
