"""Specification of the real-model tasks held out by content: ``arith2-words`` (word problems), its verifier,
the ``arith-words`` overlap it replaces, and the ``probe-words`` general-ability probe."""

import random

import pytest

from tokentree_env.errors import ConfigError
from tokentree_env.tasks import BUILTIN_TASKS, Problem, builtin_task
from tokentree_env.tasks.probe import probe_items, probe_verifier
from tokentree_env.tasks.word_problems import (
    ARITH2_WORDS,
    WordProblemConfig,
    heldout_sharing_train,
    number_words,
    read_answer,
    word_problem_facts,
    word_problem_verifier,
    words_fact,
)


@pytest.fixture(scope="module")
def task():
    return builtin_task("arith2-words")


def _value(key: tuple) -> int:
    value = key[0]
    for op, n in zip(key[1::2], key[2::2], strict=True):
        value = value + n if op == "+" else value - n
    return value


# -- held out by content ------------------------------------------------------------------------

def test_the_task_is_built_in_with_200_heldout_problems(task):
    assert "arith2-words" in BUILTIN_TASKS and len(task.problems("heldout")) == 200


def test_every_problem_is_keyed_by_its_numbers_and_operations_and_answered_by_them(task):
    for problem in [*task.problems("train"), *task.problems("heldout")]:
        key = problem.content_key
        assert len(key) in (3, 5) and set(key[1::2]) <= {"+", "-"}
        assert problem.answer == str(_value(key))


def test_no_heldout_key_occurs_in_the_train_split(task):
    heldout = {p.content_key for p in task.problems("heldout")}
    assert len(heldout) == 200
    assert heldout.isdisjoint(p.content_key for p in task.problems("train"))


def test_no_train_problem_asks_a_step_that_a_heldout_problem_asks(task):
    heldout = {f for p in task.problems("heldout") for f in word_problem_facts(p)}
    assert all(heldout.isdisjoint(word_problem_facts(p)) for p in task.problems("train"))


def test_sample_never_draws_a_heldout_key_or_step_in_many_draws(task):
    rng = random.Random(0)
    draws = [task.sample(rng) for _ in range(5000)]
    assert not any(p.content_key in task.heldout_keys for p in draws)
    assert all(task.heldout_facts.isdisjoint(word_problem_facts(p)) for p in draws)


def test_the_sampler_alone_would_draw_heldout_keys_so_the_exclusion_is_what_holds_them_out(task):
    rng = random.Random(0)
    assert any(ARITH2_WORDS.sample(rng).content_key in task.heldout_keys for _ in range(5000))


def test_a_rewording_of_a_heldout_problem_is_held_out_too(task):
    held = task.problems("heldout")[0]
    reworded = Problem("Question: something else entirely\nAnswer:", held.answer, key=held.content_key)
    assert not task.trainable(reworded)


def test_a_problem_without_a_key_is_keyed_by_its_prompt():
    assert Problem("2+2=", "4").content_key == "2+2="


def test_an_answer_is_never_one_of_the_problem_numbers_nor_the_result_of_its_first_of_two_steps(task):
    for problem in task.problems("heldout"):
        key, answer = problem.content_key, int(problem.answer)
        assert answer not in key[::2] and (len(key) == 3 or answer != _value(key[:3]))


def _question(problem: Problem) -> str:
    """The problem's own question (after the worked examples every prompt starts with)."""
    return problem.prompt.rsplit("Question: ", 1)[1]


def test_problems_are_written_with_varied_names_and_objects(task):
    questions = [_question(p) for p in task.problems("heldout")]
    assert len({q.split(" has ")[0] for q in questions}) >= 20
    assert len({q.split(". ")[0].split(" ", 3)[-1] for q in questions}) >= 20


def test_numbers_are_written_in_words_or_in_digits(task):
    held = task.problems("heldout")
    assert any(f" {number_words(p.content_key[0])} " in _question(p) for p in held)
    assert any(f" {p.content_key[0]} " in _question(p) for p in held)


def test_every_prompt_starts_with_the_same_worked_examples_and_ends_with_the_answer_begun(task):
    for p in task.problems("heldout"):
        name = _question(p).split(" ")[0]
        assert p.prompt.startswith(ARITH2_WORDS.example) and p.prompt.endswith(f"?\nAnswer: {name} has")


def test_a_bad_difficulty_names_the_bad_value():
    with pytest.raises(ConfigError, match=r"start.*\(0, 5\)"):
        WordProblemConfig(start=(0, 5))
    with pytest.raises(ConfigError, match=r"'\*'"):
        WordProblemConfig(operations="*")
    with pytest.raises(ConfigError, match="two_steps.*1.5"):
        WordProblemConfig(two_steps=1.5)


def test_the_worked_examples_show_no_step_that_a_problem_asks(task):
    shown = {(30, "+", 4), (45, "-", 6), (39, "+", 3)}
    assert all(shown.isdisjoint(word_problem_facts(p)) for p in [*task.problems("train"), *task.problems("heldout")])
    assert all(max(f[0] for f in word_problem_facts(ARITH2_WORDS.sample(random.Random(i)))) < 30 for i in range(2000))


# -- arith-words, the task this replaces ----------------------------------------------------------

def test_arith_words_heldout_problems_repeat_train_facts_189_of_200():
    assert heldout_sharing_train(builtin_task("arith-words"), words_fact) == 189


