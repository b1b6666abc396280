"""Specification of the agents: every baseline runs with its budget accounted; weightage across runs."""

import subprocess
import sys

import numpy as np
import pytest

from agents.evaluation import AGENT_SPECS, evaluate, make_agent
from tokentree_env.env import TokenTreeEnv
from tokentree_env.errors import ConfigError
from tokentree_env.stats import wilson

SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "max_new_tokens": 14}


def _runnable(spec: str) -> str:
    """A spec of AGENT_SPECS with a small budget in place of its placeholder (N, W, S)."""
    name, _, budget = spec.partition(":")
    return f"{name}:{ {'N': 2, 'W': 2, 'S': 3}[budget]}" if budget else name


SELF_PLAY_ONLY = {"best-of-verifier", "stepwise-greedy-verifier"}
"""Agents that rank by the verifier: they play where the env shows it to planners (self-play), never in evaluation."""


@pytest.mark.parametrize("spec", [_runnable(s) for s in AGENT_SPECS])
def test_every_agent_spec_plays_is_charged_and_repeats_itself_for_its_seed(spec):
    """Every spec in ``AGENT_SPECS`` (a new one is covered when added): it plays each prompt to an end, every episode
    is charged its model work, the same seed gives the same answers, and what it records fits what it is."""
    if spec.startswith("ab-mcts"):
        pytest.importorskip("treequest")  # the abmcts extra; tests/test_steps.py requires it in CI
    prompts = ["12+35+20=", "31+42+15="]
    kwargs = SMALL | ({"planner_verifier": True, "evaluation": False, "split": "train"}
                      if spec.partition(":")[0] in SELF_PLAY_ONLY else {})
    summary, results = evaluate(make_agent(spec, seed=3), prompts, kwargs)
    _, again = evaluate(make_agent(spec, seed=3), prompts, kwargs)
    assert summary.episodes == 2 and [r.tokens for r in results] == [r.tokens for r in again]
    for r in results:
        assert r.steps == len(r.records) >= 1 and r.forwarded_tokens > 0 and r.model_calls > 0
        assert r.terminal_reason in {"eos", "judge", "max_new_tokens"}
        searched = [step.visits for step in r.records if step.visits]
        if spec.startswith("mcts"):
            assert len(searched) == r.steps and all(sum(v) == pytest.approx(1.0) for v in searched)
        elif spec.startswith("ab-mcts"):  # treequest's tree, summed onto the root's children
            assert len(searched) == 1 and r.records[0].visits and sum(searched[0]) == pytest.approx(1.0)
            assert any(r.records[0].continuations)
        else:
            assert not searched  # only a search records visit distributions
        if spec == "greedy-prior":
            assert all(step.chosen == int(np.argmax(step.prior)) for step in r.records)


@pytest.mark.parametrize("spec", [_runnable(s) for s in AGENT_SPECS])
def test_any_agent_plays_the_same_episodes_and_records_in_lockstep_as_one_at_a_time_each_charged_its_own_work(spec):
    """One record builder for every way of playing: batched and one-at-a-time play give the same records, the
    search's visits, Q values, improved policy and continuations included. Log-probs agree within 1e-4: a forward
    of a gathered batch (masked, padded) differs from a lone one in the fifth significant digit of fp32 (measured up
    to 3.3e-5 on the zoo), which never changes a choice here (the tokens are equal)."""
    if spec.startswith("ab-mcts"):
        pytest.importorskip("treequest")
    prompts = ["12+35+20=", "31+42+15=", "50+17+9="]
    kwargs = SMALL | ({"planner_verifier": True, "evaluation": False, "split": "train"}
                      if spec.partition(":")[0] in SELF_PLAY_ONLY else {})
    _, alone = evaluate(make_agent(spec, seed=1), prompts, kwargs, seed=4)
    _, together = evaluate(make_agent(spec, seed=1), prompts, kwargs, batch=3, seed=4)
    assert [r.prompt for r in together] == prompts
    assert [r.tokens for r in together] == [r.tokens for r in alone]
    assert [r.forwarded_tokens for r in together] == [r.forwarded_tokens for r in alone]
    for a, b in zip(alone, together, strict=True):
        assert len(a.records) == len(b.records)
        for x, y in zip(a.records, b.records, strict=True):
            assert (x.candidates, x.chosen, x.continuations) == (y.candidates, y.chosen, y.continuations)
            for name in ("prior", "visits", "q_values", "improved", "panel_weights", "teacher_logprobs"):
                np.testing.assert_allclose(getattr(x, name), getattr(y, name), atol=1e-4, err_msg=name)


