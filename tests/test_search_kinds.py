"""Where a search goes wrong on `chain5-skills`, read from answers: the kind of the first wrong step, and the writer
changes that the teachers' rules force."""

from benchmarks.search_kinds import kinds_of_row, rule_writers
from tokentree_env.tasks.skills import chain_kinds, chain_partials

BUGS = {"a": ("carry",), "b": ("borrow",), "c": ()}
PROMPT = "47+25-18+10+20="  # steps: carry (47+25=72), borrow (72-18=54), plain, plain
TERMS, OPS = [47, 25, 18, 10, 20], ["+", "-", "+", "+"]


def answer(partials: list[int]) -> str:
    text = f"{TERMS[0]}{OPS[0]}{TERMS[1]}={partials[1]}"
    for op, term, value in zip(OPS[1:], TERMS[2:], partials[2:], strict=True):
        text += f"{op}{term}={value}"
    return text + "."


def test_the_example_has_the_kinds_the_test_assumes():
    assert chain_kinds(TERMS, OPS) == ["carry", "borrow", "plain", "plain"]


def test_each_step_is_credited_to_the_teachers_whose_rule_writes_it():
    wrong_carry = chain_partials(TERMS, OPS, ("carry",))  # teacher a's answer: 47+25=62, then right from there
    read = rule_writers(PROMPT, answer(wrong_carry), BUGS)
    assert [kind for kind, _ in read] == chain_kinds(TERMS, OPS)
    assert read[0][1] == {"a"}  # only the carry-dropping rule gives 62
    assert read[1][1] == {"a", "c"}  # 62-18=44 is right from 62, and a borrows right


def test_a_writer_change_is_counted_where_no_single_rule_gives_two_steps_in_a_row():
    # step 1 by a's rule (carry dropped: 62), step 2 by b's rule from 62 (no borrow: 62-18=56): a and b differ on both
    partials = [47, 62, 56, 66, 86]
    read = rule_writers(PROMPT, answer(partials), BUGS)
    assert read[0][1] == {"a"} and read[1][1] == {"b"}
    row = kinds_of_row([{"prompt": PROMPT, "completion": answer(partials), "correct": 0.0}], BUGS)
    assert row["writer_changes"]["borrow"] == 1 and sum(row["writer_changes"].values()) == 1
    assert row["first_error"]["carry"] == 1 and sum(row["first_error"].values()) == 1  # first wrong at step 1


def test_a_right_answer_by_one_teacher_forces_no_change_and_has_no_first_error():
    right = chain_partials(TERMS, OPS)
    row = kinds_of_row([{"prompt": PROMPT, "completion": answer(right), "correct": 1.0}], BUGS)
    assert row["wrong"] == 0 and sum(row["first_error"].values()) == 0 and sum(row["writer_changes"].values()) == 0
    assert sum(row["steps"].values()) == 3  # the pairs of consecutive steps
