"""Specification of MCTS: PUCT arithmetic, backup, finding the best leaf, no peeking at the answer."""

import math

import numpy as np
import pytest

from agents.search import MCTS, MCTSAgent, MCTSConfig, SearchTree, backward, puct_scores
from agents.testing import ToyTreeEnv
from tokentree_env.errors import ConfigError


def test_puct_on_a_hand_computed_case():
    tree = SearchTree(4, 3)
    tree.add_node(None, np.array([0.5, 0.3, 0.2]), np.array([True, True, False]))
    tree.node_visits[0] = 4
    tree.node_values[0] = 0.5
    tree.children_visits[0] = [3, 0, 0]
    tree.children_values[0] = [1.0, 0.0, 0.0]
    scores = puct_scores(tree, 0, c_puct=2.0, bounds=(0.0, 2.0))
    # child 0: Q_norm = 1/2, U = 2·0.5·sqrt(4)/(1+3) = 0.5; child 1 (unvisited): Q = parent 0.5 -> 0.25, U = 1.2
    assert scores[0] == pytest.approx(0.5 + 0.5)
    assert scores[1] == pytest.approx(0.25 + 2.0 * 0.3 * 2 / 1)
    assert scores[2] == -math.inf  # masked


def test_backward_adds_edge_rewards_and_averages_values():
    tree = SearchTree(3, 2)
    mask = np.array([True, True])
    tree.add_node("root", np.array([0.5, 0.5]), mask)
    tree.add_node("a", np.array([0.5, 0.5]), mask, parent=0, action=1, reward=0.5)
    backward(tree, 1, 2.0)
    backward(tree, 1, 0.0)
    assert tree.children_visits[0, 1] == 2
    assert tree.children_values[0, 1] == pytest.approx(((0.5 + 2.0) + (0.5 + 0.0)) / 2)
    assert tree.node_visits[0] == 2


def _play_to_the_end(agent, env, obs):
    """The agent's actions from ``obs`` to the end of the episode, and the last reward."""
    path = []
    while True:
        action = agent.act(env, obs, {})
        path.append(action)
        obs, reward, terminated, _, _ = env.step(action)
        if terminated:
            return path, reward


@pytest.mark.parametrize("gumbel", [False, True])
def test_mcts_finds_the_best_leaf_of_a_small_tree(gumbel):
    values = {(i, j): -1.0 for i in range(3) for j in range(3)}
    values[(2, 1)] = 1.0
    env = ToyTreeEnv(values, width=3, depth=2)
    agent = MCTSAgent(MCTSConfig(num_simulations=24, gumbel=gumbel, teacher_mix=0.0,
                                 **({"gumbel_actions": 3} if gumbel else {})))
    obs, _ = env.reset()
    path, reward = _play_to_the_end(agent, env, obs)
    assert tuple(path) == (2, 1) and reward == 1.0


def test_leaf_batching_with_virtual_loss_expands_several_leaves_per_round_and_still_finds_the_best_leaf():
    values = {(i, j): -1.0 for i in range(3) for j in range(3)}
    values[(2, 1)] = 1.0
    env = ToyTreeEnv(values, width=3, depth=2)
    agent = MCTSAgent(MCTSConfig(num_simulations=24, teacher_mix=0.0, leaf_batch=4))
    obs, _ = env.reset()
    tree = agent.mcts.search(env, obs)
    assert tree.node_visits[0] == 24 and tree.children_visits[0].sum() == 24  # virtual visits all undone
    assert max(env.prefetch_batches) > 1  # virtual loss sent a round's selections down different paths
    path, reward = _play_to_the_end(agent, env, obs)
    assert tuple(path) == (2, 1) and reward == 1.0


def test_a_virtual_loss_is_undone_exactly():
    from agents.search.driver import apply_virtual_loss, undo_virtual_loss

    tree = SearchTree(4, 2)
    mask = np.array([True, True])
    tree.add_node("root", np.array([0.5, 0.5]), mask)
    tree.add_node("a", np.array([0.5, 0.5]), mask, parent=0, action=1, reward=0.5)
    backward(tree, 1, 0.3)
    before = (tree.children_visits.copy(), tree.children_values.copy(), tree.node_visits.copy())
    saved = [apply_virtual_loss(tree, 1, 0, 1.0), apply_virtual_loss(tree, 1, 1, 1.0)]
    assert tree.children_values[0, 1] < before[1][0, 1] and tree.node_visits[0] == before[2][0] + 2
    for snapshot in reversed(saved):
        undo_virtual_loss(tree, snapshot)
    after = (tree.children_visits, tree.children_values, tree.node_visits)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_mcts_follows_a_misleading_prior_only_until_values_say_otherwise():
    values = {(0, 0): 0.1, (1, 0): 1.0}
    priors = {(): [0.9, 0.1]}
    env = ToyTreeEnv(values, width=2, depth=2, priors=priors)
    tree = MCTS(MCTSConfig(num_simulations=40, teacher_mix=0.0)).search(env, env.reset()[0])
    assert tree.children_values[0, 1] > tree.children_values[0, 0]
    assert MCTS(MCTSConfig(num_simulations=40, teacher_mix=0.0)).choose(tree) == 1


