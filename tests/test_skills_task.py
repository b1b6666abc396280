"""Specification of the ``chain5-skills`` task: its step kinds, its generator, and the teachers' wrong rules."""

import random
from collections import Counter

import pytest

from tokentree_env.errors import ConfigError
from tokentree_env.tasks import load_task
from tokentree_env.tasks.builtin import parse_chain
from tokentree_env.tasks.skills import (
    BUGS,
    MAX_PARTIAL,
    STEP_KINDS,
    chain_kinds,
    chain_partials,
    column_step,
    sample_skills_chain,
    step_kind,
)

GRID = [(p, op, t) for p in range(MAX_PARTIAL + 1) for op in "+-" for t in range(10, 100) if op == "+" or p >= t]


@pytest.mark.parametrize(("p", "op", "t", "kind"), [
    (35, "+", 12, "plain"), (120, "-", 10, "plain"), (47, "+", 25, "carry"), (147, "+", 25, "carry"),
    (52, "-", 17, "borrow"), (85, "+", 43, "hundred"), (120, "-", 30, "hundred"), (96, "+", 14, "mixed"),
    (105, "-", 17, "mixed"),
])
def test_a_step_is_of_the_kind_where_its_column_arithmetic_carries_or_borrows(p, op, t, kind):
    assert step_kind(p, op, t) == kind


def test_column_arithmetic_without_bugs_is_exact_everywhere():
    assert all(column_step(p, op, t) == (p + t if op == "+" else p - t) for p, op, t in GRID)


@pytest.mark.parametrize(("p", "op", "t", "bug", "wrong"), [
    (47, "+", 85, "carry", 122),  # the units carry is dropped
    (47, "+", 25, "carry", 62),
    (52, "-", 17, "borrow", 45),  # 7 - 2 = 5 in the units: the smaller digit from the larger, no borrow
    (143, "-", 28, "borrow", 125),
    (85, "+", 43, "hundred", 28),  # the hundreds digit of 85 kept
    (120, "-", 30, "hundred", 190),
    (60, "+", 40, "hundred", 0),
])
def test_each_wrong_rule_on_hand_examples(p, op, t, bug, wrong):
    assert column_step(p, op, t, {bug}) == wrong
    assert column_step(p, op, t, [bug]) == column_step(p, op, t, (bug,))  # a pure function of its arguments


def test_each_bug_bites_on_every_step_of_its_kind_and_on_no_step_of_another_kind():
    """The rules are consistent: a bug changes the result exactly on the steps of its own kind (mixed steps,
    which the sampler never draws, aside), so sampling a teacher cannot make it right there."""
    for p, op, t in GRID:
        kind = step_kind(p, op, t)
        if kind == "mixed":
            continue
        for bug in BUGS:
            changed = column_step(p, op, t, {bug}) != column_step(p, op, t)
            assert changed == (kind == bug), (p, op, t, bug)


def test_two_bugs_on_a_step_of_one_kind_give_that_kinds_wrong_result():
    assert column_step(47, "+", 85, {"carry", "borrow"}) == column_step(47, "+", 85, {"carry"}) == 122
    assert column_step(85, "+", 43, {"carry", "hundred"}) == column_step(85, "+", 43, {"hundred"}) == 28


@pytest.mark.parametrize(("args", "word"), [((-1, "+", 5), "-1"), ((5, "*", 5), "'*'"), ((5, "-", 50), "5-50"),
                                            ((47, "+", 5, {"slip"}), "slip")])
def test_bad_arguments_raise_an_error_naming_the_value(args, word):
    with pytest.raises(ConfigError, match=word.replace("*", r"\*").replace("(", r"\(")):
        column_step(*args)


def test_a_buggy_chain_works_from_its_own_written_results():
    terms, ops = [46, 22, 39, 80, 20], ["+", "-", "+", "+"]
    assert chain_partials(terms, ops) == [46, 68, 29, 109, 129]
    assert chain_partials(terms, ops, {"borrow", "hundred"}) == [46, 68, 31, 11, 31]  # 31+80 keeps hundreds 0
    assert chain_kinds(terms, ops) == ["plain", "borrow", "hundred", "plain"]


def test_the_sampler_draws_only_single_kind_steps_in_range_and_repeats_by_seed():
    rng = random.Random(0)
    for _ in range(300):
        terms, ops = sample_skills_chain(rng)
        assert len(terms) == 5 and all(10 <= t <= 99 for t in terms)
        assert all(0 <= x <= MAX_PARTIAL for x in chain_partials(terms, ops))
        assert set(chain_kinds(terms, ops)) <= set(STEP_KINDS)
    assert sample_skills_chain(random.Random(3)) == sample_skills_chain(random.Random(3))
    with pytest.raises(ConfigError, match="slip"):
        sample_skills_chain(random.Random(0), weights={"slip": 1.0})


def test_the_heldout_problems_mix_kinds_most_with_steps_of_several_hard_kinds():
    task = load_task("chain5-skills")
    problems = task.problems("heldout")
    assert len(problems) == 500 and not {p.prompt for p in problems} & {p.prompt for p in task.problems("train")}
    kinds = [chain_kinds(*parse_chain(p.prompt)) for p in problems]
    steps = Counter(k for row in kinds for k in row)
    assert all(steps[k] / sum(steps.values()) >= 0.15 for k in STEP_KINDS), steps
    assert sum(len(set(row) - {"plain"}) >= 2 for row in kinds) / len(kinds) > 0.5
    assert sum(all(k == "plain" for k in row) for row in kinds) / len(kinds) < 0.05


def test_the_one_answer_format_is_the_chain_with_its_first_operation_written_out():
    task = load_task("chain5-skills")
    problem = task.problems("heldout")[0]
    answer = problem.solutions["explicit"]
    assert task.answer_format.style_of(problem.prompt, answer) == "explicit"
    assert task.verify(problem, answer) == 1.0
    assert answer.startswith(problem.prompt.split("+")[0].split("-")[0])
