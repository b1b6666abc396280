"""Specification of training the primary: datasets, losses, forgetting penalties."""

import math

import pytest
import torch

from agents.training import (
    EWC,
    SynapticIntelligence,
    distillation_dataset,
    dpo_dataset,
    sft_dataset,
    visit_distillation_loss,
)
from tests.helpers import char_primary, loaded


def _record(prompt, completion, hard, ret, tok, q=None):
    tokens = tok(completion, add_special_tokens=False)["input_ids"]
    steps = []
    for t in tokens:
        other = tok.convert_tokens_to_ids("9") if t != tok.convert_tokens_to_ids("9") else tok.convert_tokens_to_ids("8")
        rest = [other, *tok("+9=99.", add_special_tokens=False)["input_ids"]]  # the sibling's completed answer
        steps.append({"candidates": [t, other], "directions": ["right", "wrong"], "prior": [0.5, 0.5], "chosen": 0,
                      "reward": 0.0, "visits": [0.75, 0.25], "q_values": q or [1.0, -1.0],
                      "continuations": [[], rest]})
    return {"prompt": prompt, "completion": completion, "hard_reward": hard, "episode_return": ret,
            "tokens": tokens, "prompt_ids": tok(prompt)["input_ids"], "records": steps}


@pytest.fixture
def store_records():
    tok = char_primary()
    return tok, [_record("1+2+3=", "3+3=6.", 1.0, 0.5, tok), _record("1+2+3=", "6.", 1.0, 0.9, tok),
                 _record("1+2+3=", "7.", 0.0, 1.5, tok), _record("4+4+4=", "12.", 0.0, 0.1, tok)]


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_sft_keeps_the_best_successful_path_per_prompt_as_the_ids_the_search_played(store_records):
    tok, records = store_records
    rows = sft_dataset(records, tok).to_list()
    best = records[1]
    answer = [*best["tokens"], tok.eos_token_id]
    assert rows == [{"input_ids": best["prompt_ids"] + answer,
                     "completion_mask": [0] * len(best["prompt_ids"]) + [1] * len(answer)}]


def test_dpo_pairs_the_chosen_continuation_against_a_lower_valued_siblings_whole_answer(store_records):
    tok, records = store_records
    rows = dpo_dataset(records, tok).to_list()
    eos, prompt = tok.eos_token_id, records[1]["prompt_ids"]
    assert rows[0] == {"prompt_ids": prompt, "chosen_ids": [*_ids(tok, "6."), eos],
                       "rejected_ids": [*_ids(tok, "9+9=99."), eos]}
    assert rows[1] == {"prompt_ids": prompt + _ids(tok, "6"), "chosen_ids": [*_ids(tok, "."), eos],
                       "rejected_ids": [*_ids(tok, "9+9=99."), eos]}


CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.mark.parametrize("templated", [False, True], ids=["bare prompt", "chat template"])
def test_every_signal_trains_on_the_ids_and_prompt_format_the_search_played(store_records, templated):
    """SFT, DPO and distillation rows hold the episode's own ids; rows built from text (a teacher's answer, general
    replay) take the primary's prompt format; an RL row's prompt gives the same ids once TRL has read it."""
    from agents.training.datasets import general_dataset, general_preferences, trl_prompt
    from tokentree_env.models.prompts import prompt_ids

    tok, records = store_records
    if templated:
        tok.chat_template = CHAT_TEMPLATE
    played = prompt_ids(tok, "1+2+3=")  # what the env's tree of this prompt starts with
    assert (tok("<|user|>1+2+3=\n<|assistant|>", add_special_tokens=False)["input_ids"] if templated
            else tok("1+2+3=")["input_ids"]) == played
    records = [r | {"prompt_ids": played} for r in records]
    assert sft_dataset(records, tok)[0]["input_ids"][: len(played)] == played
    assert all(row["prompt_ids"][: len(played)] == played for row in dpo_dataset(records, tok))
    assert all(row["input_ids"][: len(played)] == played for row in distillation_dataset(records))
    text_only = [{"prompt": "1+2+3=", "completion": "6.", "hard_reward": 1.0, "episode_return": 1.0}]
    assert sft_dataset(text_only, tok)[0]["input_ids"] == [*played, *_ids(tok, "6."), tok.eos_token_id]
    from tokentree_env.tasks import builtin_task

    general = builtin_task("reverse").problems("train")[:1]
    assert general_dataset(general, tok)[0]["input_ids"][: len(prompt_ids(tok, general[0].prompt))] == prompt_ids(
        tok, general[0].prompt)
    assert general_preferences(general, tok)[0]["prompt_ids"] == prompt_ids(tok, general[0].prompt)
    row = trl_prompt(tok, "1+2+3=")  # TRL reads a conversational prompt through the template, text as it stands
    trl_ids = (tok.apply_chat_template(row, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
               if templated else tok(text=row)["input_ids"])
    assert list(trl_ids) == played


def test_the_trl_reward_functions_score_text_and_conversational_rows():
    from agents.training.rewards import judge_reward, task_reward, verifier_reward
    from tokentree_env.tasks import builtin_task

    prompts = ["12+35+20=", [{"role": "user", "content": "1+2+3="}]]
    completions = ["47+20=67.", [{"role": "assistant", "content": "7."}]]
    assert verifier_reward(builtin_task("chain3"))(prompts, completions, answer=["67", "6"]) == [1.0, 0.0]
    assert task_reward()(prompts, completions, answer=["67", "6"], task=["chain3", "chain3"]) == [1.0, 0.0]

    class Judge:  # says yes in proportion to the answer's length, to show what it was given
        def verdict(self, prompt, completion):
            assert isinstance(prompt, str) and isinstance(completion, str)
            return len(completion) / 10

    assert judge_reward(Judge())(prompts, completions) == pytest.approx([0.8, -0.6])
    assert judge_reward(Judge(), tasks=("chain5",))(prompts, completions, task=["chain3", "chain5"]) == pytest.approx(
        [0.0, -0.6])


def test_distillation_rows_hold_context_ids_children_and_visits(store_records):
    tok, records = store_records
    rows = distillation_dataset(records[:1]).to_list()
    assert len(rows) == len(records[0]["tokens"])
    assert rows[1]["input_ids"] == tok("1+2+3=")["input_ids"] + records[0]["tokens"][:1]
    assert rows[0]["visits"] == [0.75, 0.25]


def test_the_distillation_loss_equals_a_hand_computed_value():
    logits = torch.tensor([[0.0, math.log(3.0), 0.0, 5.0]])  # token 3 is not a child: renormalised away
    children = torch.tensor([[1, 0, -1]])
    visits = torch.tensor([[0.5, 0.5, 0.0]])
    # over children {1, 0}: p = 3/4, 1/4
    expected = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    assert visit_distillation_loss(logits, children, visits).item() == pytest.approx(expected, rel=1e-6)


def _perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))


def test_ewc_penalty_is_zero_at_the_anchor_and_positive_after_a_perturbation():
    tok = char_primary()
    model = loaded(tok).model
    ewc = EWC(strength=10.0)
    ewc.refresh(model, tok, [("rev abc=", "cba."), ("rev xy=", "yx.")])
    assert ewc.penalty(model).item() == 0.0
    _perturb(model)
    assert ewc.penalty(model).item() > 0.0


def test_si_penalty_is_zero_at_the_anchor_and_positive_after_a_perturbation():
    tok = char_primary()
    model = loaded(tok).model
    si = SynapticIntelligence(strength=1.0)
    si.begin_round(model)
    for name, p in model.named_parameters():  # a round whose steps decreased the loss
        si.omega[name] = torch.ones_like(p)
    _perturb(model)
    si.end_round(model)
    assert si.penalty(model).item() == 0.0
    _perturb(model)
    assert si.penalty(model).item() > 0.0


def test_anchor_importance_is_normalised_so_a_uniform_shift_costs_strength_times_its_square():
    tok = char_primary()
    model = loaded(tok).model
    ewc = EWC(strength=3.0)
    ewc.refresh(model, tok, [("rev abc=", "cba."), ("rev xy=", "yx.")])
    count = sum(v.numel() for v in ewc.importance.values())
    assert math.isclose(sum(float(v.sum()) for v in ewc.importance.values()) / count, 1.0, rel_tol=1e-4)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # every parameter moves by 0.1: penalty = 3 · mean(importance) · 0.01
    assert math.isclose(ewc.penalty(model).item(), 3.0 * 0.01, rel_tol=1e-3)