def test_visit_distribution_is_the_policy_target():
    env = ToyTreeEnv({(0, 0): 1.0}, width=2, depth=2)
    tree = MCTS(MCTSConfig(num_simulations=10, teacher_mix=0.0)).search(env, env.reset()[0])
    dist = tree.visit_distribution()
    assert dist.sum() == pytest.approx(1.0) and dist[0] > dist[1]


@pytest.mark.parametrize("field,value", [("num_simulations", 0), ("c_puct", 0.0), ("teacher_mix", 2.0),
                                         ("rollout", "x"), ("leaf_batch", 0)])
def test_bad_search_config_raises_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        MCTSConfig(**{field: value})


def test_in_evaluation_mode_the_verifier_is_read_only_for_the_final_answer():
    from tokentree_env.env import TokenTreeEnv

    env = TokenTreeEnv(teachers=["zoo:teacher-qwen2", "zoo:teacher-llama"], evaluation=True, max_new_tokens=12)
    calls = []
    inner = env.task.verifier

    def counting(completion, answer):
        calls.append(completion)
        return inner(completion, answer)

    env.task.verifier = counting
    prompt = env.task.problems("heldout")[0].prompt
    result = MCTSAgent(MCTSConfig(num_simulations=6)).run_episode(env, options={"prompt": prompt})
    env.task.verifier = inner
    assert result.steps >= 1
    # the env's final reward and the runner's report read the verifier, both after the end; the
    # search (dozens of simulated episodes) never did
    assert calls == [result.completion, result.completion]


def test_a_value_head_trained_on_returns_replaces_rollouts():
    from agents.baselines import RandomAgent
    from agents.search.value import ValueHead, collect_returns

    # the best leaf sits under a prior the head can read: child 1's prior is high exactly where it pays
    values = {(i, j): (1.0 if (i, j) == (1, 1) else -1.0) for i in range(2) for j in range(2)}
    priors = {(): [0.2, 0.8], (0,): [0.5, 0.5], (1,): [0.3, 0.7]}
    env = ToyTreeEnv(values, width=2, depth=2, priors=priors)
    inputs, returns = collect_returns(env, RandomAgent(seed=0), [None] * 60)
    head = ValueHead(inputs.shape[1])
    losses = head.fit(inputs, returns)
    assert losses[-1] < losses[0]
    calls_before = env.simulate_calls
    tree = MCTS(MCTSConfig(num_simulations=12, teacher_mix=0.0), value_fn=head.value_fn).search(env, env.reset()[0])
    # each simulation expands one node and asks the head: no rollout simulations beyond the expansions
    assert env.simulate_calls - calls_before <= 12
    assert tree.size > 1


def test_a_temperature_samples_the_played_action_in_proportion_to_visits_to_the_power_one_over_t():
    tree = SearchTree(4, 3)
    tree.add_node(None, np.full(3, 1 / 3), np.ones(3, dtype=bool))
    tree.children_visits[0] = [6, 3, 1]
    draws = [MCTS(MCTSConfig(temperature=1.0), rng=np.random.default_rng(s)).choose(tree) for s in range(2000)]
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 2000, [0.6, 0.3, 0.1], atol=0.03)
    assert MCTS(MCTSConfig(temperature=0.0)).choose(tree) == 0


@pytest.mark.parametrize("call", ["value_head", "sample_ids"])
def test_library_calls_leave_the_callers_random_stream_where_it_was(call):
    import torch

    from tokentree_env.models import load_model
    from tokentree_env.models.generation import sample_ids

    lm = load_model("zoo:primary") if call == "sample_ids" else None
    torch.manual_seed(123)
    torch.rand(3)  # the caller is part-way through its stream
    expected = torch.random.get_rng_state()
    if call == "value_head":
        from agents.search import ValueHead

        ValueHead(8, seed=0)
    else:
        sample_ids(lm.model, lm.tokenizer, [lm.tokenizer("12+35+20=")["input_ids"]], n=2, max_new_tokens=4, seed=7)
    assert torch.equal(torch.random.get_rng_state(), expected)


def test_gumbel_with_more_simulations_never_picks_a_known_best_action_less_often():
    """Sequential halving's policy improvement (Danihelka et al. 2022): on a one-step tree whose best action the
    prior disfavours, the share of 300 seeded searches that play it does not fall as the simulations grow."""
    values = {(a,): v for a, v in enumerate([0.2, 0.5, 0.1, 0.6, 0.3, 1.0, 0.4, 0.0])}
    env = ToyTreeEnv(values, width=8, depth=1, priors={(): [0.25, 0.2, 0.15, 0.15, 0.1, 0.02, 0.08, 0.05]})
    obs, _ = env.reset()
    shares = []
    for simulations in (2, 4, 8, 16, 32):
        config = MCTSConfig(num_simulations=simulations, gumbel=True, gumbel_actions=8, gumbel_scale=1.0,
                            teacher_mix=0.0)
        searches = [MCTS(config, rng=np.random.default_rng(seed)) for seed in range(300)]
        shares.append(np.mean([search.choose(search.search(env, obs)) == 5 for search in searches]))
    assert all(b >= a for a, b in zip(shares, shares[1:])) and shares[-1] > shares[0]
