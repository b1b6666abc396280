"""Specification of the task suite: verifiers, built-in splits, JSONL and datasets loading."""

import json

import pytest

from tokentree_env.errors import ConfigError, TaskFormatError
from tokentree_env.tasks import (
    builtin_task,
    exact_verifier,
    extract_final_answer,
    load_jsonl_task,
    load_task,
    numeric_verifier,
    task_from_dataset,
)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("47+20=67.", "67"),  # step-by-step chain
        ("67.", "67"),  # terse
        ("The answer is 67", "The answer is 67"),
        ("47+20=", ""),  # unfinished chain: no answer yet
        ("", ""),
        ("  \n47+20=67.\n", "67"),  # whitespace and trailing newline
        ("dcba.", "dcba"),
    ],
)
def test_extract_final_answer_handles_every_style(completion, expected):
    assert extract_final_answer(completion) == expected


@pytest.mark.parametrize(
    ("completion", "reward"),
    [
        ("47+20=67.", 1.0),
        ("67.", 1.0),
        ("The answer is 67.", 1.0),
        ("47+20=68.", 0.0),
        ("67.5", 0.0),
        ("47+20=", 0.0),
        ("", 0.0),
        ("abc", 0.0),
        ("4+7=6+7", 0.0),
    ],
)
def test_numeric_verifier_on_right_wrong_and_odd_answers(completion, reward):
    assert numeric_verifier(completion, "67") == reward


def test_exact_verifier_compares_the_final_answer_exactly():
    assert exact_verifier("dcba.", "dcba") == 1.0
    assert exact_verifier("dcb.", "dcba") == 0.0
    assert exact_verifier("DCBA.", "dcba") == 0.0


@pytest.mark.parametrize("name", ["chain3", "add2", "reverse"])
def test_builtin_splits_are_disjoint_fixed_and_verified_by_their_own_solutions(name):
    task = builtin_task(name)
    train = {p.prompt for p in task.problems("train")}
    heldout = [p.prompt for p in task.problems("heldout")]
    assert train.isdisjoint(heldout)
    assert len(set(heldout)) == len(heldout) == 500
    for p in task.problems("heldout")[:50]:
        for solution in p.solutions.values():
            assert task.verify(p, solution) == 1.0
            assert solution.endswith(".")


def test_default_task_is_a_three_addend_chain():
    p = builtin_task("chain3").problems("heldout")[0]
    a, b, c = (int(x) for x in p.prompt.rstrip("=").split("+"))
    assert all(10 <= x <= 99 for x in (a, b, c))
    assert p.solutions["step"] == f"{a + b}+{c}={a + b + c}."
    assert p.solutions["terse"] == f"{a + b + c}."


def test_builtin_sample_never_returns_a_heldout_prompt():
    import random

    task = builtin_task("add2")
    rng = random.Random(0)
    assert not any(task.sample(rng).prompt in task.heldout_prompts for _ in range(3000))


def test_unknown_builtin_task_names_the_choices():
    with pytest.raises(ConfigError, match="chain3"):
        builtin_task("chian3")


def _write(tmp_path, lines):
    path = tmp_path / "mytask.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_task_loads_prompts_answers_splits_and_verifiers(tmp_path):
    rows = [{"prompt": f"{i}+1=", "answer": str(i + 1), "verifier": "numeric"} for i in range(20)]
    rows.append({"prompt": "hi", "answer": "there", "split": "heldout"})
    task = load_jsonl_task(_write(tmp_path, [json.dumps(r) for r in rows]))
    assert len(task.problems("train")) + len(task.problems("heldout")) == 21
    assert any(p.prompt == "hi" for p in task.problems("heldout"))
    p = next(p for p in [*task.problems("train"), *task.problems("heldout")] if p.prompt == "3+1=")
    assert task.verify(p, "The answer is 4.") == 1.0