def test_ranking_by_the_verifier_is_refused_where_the_env_hides_it():
    from tokentree_env.errors import VerifierLeakError

    with pytest.raises(VerifierLeakError, match="planner_verifier"):
        evaluate(make_agent("best-of-verifier:2"), ["12+35+20="], SMALL)


def test_search_agents_record_visit_distributions():
    _, results = evaluate(make_agent("mcts:4"), ["12+35+20="], SMALL)
    for record in results[0].records:
        assert len(record.visits) == len(record.candidates) == len(record.proposed_by)
        assert sum(record.visits) == pytest.approx(1.0)


def test_fixed_cost_agents_cost_less_than_a_search():
    cheap, _ = evaluate(make_agent("ensemble-greedy"), ["12+35+20="], SMALL)
    search, _ = evaluate(make_agent("mcts:8"), ["12+35+20="], SMALL)
    assert cheap.forwarded_tokens < search.forwarded_tokens


def test_an_unknown_agent_spec_names_the_choices():
    with pytest.raises(ConfigError, match="best-of:N"):
        make_agent("alphago")
    assert "mcts:S" in AGENT_SPECS


def test_wilson_interval_brackets_the_proportion():
    lo, hi = wilson(9, 10)
    assert lo < 0.9 < hi <= 1.0


def test_weightage_changes_in_self_play_persists_across_runs_and_is_frozen_in_evaluation(tmp_path):
    prompt = "12+35+20="
    env = TokenTreeEnv(**SMALL)
    agent = make_agent("random", seed=3)
    for _ in range(4):
        agent.run_episode(env, options={"prompt": prompt})
    factors = env.trees[prompt].weightage(0).copy()
    assert not np.allclose(factors, factors[0])  # random play chose wrong children; they were lowered
    env.save_trees(tmp_path)

    later = TokenTreeEnv(**SMALL)  # a new run
    later.load_trees(tmp_path)
    assert np.allclose(later.trees[prompt].weightage(0), factors)

    frozen = TokenTreeEnv(evaluation=True, **SMALL)
    frozen.load_trees(tmp_path)
    for _ in range(3):
        agent.run_episode(frozen, options={"prompt": prompt})
    assert np.allclose(frozen.trees[prompt].weightage(0), factors)


