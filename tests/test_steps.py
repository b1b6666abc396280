"""Specification of search over teachers' steps: options played as ordinary actions down the same token tree.

On the ``chain5`` test-bed (three teachers in three styles; steps end after ``=``, ``,`` and ``.``): an option is
its teacher's own greedy continuation; options share the tree's cache; every token is charged to its episode; with
one teacher and one simulation the search is that teacher's greedy answer; AB-MCTS's tree (Sakana AI's treequest)
holds answers that are paths of the env's tree.
"""

import numpy as np
import pytest

from agents.search.steps import StepOptionsEnv
from tokentree_env.env import TokenTreeEnv
from tokentree_env.zoo.catalog import CHAIN5_JUDGE, CHAIN5_TEACHERS

PROMPT = "47-12+85-30+19="


@pytest.fixture(scope="module")
def models():
    env = TokenTreeEnv(teachers=list(CHAIN5_TEACHERS), judge=CHAIN5_JUDGE, task="chain5", max_new_tokens=48)
    yield {"teachers": env.models.teachers, "primary": env.primary, "judge": env.judge, "task": "chain5",
           "max_new_tokens": 48}
    env.close()


def _root(env):
    obs, info = env.reset(options={"prompt": PROMPT})
    options = StepOptionsEnv(env.unwrapped)
    return options, *options.root(env.unwrapped.get_state(), obs, info)


def test_the_task_declares_its_step_boundaries_and_the_env_exposes_them(models):
    env = TokenTreeEnv(**models)
    fmt = env.task.answer_format
    assert fmt.at_boundary("35+85=") and fmt.at_boundary("35,") and fmt.at_boundary("109.")
    assert not fmt.at_boundary("35+8")
    _, info = env.reset(options={"prompt": PROMPT})
    assert info["step_boundary"]  # the answer's start is a boundary


@pytest.mark.parametrize("k", [0, 1, 2])
def test_teacher_ks_greedy_options_are_its_own_greedy_answer(models, k):
    env = TokenTreeEnv(**models)
    options, here, _ = _root(env)
    tokens = []
    while not here.done:
        walk = options.play(here, k)
        tokens += walk.tokens
        here = walk.end
    reference = env.trees[PROMPT].reference_paths[env.teacher_names[k]]
    assert tokens == reference[: len(tokens)]  # its answer, to where the env ends it (EOS, or the judge's end)
    assert reference[len(tokens):] in ([], [env.tokenizer.eos_token_id])


def test_options_share_the_trees_cache_so_replaying_them_forwards_nothing(models):
    env = TokenTreeEnv(**models)
    options, here, _ = _root(env)
    for option in range(options.width):
        options.play(here, option)
    calls = sum(c["forward_calls"] for c in env.costs().values())
    again = StepOptionsEnv(env.unwrapped)  # no kept walks: every token comes from the token tree's cache
    for option in range(again.width):
        assert again.play(here, option).tokens == options.walks[(options.key(here), option)].tokens
    assert sum(c["forward_calls"] for c in env.costs().values()) == calls


def test_step_level_episodes_are_charged_every_token_their_search_forwarded_in_lockstep_too(models):
    from agents.evaluation import make_agent
    from agents.play import play_many

    env = TokenTreeEnv(teachers=list(CHAIN5_TEACHERS), judge=CHAIN5_JUDGE, task="chain5")  # its own models' counters
    records = list(play_many(env, [make_agent("mcts-steps:2"), make_agent("mcts-steps:2")],
                             [(0, PROMPT), (1, "13+26+51-24+49=")]))
    assert len(records) == 2 and all(r["records"] for r in records)
    assert sum(r["forwarded_tokens"] for r in records) == sum(c["forwarded_tokens"] for c in env.costs().values())


def test_with_one_teacher_and_one_simulation_the_step_search_is_that_teachers_greedy_answer(models):
    from agents.evaluation import evaluate, make_agent

    one = models | {"teachers": models["teachers"][:1]}
    _, episodes = evaluate(make_agent("mcts-steps:1"), [PROMPT], one)
    env = TokenTreeEnv(**one)
    env.reset(options={"prompt": PROMPT})
    reference = env.trees[PROMPT].reference_paths[env.teacher_names[0]]
    assert episodes[0].tokens == reference[: len(episodes[0].tokens)]
    assert reference[len(episodes[0].tokens):] in ([], [env.tokenizer.eos_token_id])