def test_a_user_verifier_function_is_chosen_in_python_not_named_by_the_file(tmp_path):
    path = str(_write(tmp_path, [json.dumps({"prompt": "x", "answer": "a"})]))
    task = load_task(path, verifier="tests.user_verifiers:always_half")
    problem = [*task.problems("train"), *task.problems("heldout")][0]
    assert task.verify(problem, "anything") == 0.5
    with pytest.raises(ConfigError, match="built-in task"):
        load_task("chain3", verifier="numeric")


def test_a_task_files_header_declares_answer_styles_and_step_boundaries_as_data(tmp_path):
    header = {"task": {"styles": {"sum": "{t1}{o1}{t2}={n}\\."}, "step_boundaries": "[=.]"}}
    path = _write(tmp_path, [json.dumps(header), json.dumps({"prompt": "12+35=", "answer": "47"})])
    task = load_jsonl_task(path)
    assert len([*task.problems("train"), *task.problems("heldout")]) == 1
    assert task.answer_format.style_of("12+35=", "12+35=47.") == "sum"
    assert task.answer_format.style_of("12+35=", "47.") is None
    assert task.answer_format.at_boundary("12+35=") and not task.answer_format.at_boundary("12+3")
    bad = _write(tmp_path, [json.dumps({"task": {"styles": {"x": "("}}}), json.dumps({"prompt": "1", "answer": "1"})])
    with pytest.raises(TaskFormatError, match="not a valid regular expression"):
        load_jsonl_task(bad)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"prompt": "x"}), "missing field 'answer'"),
        (json.dumps(["x", "y"]), "expected a JSON object"),
        (json.dumps({"prompt": "x", "answer": "y", "split": "test"}), "split"),
        (json.dumps({"prompt": "x", "answer": "y", "verifier": "tests.user_verifiers:always_half"}),
         "never names code to import"),
    ],
)
def test_malformed_jsonl_line_names_the_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path, [json.dumps({"prompt": "1+1=", "answer": "2"}), bad_line])
    with pytest.raises(TaskFormatError, match=message) as info:
        load_jsonl_task(path)
    assert f"{path}:2" in str(info.value)


def test_task_from_a_datasets_dataset_keeps_its_splits():
    from datasets import Dataset, DatasetDict

    ds = DatasetDict({
        "train": Dataset.from_dict({"q": ["1+1=", "2+2="], "a": ["2", "4"]}),
        "test": Dataset.from_dict({"q": ["3+3="], "a": ["6"]}),
    })
    task = task_from_dataset(ds, prompt_field="q", answer_field="a", verifier="numeric")
    assert [p.prompt for p in task.problems("heldout")] == ["3+3="]
    assert task.verify(task.problems("heldout")[0], "6.") == 1.0


@pytest.mark.parametrize(("completion", "expected"), [
    (" 12", 1.0), ("twelve", 1.0), ("The answer is 12.", 1.0), ("7 + 5 = 12", 1.0),
    ("Seven plus five is twelve.", 1.0), ("7 + 5 = 13", 0.0), ("12 is wrong, it is 13", 0.0),
    ("", 0.0), ("I do not know", 0.0), (" 13\n12", 0.0)])
def test_the_words_verifier_reads_the_result_a_restated_question_ends_with(completion, expected):
    """The last number of the first line counts, in digits or words: "7 + 5 = 12" is right, a later line never."""
    from tokentree_env.tasks.builtin import words_verifier

    assert words_verifier(completion, "12") == expected


def test_the_built_in_tasks_work_out_a_prompt_written_as_theirs_and_no_other():
    assert builtin_task("chain3").solve("12+30+41=").answer == "83"
    assert builtin_task("chain5").solve("90-12+5-3+1=").answer == "81"
    assert builtin_task("add2").solve("12+35=").solutions["step"] == "47."
    assert builtin_task("reverse").solve("rev abc=").answer == "cba"
    for task, prompt in [("chain3", "012+3="), ("chain3", "twelve plus three="), ("reverse", "rev ABC="),
                         ("arith-words", "Question: What is two plus two?\nAnswer:")]:
        assert builtin_task(task).solve(prompt) is None