def test_the_search_command_prints_a_table_and_saves_json(tmp_path):
    out = tmp_path / "search.json"
    store = tmp_path / "episodes.jsonl"
    run = subprocess.run([sys.executable, "-m", "agents.cli", "search", "--agents", "ensemble-greedy", "mcts:2",
                          "--n", "2", "--out", str(out), "--store", str(store)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "accuracy" in run.stdout
    import json

    data = json.loads(out.read_text())
    assert [s["agent"] for s in data["summaries"]] == ["ensemble-greedy", "mcts-2"]
    from agents.store import EpisodeStore

    assert len(EpisodeStore(store)) == 4


def test_a_trained_maskable_ppo_model_plays_behind_the_agent_interface():
    from sb3_contrib import MaskablePPO

    from agents import MaskablePPOAgent
    from tokentree_env.env.sb3 import TokenTreeExtractor

    env = TokenTreeEnv(teachers=["zoo:teacher-qwen2"], judge=None, max_new_tokens=8)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0,
                        policy_kwargs={"features_extractor_class": TokenTreeExtractor})
    model.learn(total_timesteps=64)
    result = MaskablePPOAgent(model).run_episode(env, options={"prompt": "12+35+20="})
    assert result.steps >= 1


def test_the_public_api_is_explicit():
    import agents

    assert {"MCTSAgent", "EpisodeStore", "evaluate", "make_agent", "BestOfN"} <= set(agents.__all__)
    assert all(hasattr(agents, name) for name in agents.__all__)


def test_lockstep_self_play_chooses_the_same_tokens_as_one_episode_at_a_time():
    """Batched (lockstep) self-play over several prompts plays the same episodes as one-at-a-time play: the
    same tokens, the same panel weights at every step, the same weightage updates, each episode charged its own
    work."""
    from agents.training.selfplay import SelfPlayJob, play_episodes
    from tokentree_env.tasks import builtin_task

    items = [(i, p.prompt, [0, 1]) for i, p in enumerate(builtin_task("chain3").problems("train")[:5])]
    runs = {}
    for batch in (1, 4):
        env = TokenTreeEnv(**SMALL, planner_verifier=True)
        job = SelfPlayJob(agent="mcts:2", seed=3, batch=batch)
        records = sorted(play_episodes(env, items, job), key=lambda r: (r["prompt_index"], r["repeat"]))
        runs[batch] = (records, env)
    (one, _env_one), (four, env_four) = runs[1], runs[4]
    assert [r["tokens"] for r in one] == [r["tokens"] for r in four]
    np.testing.assert_allclose(_panel_weights(one), _panel_weights(four), atol=1e-5)
    assert [r["weightage_update"] for r in one] == [r["weightage_update"] for r in four]
    counted = sum(c["forwarded_tokens"] for c in env_four.costs().values())
    assert sum(r["forwarded_tokens"] for r in four) == counted


def test_lockstep_play_relaxes_the_garbage_collector_while_it_plays_and_restores_it_when_stopped():
    import gc

    from agents.search.lockstep import GC_THRESHOLDS
    from agents.training.selfplay import SelfPlayJob, play_episodes
    from tokentree_env.tasks import builtin_task

    items = [(i, p.prompt, [0]) for i, p in enumerate(builtin_task("chain3").problems("train")[:3])]
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    play = play_episodes(TokenTreeEnv(**SMALL, planner_verifier=True), items, SelfPlayJob(agent="mcts:2", batch=2))
    next(play)
    assert gc.get_threshold() == GC_THRESHOLDS
    play.close()  # stopped after one episode
    assert gc.get_threshold() == before


def _panel_weights(records) -> np.ndarray:
    """Every step's panel weights of stored episode records, flattened."""
    weights = [w for r in records for step in r["records"] for w in _field(step, "panel_weights")]
    assert weights, "the episodes recorded no panel weights"
    return np.asarray(weights)


def _field(step, name):
    return step[name] if isinstance(step, dict) else getattr(step, name)


def test_batched_evaluation_plays_an_mcts_agent_in_lockstep_and_its_answers_do_not_depend_on_the_batch():
    """``evaluate(batch=N)`` plays N episodes together, each seeded by (seed, prompt index): the answers are the
    same at any batch size, in prompt order, and each episode is charged its own work."""
    prompts = ["12+35+20=", "31+42+15=", "50+17+9="]
    three, together = evaluate(make_agent("mcts:2"), prompts, SMALL, batch=3, seed=5)
    _, pairs = evaluate(make_agent("mcts:2"), prompts, SMALL, batch=2, seed=5)
    assert three.episodes == 3 and [r.prompt for r in together] == prompts
    assert [r.tokens for r in together] == [r.tokens for r in pairs]
    assert all(r.forwarded_tokens > 0 and r.records for r in together)
    with pytest.raises(ConfigError, match="batch"):
        evaluate(make_agent("mcts:2"), prompts, SMALL, batch=0)


def test_leaf_batching_on_the_real_env_serves_a_rounds_leaves_with_fewer_forward_calls(monkeypatch):
    """With ``leaf_batch=4`` a round's expansions and rollout steps share one batched forward per model: fewer model
    calls per transition the search simulates (the searches themselves differ: virtual loss spreads them)."""
    from agents.search import MCTSAgent, MCTSConfig

    simulated = []
    real = TokenTreeEnv.simulate
    monkeypatch.setattr(TokenTreeEnv, "simulate", lambda self, *a: simulated.append(1) or real(self, *a))
    prompts = ["12+35+20=", "31+42+15="]
    per_transition = {}
    for batch in (1, 4):
        simulated.clear()
        summary, results = evaluate(MCTSAgent(MCTSConfig(num_simulations=8, leaf_batch=batch)), prompts, SMALL)
        assert all(r.terminal_reason in {"eos", "judge", "max_new_tokens"} for r in results)
        per_transition[batch] = summary.model_calls * len(prompts) / len(simulated)
    assert per_transition[4] < per_transition[1]