def test_step_search_records_visits_on_first_tokens_at_boundaries_and_one_hot_targets_inside_steps(models):
    from agents.evaluation import evaluate, make_agent

    _, (episode,) = evaluate(make_agent("mcts-steps:3"), [PROMPT], models)
    for step in episode.records:
        assert len(step.visits) == len(step.candidates) and sum(step.visits) == pytest.approx(1.0)
    inside = [s for s in episode.records[1:] if max(s.visits) == 1.0]
    assert inside and all(s.visits[s.chosen] == 1.0 for s in inside)


def _treequest():
    """treequest (the ``abmcts`` extra): skipped without it, except where ``.ci/run`` requires it."""
    import importlib.util
    import os

    if importlib.util.find_spec("treequest") is None:
        if os.environ.get("TOKENTREE_REQUIRE_ABMCTS") == "1":
            raise RuntimeError("TOKENTREE_REQUIRE_ABMCTS=1 but treequest is not installed: pip install '.[abmcts]'")
        pytest.skip("treequest not installed (pip install '.[abmcts]')")


@pytest.mark.integration
def test_the_ab_mcts_adapter_grows_answers_that_are_paths_of_the_envs_tree(models):
    _treequest()
    from agents.search.ab_mcts import ABMCTSAgent

    env = TokenTreeEnv(**models, evaluation=True, reward_weights={"judge_weight": 1.0})
    obs, _ = env.reset(options={"prompt": PROMPT})
    agent = ABMCTSAgent(4)
    plan = agent.plan(env, obs)
    tree = env.trees[PROMPT]
    assert len(agent.last_answers) == 4 and plan in agent.last_answers
    for answer in agent.last_answers:  # every node's finished answer is a path the env's tree holds
        assert answer and tree.find(tree.nodes[0].ids + tuple(answer)) is not None


def test_sampled_options_record_the_share_of_the_teachers_mass_the_slate_held(models):
    env = TokenTreeEnv(**models)
    options, here, _ = _root(env)
    walk = options.play(here, options.teachers)  # teacher 0's first sampled draw
    assert walk.slate_mass and all(0.0 < m <= 1.0 + 1e-6 for m in walk.slate_mass)
    assert np.mean(walk.slate_mass) > 0.5  # the slate holds most of a teacher's mass (its top-1 is kept)


@pytest.mark.integration
def test_the_ab_mcts_agent_plays_and_is_charged_through_the_env(models):
    _treequest()
    from agents.evaluation import evaluate, make_agent

    summary, (episode,) = evaluate(make_agent("ab-mcts:3"), [PROMPT], models)
    assert episode.tokens and episode.forwarded_tokens > 0 and summary.episodes == 1


def test_ab_mcts_asked_to_grow_a_finished_answer_keeps_it_instead_of_failing(models):
    from agents.search.ab_mcts import _grower

    env = TokenTreeEnv(**models)
    options, here, _ = _root(env)
    generate = _grower(options, here, 0, 2, {}, lambda walk, logprobs: 0.5)
    node, _ = generate(None)
    while not node.boundary.done:  # grow one branch down to its end
        node, _ = generate(node)
    again, score = generate(node)  # treequest may pick a finished node: it comes back unchanged
    assert again.boundary.done and again.finished == node.finished and score == node.score


@pytest.mark.integration
def test_ab_mcts_draws_from_its_own_stream_and_leaves_numpys_global_one_as_it_found_it(models):
    _treequest()
    from agents.evaluation import evaluate, make_agent

    np.random.seed(11)
    before = np.random.get_state()[1].copy()
    _, (first,) = evaluate(make_agent("ab-mcts:3", seed=5), [PROMPT], models)
    assert np.array_equal(np.random.get_state()[1], before)  # the global stream is untouched
    np.random.random(7)  # disturbed in between: the agent's own seed still decides
    _, (again,) = evaluate(make_agent("ab-mcts:3", seed=5), [PROMPT], models)
    assert again.tokens == first.tokens
