"""Specification of the reward terms and the terminal rules, on constructed cases."""

import math

import pytest

from tokentree_env.errors import ConfigError
from tokentree_env.rewards import RewardConfig, final_terms, step_terms
from tokentree_env.teachers.base import Context
from tokentree_env.terminal import TerminalConfig, TerminalDetector

TEXTS = {0: "", 1: "", 2: "", 5: "4", 6: ".", 7: "!", 8: "ab"}  # 2 is EOS


class FixedJudge:
    def __init__(self, p):
        self.p, self.asked = p, 0

    def p_complete(self, context):
        self.asked += 1
        return self.p


def detector(p=0.9, **kw):
    judge = FixedJudge(p)
    return TerminalDetector(TerminalConfig(**kw), eos_id=2, token_text=TEXTS.__getitem__, judge=judge), judge


CTX = Context((1, 5), "4")


def test_panel_logprob_is_alpha_times_the_panels_logprob_of_the_child_and_each_token_costs():
    terms = step_terms(math.log(0.375), RewardConfig(alpha=0.1, length_cost=0.01))
    assert terms["panel_logprob"] == pytest.approx(0.1 * math.log(0.375))
    assert terms["length_cost"] == -0.01


def test_final_terms_weight_the_task_the_judge_and_the_excess_length():
    cfg = RewardConfig(task_weight=2.0, judge_weight=0.1, excess_length_weight=0.5)
    terms = final_terms(hard_reward=1.0, judge_p_yes=0.75, length=7, min_length=4, config=cfg)
    assert terms == pytest.approx({"task": 2.0, "judge": 0.05, "excess_length": -1.5})


def test_no_excess_length_penalty_at_or_below_the_shortest_teacher_path():
    terms = final_terms(hard_reward=0.0, judge_p_yes=None, length=3, min_length=4, config=RewardConfig())
    assert terms == {"task": 0.0, "excess_length": 0.0}


def test_a_withheld_verifier_leaves_the_task_term_out():
    assert "task" not in final_terms(hard_reward=None, judge_p_yes=0.5, length=1, min_length=None,
                                     config=RewardConfig())


@pytest.mark.parametrize("bad", [{"alpha": -1}, {"judge_weight": float("nan")}, {"nope": 1}])
def test_bad_reward_weights_raise_naming_the_field(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        RewardConfig.coerce(bad)


def test_choosing_eos_terminates_without_asking_the_judge():
    d, judge = detector()
    assert d.check(2, CTX, 1) == (True, False, "eos")
    assert judge.asked == 0


def test_punctuation_asks_the_judge_and_terminates_when_it_says_complete():
    d, judge = detector(p=0.9, threshold=0.5)
    assert d.check(6, CTX, 2) == (True, False, "judge")
    assert judge.asked == 1


def test_punctuation_continues_when_the_judge_says_unfinished():
    d, _ = detector(p=0.1, threshold=0.5)
    assert d.check(7, CTX, 2) == (False, False, None)


def test_other_tokens_never_ask_the_judge():
    d, judge = detector()
    assert d.check(5, CTX, 2) == (False, False, None)
    assert judge.asked == 0


def test_the_length_limit_truncates():
    d, _ = detector(p=0.0, max_new_tokens=3)
    assert d.check(5, CTX, 3) == (False, True, "max_new_tokens")


def test_custom_punctuation_is_respected():
    d, _judge = detector(p=1.0, punctuation="b")
    assert d.check(8, CTX, 1) == (True, False, "judge")
    assert d.check(6, CTX, 1) == (False, False, None)
