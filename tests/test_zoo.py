"""Specification of the model zoo: every model loads offline and meets its targets; training works."""

import json

import pytest
import torch

from tokentree_env.models import load_model
from tokentree_env.zoo import ZOO
from tokentree_env.zoo.report import evaluate_zoo_model


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_loads_offline_with_a_lossless_tokenizer(name):
    lm = load_model(f"zoo:{name}")
    assert not lm.model.training
    assert lm.max_positions >= 256
    text = "12+35+20=47+20=67. rev abc=cba."
    ids = lm.tokenizer(text)["input_ids"]
    assert ids[0] == lm.tokenizer.bos_token_id
    assert lm.tokenizer.decode(ids, skip_special_tokens=True) == text


def test_zoo_has_three_architectures_in_two_styles_and_foreign_tokenizers():
    teachers = [m for m in ZOO.values() if m.role == "teacher" and "chain3" in m.mix]  # the default stack
    primary = ZOO["primary"]
    assert len({m.arch for m in teachers}) >= 3
    assert {m.style for m in teachers} == {"step", "terse"}
    assert any(m.tokenizer != primary.tokenizer for m in teachers)
    assert ZOO["teacher-llama"].arch == "llama" and ZOO["teacher-llama"].tokenizer == "bpe"
    pair = ZOO["pair-mistral-char"], ZOO["pair-mistral-bpe"]
    assert pair[0].tokenizer == primary.tokenizer != pair[1].tokenizer
    assert (pair[0].arch, pair[0].style, pair[0].mix) == (pair[1].arch, pair[1].style, pair[1].mix)
    # the primary is as wide as every teacher and at least as deep as the step-by-step teachers, which solve
    # chain3 at that size: it is weak on chain3 by training, not by size
    assert all(m.hidden == primary.hidden for m in teachers)
    assert all(primary.layers >= m.layers for m in teachers if m.style == "step")


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_meets_its_targets_on_200_heldout_problems(name):
    rows = evaluate_zoo_model(name, n=200)
    assert rows
    failed = [(r.metric, round(r.value, 3), r.target) for r in rows if r.met is False]
    assert not failed, f"{name} misses targets: {failed}"


def test_reduced_budget_training_lowers_the_loss_and_saves_loadable_models(tmp_path):
    from tokentree_env.zoo.train import train_zoo

    cards = train_zoo(tmp_path, ["teacher-gpt2", "judge"], budget=0.04, jobs=2, progress=False)
    for name, card in cards.items():
        losses = [x["loss"] for x in card["losses"]]
        assert losses[-1] < losses[0], name
        lm = load_model(str(tmp_path / name))
        out = lm.model(**lm.tokenizer("12+35=", return_tensors="pt"))
        assert torch.isfinite(out.logits).all()
        assert json.loads((tmp_path / name / "zoo_card.json").read_text())["spec"]["name"] == name


def test_the_chain5_teachers_differ_in_architecture_tokenizer_and_answer_style():
    from tokentree_env.zoo.catalog import CHAIN5_TEACHERS

    teachers = [ZOO[spec.removeprefix("zoo:")] for spec in CHAIN5_TEACHERS]
    for field in ("arch", "tokenizer", "style"):
        assert len({getattr(m, field) for m in teachers}) == 3, field


def test_the_chain5_judge_checks_without_working_the_problem_out():
    """The chain5 judge scores how likely an answer's own steps are (a checker of what it is shown); it
    generates nothing, so it never works the problem out; a right answer scores above a corrupted one."""
    from tokentree_env.judge import Judge
    from tokentree_env.zoo.catalog import CHAIN5_JUDGE

    judge = Judge(CHAIN5_JUDGE)
    assert judge.protocol == "likelihood"
    right = judge.verdict("12+35-20+11-5=", "12+35=47-20=27+11=38-5=33.")
    wrong = judge.verdict("12+35-20+11-5=", "12+35=47-20=27+11=39-5=34.")
    assert judge.counters.generated_tokens == 0  # it generated nothing: no working of its own
    assert right > wrong


@pytest.mark.integration
def test_the_chain5_testbed_meets_every_target_on_500_heldout_problems():
    """``tokentree zoo report``'s test-bed on 500 held-out problems (8 samples per teacher for coverage: a few
    minutes, so it runs in CI's integration step)."""
    from tokentree_env.zoo.testbed import testbed_report

    report = testbed_report(n=500)
    missed = [(f["name"], round(f["value"], 3), f["target"]) for f in report["figures"] if f["met"] is False]
    assert not missed, f"test-bed targets missed: {missed}"
