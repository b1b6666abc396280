"""Specification of the env's rollouts: the panel's rollouts without observations play the episodes that rolling out
through ``simulate`` plays, token for token; the writer's rollouts are charged and valued as declared; the judge
reads an answer through its cache to the value a whole forward gives."""

import numpy as np
import pytest

from agents.search import MCTSAgent, MCTSConfig
from agents.search.lockstep import play_lockstep
from tokentree_env.env import TokenTreeEnv
from tokentree_env.errors import ConfigError
from tokentree_env.zoo.catalog import default_models

PROMPTS = ["47-12+85-30+19=", "13+26+51-24+49=", "60-21+18+33-40="]


def _env(**kw):
    m = default_models("chain5")
    return TokenTreeEnv(teachers=list(m["teachers"]), primary=m["primary"], judge=m["judge"], task="chain5",
                        split="train", max_new_tokens=40, planner_verifier=True, **kw)


def _play(env, config):
    records = play_lockstep(env, [MCTSAgent(config) for _ in PROMPTS], [(i, p, [0]) for i, p in enumerate(PROMPTS)],
                            seed=0, iteration=0)
    return sorted(records, key=lambda r: r["prompt_index"])


def test_the_envs_panel_rollouts_play_the_episodes_that_stepping_through_simulate_plays():
    """Token for token, visit for visit; Q values to the last digits a padded batch can move (1e-5)."""
    config = MCTSConfig(num_simulations=4, dirichlet_fraction=0.25)
    fast, slow = _play(_env(), config), _play(_env(fast_rollouts=False), config)
    assert [r["tokens"] for r in fast] == [r["tokens"] for r in slow]
    for a, b in zip(fast, slow, strict=True):
        assert [s["visits"] for s in a["records"]] == [s["visits"] for s in b["records"]]
        for x, y in zip(a["records"], b["records"], strict=True):
            np.testing.assert_allclose(x["q_values"], y["q_values"], atol=1e-5)


def test_a_remembered_rollout_is_the_rollout_it_would_be_walked_again():
    env = _env()
    state, _, _ = env.begin(PROMPTS[0])
    first = env.rollout([state], 40)[0]
    env.rollouts.forget()
    again = env.rollout([state], 40)[0]
    assert (first.tokens, first.rewards, first.verdict, first.reason) == (again.tokens, again.rewards, again.verdict,
                                                                          again.reason)
    node = env.store[PROMPTS[0]].child(state.node, first.tokens[0])  # a node the rollout passed: its suffix
    later = env.rollouts._memory[(PROMPTS[0], node)]
    assert later.tokens == first.tokens[1:] and later.rewards == first.rewards[1:]


def test_the_writers_rollout_is_charged_its_tokens_and_valued_by_the_ends_terms_and_the_length_cost():
    env = _env()
    state, _, _ = env.begin(PROMPTS[1])
    writer = env.expander.writer(env.store[PROMPTS[1]], state.node)
    before = env.costs()[env.teacher_names[writer]]["forwarded_tokens"]
    rollout = env.rollout([state], 40, policy="writer")[0]
    spent = env.costs()[env.teacher_names[writer]]["forwarded_tokens"] - before
    assert spent >= len(rollout.tokens) and rollout.reason in ("eos", "max_new_tokens")
    text = env.decode(rollout.tokens)
    terms, _ = env.transitions.answer_terms(env.store[PROMPTS[1]], text, len(rollout.tokens), planner=True)
    assert rollout.value == pytest.approx(sum(terms.values()) - env.reward_config.length_cost * len(rollout.tokens))


def test_the_writers_rollout_serves_a_search_and_step_options_refuse_it():
    from agents.search.steps import StepMCTSAgent

    records = _play(_env(), MCTSConfig(num_simulations=2, rollout="writer"))
    assert all(r["steps"] >= 1 for r in records)
    with pytest.raises(ConfigError, match="rollout='writer'"):
        StepMCTSAgent(MCTSConfig(num_simulations=2, teacher_mix=0.0, rollout="writer"))


def test_the_judge_reads_answers_through_its_cache_to_a_whole_forwards_verdict_reading_shared_beginnings_once():
    from tokentree_env.judge import Judge
    from tokentree_env.judge.judge import likelihood_verdicts
    from tokentree_env.models import load_model

    judge = Judge("zoo:chain5-judge")
    judge.bind(load_model("zoo:chain5-primary").tokenizer)
    answers = ["47-12=35+85=120-30=90+19=109.", "47-12=35+85=120-30=90+19=108.", "47-12=35+85=120-30=91+19=110."]
    whole = likelihood_verdicts(judge.teacher.lm, [PROMPTS[0]] * 3, answers)
    read = [judge.verdicts([PROMPTS[0]], [a])[0] for a in answers]
    np.testing.assert_allclose(read, whole, rtol=1e-5)
    first = len(judge.teacher.tokenizer(PROMPTS[0] + answers[0])["input_ids"])
    assert judge.counters.forwarded_tokens < first + 12  # the siblings read only where they differ


def test_the_judge_reads_a_batch_whole_even_when_its_cache_holds_less_than_one_answer():
    from tokentree_env.judge import Judge
    from tokentree_env.judge.judge import likelihood_verdicts
    from tokentree_env.models import load_model

    judge = Judge("zoo:chain5-judge")
    judge.bind(load_model("zoo:chain5-primary").tokenizer)
    judge.teacher.store.max_bytes = 1  # every put evicts the one before it
    answers = ["47-12=35+85=120-30=90+19=109.", "47-12=35+85=120-30=91+19=110."]
    read = judge.verdicts([PROMPTS[0]] * 2, answers)
    np.testing.assert_allclose(read, likelihood_verdicts(judge.teacher.lm, [PROMPTS[0]] * 2, answers), rtol=1e-5)


def test_the_writers_rollouts_play_the_same_episodes_for_the_same_seed_in_lockstep_or_one_at_a_time():
    """The fast rollout policy on: a seed fixes every episode, token for token and visit for visit, whichever
    episodes share its batch (the root noise makes the seed matter: another seed visits otherwise)."""
    config = MCTSConfig(num_simulations=2, rollout="writer", dirichlet_fraction=0.25)
    together, again = _play(_env(), config), _play(_env(), config)
    alone = [next(play_lockstep(_env(), [MCTSAgent(config)], [(i, p, [0])], seed=seed, iteration=0))
             for seed in (0, 1) for i, p in enumerate(PROMPTS)]
    alone, other_seed = alone[:len(PROMPTS)], alone[len(PROMPTS):]

    def visits(records):
        return [[s["visits"] for s in r["records"]] for r in records]

    assert [r["tokens"] for r in together] == [r["tokens"] for r in again] == [r["tokens"] for r in alone]
    assert visits(together) == visits(again) == visits(alone)
    assert visits(other_seed) != visits(alone)
