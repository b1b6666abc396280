"""Specification of the ``chain5-skills`` test-bed: its models, its declared gates, and the gates at CI size."""

import random

import pytest

from tokentree_env.zoo import ZOO
from tokentree_env.zoo.catalog import SKILLS_JUDGE, SKILLS_PRIMARY, SKILLS_TEACHERS, default_models
from tokentree_env.zoo.skills_testbed import GATES, majority_choice, oracle_choice

TEACHERS = [ZOO[spec.removeprefix("zoo:")] for spec in SKILLS_TEACHERS]


def test_default_models_of_the_skills_task_are_its_teachers_judge_and_primary():
    assert default_models("chain5-skills") == {"teachers": SKILLS_TEACHERS, "judge": SKILLS_JUDGE,
                                               "primary": SKILLS_PRIMARY}


def test_the_teachers_differ_in_architecture_and_tokenizer_and_write_one_format():
    for field in ("arch", "tokenizer"):
        assert len({getattr(m, field) for m in TEACHERS}) == 3, field
    assert {m.style for m in TEACHERS} == {"explicit"}
    assert ZOO["skills-qwen2"].tokenizer == ZOO[SKILLS_PRIMARY.removeprefix("zoo:")].tokenizer == "char"
    assert all(m.hidden == 64 and 2 <= m.layers <= 4 for m in (*TEACHERS, ZOO["skills-judge"], ZOO["skills-primary"]))


def test_every_hard_kind_is_wrong_for_two_teachers_with_one_rule_and_right_for_the_third():
    """A step-level majority must fail at every hard step (the two wrong teachers agree), and an oracle that picks
    the right teacher at each step can succeed (one teacher is right at every kind of step)."""
    from tokentree_env.tasks.skills import BUGS

    for kind in BUGS:
        wrong = [m.name for m in TEACHERS if kind in m.bugs]
        assert len(wrong) == 2, (kind, wrong)
    assert all(len(m.bugs) == 2 for m in TEACHERS)


def test_the_teachers_learn_their_wrong_rule_from_data_where_it_is_applied_consistently():
    """A teacher's trained text is its own rule worked from the last result written, whether that result is its
    own or a right one shown before it (as another teacher would leave it), so the rule holds after any prefix."""
    from tokentree_env.tasks.builtin import parse_chain, render
    from tokentree_env.tasks.skills import chain_partials, column_step
    from tokentree_env.zoo.train import sample_example

    for spec in TEACHERS:
        rng, shown_some = random.Random(0), 0
        for _ in range(60):
            prompt, segments = sample_example(spec, rng)
            (shown, _), (written, trained) = segments if len(segments) == 2 else [("", False), *segments]
            terms, ops = parse_chain(prompt)
            k = shown.count("=")
            partials = chain_partials(terms, ops)[:max(1, k)]
            for op, term in zip(ops[len(partials) - 1:], terms[len(partials):], strict=True):
                partials.append(column_step(partials[-1], op, term, spec.bugs))
            assert trained and shown + written == render(terms, ops, partials, "explicit")
            assert shown == render(terms, ops, chain_partials(terms, ops), "explicit")[:len(shown)]
            shown_some += k >= 2
        assert shown_some >= 10


def test_the_primary_is_pretrained_on_short_right_chains_in_the_one_format_never_a_five_term_chain():
    from tokentree_env.tasks.builtin import parse_chain
    from tokentree_env.zoo.train import sample_example

    spec, rng = ZOO["skills-primary"], random.Random(0)
    assert (spec.hidden, spec.layers) == (ZOO["chain5-primary"].hidden, ZOO["chain5-primary"].layers)
    for _ in range(200):
        prompt, _ = sample_example(spec, rng)
        if not prompt.startswith("rev"):
            assert len(parse_chain(prompt)[0]) <= 4


def test_the_gates_are_the_ones_declared_before_any_search():
    assert GATES == {"teacher_accuracy": (None, 0.40), "pooled_pass": (None, 0.50), "step_majority": (None, 0.50),
                     "ensemble_greedy": (None, 0.50), "oracle": (0.90, None), "judge_auc": (0.70, 0.90),
                     "primary_task": (None, 0.15), "primary_reverse": (0.80, None)}


def test_majority_keeps_the_step_most_teachers_write_and_the_oracle_a_right_one():
    from tokentree_env.tasks import load_task

    problem = load_task("chain5-skills").problems("heldout")[0]  # 43+37+13-34-15=: 43+37=80+13=93-34=59...
    prefix = "43+37="
    assert majority_choice(["80+13=", "70+13=", "70+13="], problem, prefix) == 1
    assert majority_choice(["80+13=", "70+13=", "81+13="], problem, prefix) == 0  # a tie: the lowest-numbered
    assert oracle_choice(["70+13=", "70+13=", "80+13="], problem, prefix) == 2
    assert oracle_choice(["70+13=", "71+13=", ""], problem, prefix) is None


def test_the_gates_report_runs_at_a_tiny_size_with_every_declared_target():
    from agents.evaluation import ensemble_greedy_rewards
    from tokentree_env.zoo.skills_testbed import skills_report

    report = skills_report(n=4, samples=3, ensemble=ensemble_greedy_rewards, split="train")
    targets = {f["name"]: f["target"] for f in report["figures"]}
    assert [targets[f"teacher {t}"] for t in SKILLS_TEACHERS] == ["<= 0.40"] * 3
    assert targets["pooled teachers' pass@3 (temperature 1)"] == "<= 0.50"
    assert targets["step-level majority"] == targets["ensemble greedy (mixture panel)"] == "<= 0.50"
    assert targets["oracle: a right teacher's step at every step"] == ">= 0.90"
    assert targets[f"primary {SKILLS_PRIMARY} on chain5-skills"] == "<= 0.15"
    assert targets[f"primary {SKILLS_PRIMARY} on reverse"] == ">= 0.80"
    assert set(report["kinds"]) == set(SKILLS_TEACHERS)
    assert all(0 <= f["low"] <= f["value"] <= f["high"] <= 1 for f in report["figures"] if "AUC" not in f["name"])


def test_without_ensemble_greedy_the_report_is_not_met():
    from tokentree_env.zoo.skills_testbed import skills_report

    report = skills_report(n=2, samples=1, judge=None, split="train")
    assert not report["all_met"]
    assert any("not measured" in f["name"] for f in report["figures"])


@pytest.mark.parametrize("n", [200])
def test_every_gate_is_met_at_ci_size_pass_at_16_on_200_heldout_problems(n):
    """The CI-sized gates: 200 held-out problems, pass@16 pooled (the full figures, 500 problems and pass@64, are
    ``tokentree zoo report``'s). Costs about 90 s on 2 shared cores, most of it ensemble greedy in the env."""
    from agents.evaluation import ensemble_greedy_rewards
    from tokentree_env.zoo.skills_testbed import skills_report

    report = skills_report(n=n, samples=16, ensemble=ensemble_greedy_rewards)
    missed = [(f["name"], round(f["value"], 3), f["target"]) for f in report["figures"] if f["met"] is False]
    assert not missed, f"chain5-skills gates missed at CI size: {missed}"