def test_arith2_words_heldout_problems_repeat_no_train_step(task):
    assert heldout_sharing_train(task, word_problem_facts) == 0


# -- the verifier reads an answer as a person would --------------------------------------------

@pytest.mark.parametrize("completion", [
    "30", " 30", "30.", "thirty", "Thirty.", "The answer is 30 apples.", "Maya has thirty apples now.",
    "She has 30 apples left.", "Answer: 30",
])
def test_a_stated_answer_passes_in_digits_or_words(completion):
    assert word_problem_verifier(completion, "30") == 1.0


@pytest.mark.parametrize(("completion", "answer"), [
    ("thirty-one", "31"), ("thirty one", "31"), ("one hundred and five", "105"), ("Ninety-nine apples.", "99"),
])
def test_compound_number_words_are_read_whole(completion, answer):
    assert word_problem_verifier(completion, answer) == 1.0


@pytest.mark.parametrize("completion", [
    "23 + 15 - 8 = 30",
    "Maya has 23 + 15 - 8 = 30 apples.",
    "23 + 15 = 38\n38 - 8 = 30",
    "Maya has 23 + 15 = 38 apples.\nThen she gives away 8, so she has 38 - 8 = 30.",
    "Maya has 23 apples. She buys 15 more, so she has 38. Then she gives away 8 and has 30 left.",
])
def test_restated_operands_and_equations_are_read_at_their_result(completion):
    assert word_problem_verifier(completion, "30") == 1.0


@pytest.mark.parametrize("completion", [
    " 30\nQuestion: Tom has 5 pens. He buys 2 more. How many pens does he have now?\nAnswer: 7",
    " 30\nMaya has 23 apples. She buys 15 more.",
    "Maya has 23 + 15 - 8 = 30 apples. She has 23 + 15 +",
])
def test_what_follows_a_finished_answer_is_not_read_as_the_answer(completion):
    assert word_problem_verifier(completion, "30") == 1.0


@pytest.mark.parametrize("completion", [
    "31", "thirty-one", "23 + 15 - 8 = 31", "Maya has 23 apples.", "The answer is 38.", "30.5", "", "I don't know.",
    "Maya has 23 apples. She buys 15 more, so she has 38 - 8",
])
def test_a_wrong_or_missing_answer_fails(completion):
    assert word_problem_verifier(completion, "30") == 0.0


@pytest.mark.parametrize(("completion", "answer"), [
    ("Jonas has 9 - 6 = 3 pencils left. He gives away 6 pencils.", "3"),
    ("Chloe has 2 + 2 = 4 lemons. She picks up two more. She now has ", "4"),
    ("Tariq has 20 + 5 = 25 eggs. He gets five more from a friend,", "25"),
    ("7 + 5 = 12. She loses 3 and keeps 9.", "9"),
    ("7 + 5 = 12. Then she loses 3, so 9 are left.", "9"),
])
def test_a_retold_step_of_the_story_does_not_override_a_stated_result(completion, answer):
    assert word_problem_verifier(completion, answer) == 1.0


@pytest.mark.parametrize(("completion", "answer"), [
    ("Jonas has 9 - 6 = 2 pencils left. He gives away 3 pencils.", "3"),
    ("Chloe has 2 + 2 = 4 lemons. She picks up two more. She now has 6", "4"),
])
def test_a_retold_number_is_not_credited_and_a_later_result_wins(completion, answer):
    assert word_problem_verifier(completion, answer) == 0.0


def test_a_sum_left_unfinished_states_no_answer():
    assert read_answer("So she has 38 - 8") is None and read_answer("23 + 15 =") is None


def test_the_reference_solutions_pass_their_own_verifier(task):
    for problem in task.problems("heldout"):
        assert all(word_problem_verifier(text, problem.answer) == 1.0 for text in problem.solutions.values())


# -- the general-ability probe --------------------------------------------------------------------

def test_the_probe_holds_out_500_distinct_items_and_trains_on_the_rest():
    probe = builtin_task("probe-words")
    held, train = probe.problems("heldout"), probe.problems("train")
    assert len(held) == 500 and len({p.prompt for p in held}) == 500
    assert {p.prompt for p in held}.isdisjoint(p.prompt for p in train) and len(train) > 0


def test_the_probe_items_are_distinct():
    items = probe_items()
    assert len({p.prompt for p in items}) == len(items) >= 550


@pytest.mark.parametrize(("completion", "answer", "reward"), [
    ("The plural of cat is cats.", "cats", 1.0),
    ("Cats.", "cats", 1.0),
    ("The capital of Argentina is Buenos Aires.", "Buenos Aires", 1.0),
    ("The plural of fox is futes.", "foxes", 0.0),
    ("The opposite of hot is not cold.", "cold", 0.0),
    ("The plural of cat is catses.", "cats", 0.0),
    ("The opposite of hot is warm.\nThe opposite of hot is cold.", "cold", 0.0),
])
def test_the_probe_verifier_reads_the_right_word_in_the_first_line(completion, answer, reward):
    assert probe_verifier(completion, answer) == reward


def test_every_probe_reference_passes_its_verifier():
    assert all(probe_verifier(p.solutions["step"], p.answer) == 1.0 for p in probe_items())
