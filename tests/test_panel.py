"""Specification of the teacher panel: a mixture over which teacher is writing, computed in one place.

The invariants are checked on the rule itself (NumPy, no model), then on the env: a stand-alone mixture-greedy
decoder over the slates' per-teacher log-probs gives the env's ``ensemble-greedy`` answers, the rewards add up to
the panel's path log-likelihood, and saved trees carry the setting that ranked their slates.
"""

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from tokentree_env.errors import ConfigError
from tokentree_env.scoring.panel import Panel, PanelConfig, writer_switches

RNG = np.random.default_rng(0)


def _logprobs(n, k, vocab=8):
    """``n`` steps of ``k`` teachers' normalised log-probs over ``vocab`` tokens, ``(n, k, vocab)``."""
    logits = RNG.normal(size=(n, k, vocab)) * 2
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def _walk(panel, lp, tokens):
    """Per step: the panel's log-probs of every token at the node, then the weights' update by the chosen token."""
    w, out = panel.root_log_weights, []
    for step, token in enumerate(tokens):
        out.append(panel.logprobs(w, lp[step].T))  # (vocab,)
        w = panel.child_log_weights(w, lp[step, :, token])
    return np.array(out), w


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_with_one_teacher_the_mixture_is_that_teacher(alpha):
    lp = _logprobs(6, 1)
    got, _ = _walk(Panel(PanelConfig(alpha=alpha), 1), lp, tokens=[0, 3, 1, 2, 5, 4])
    np.testing.assert_allclose(got, lp[:, 0, :], atol=1e-12)


@pytest.mark.parametrize("rule", ["mixture", "mean", "product"])
def test_with_identical_teachers_every_rule_is_each_teacher(rule):
    one = _logprobs(5, 1)
    got, _ = _walk(Panel(rule, 3), np.repeat(one, 3, axis=1), tokens=[1, 2, 3, 4, 0])
    np.testing.assert_allclose(got, one[:, 0, :], atol=1e-12)


def test_with_no_fixed_share_the_weights_are_the_path_posterior():
    lp, tokens, prior = _logprobs(7, 3), [2, 0, 5, 1, 1, 7, 3], (0.5, 0.3, 0.2)
    _, log_w = _walk(Panel(PanelConfig(alpha=0.0, prior=prior), 3), lp, tokens)
    path = np.array([lp[t, :, x] for t, x in enumerate(tokens)]).sum(0)  # L_k
    posterior = np.log(prior) + path
    np.testing.assert_allclose(log_w, posterior - logsumexp(posterior), atol=1e-10)


def test_with_no_fixed_share_the_step_logprobs_add_up_to_the_bayesian_mixture():
    lp, tokens = _logprobs(9, 3), [1, 4, 0, 0, 6, 2, 3, 5, 7]
    panel = Panel(PanelConfig(alpha=0.0), 3)
    per_token = np.array([lp[t, :, x] for t, x in enumerate(tokens)])  # (T, K)
    assert panel.path_logprob(per_token) == pytest.approx(logsumexp(np.log(1 / 3) + per_token.sum(0)))


def _switch_point(alpha, a_run, limit=60):
    """Steps of a run of tokens only teacher B writes (A gives them 1e-3, B 0.9) until B's weight passes A's, after
    ``a_run`` tokens only A writes; None if not within ``limit``."""
    panel = Panel(PanelConfig(alpha=alpha), 2)
    w = panel.root_log_weights
    for _ in range(a_run):
        w = panel.child_log_weights(w, np.log([0.9, 1e-3]))
    for step in range(1, limit + 1):
        w = panel.child_log_weights(w, np.log([1e-3, 0.9]))
        if w[1] > w[0]:
            return step
    return None


def test_with_a_fixed_share_the_new_writer_takes_over_within_a_bounded_run_and_without_it_never_does():
    short, long = _switch_point(0.1, 10), _switch_point(0.1, 1000)
    assert short is not None and long is not None and long == short <= 3  # the bound does not grow with A's run
    assert _switch_point(0.0, 1000) is None  # the posterior would need ~1000 tokens of B


@pytest.mark.parametrize("alpha", [0.02, 0.1, 0.3])
def test_the_fixed_share_bounds_every_weight_from_below(alpha):
    lp, k = _logprobs(40, 4), 4
    panel = Panel(PanelConfig(alpha=alpha), k)
    w = panel.root_log_weights
    for step in range(40):
        w = panel.child_log_weights(w, lp[step, :, int(RNG.integers(8))])
        assert np.exp(w).min() >= alpha / k - 1e-12
        assert np.exp(logsumexp(w)) == pytest.approx(1.0)


def test_mean_is_the_log_of_the_mean_probability_and_product_the_mean_log_prob():
    lp = np.log(np.array([[0.9, 1e-4, 1e-4], [0.05, 0.05, 0.05]]))  # two children, three teachers
    mean = Panel("mean", 3).logprobs(Panel("mean", 3).root_log_weights, lp)
    product = Panel("product", 3).logprobs(Panel("product", 3).root_log_weights, lp)
    np.testing.assert_allclose(mean, np.log(np.exp(lp).mean(1)))
    np.testing.assert_allclose(product, lp.mean(1))
    assert product[1] > product[0] and mean[0] > mean[1]  # the product prefers what every teacher tolerates


@pytest.mark.parametrize(("value", "message"), [
    ({"rule": "vote"}, "rule"), ({"alpha": 1.0}, "alpha"), ({"alpha": -0.1}, "alpha"), ({"prior": (1, 0)}, "prior"),
    ({"temperature": 2}, "unknown panel settings"), (3, "rule name")])
def test_bad_panel_settings_raise_naming_the_field(value, message):
    with pytest.raises(ConfigError, match=message):
        Panel(PanelConfig.coerce(value), 2)


def test_a_prior_needs_one_weight_per_teacher():
    with pytest.raises(ConfigError, match="one weight per teacher"):
        Panel(PanelConfig(prior=(1, 2, 3)), 2)


def test_writer_switches_count_changes_of_the_top_weighted_teacher():
    assert writer_switches([0, 0, 1, 1, 0, 2]) == 3
    assert writer_switches([]) == writer_switches([2]) == 0


# -- on the env ---------------------------------------------------------------------------------------------------
CHAIN5 = {"teachers": ["zoo:chain5-llama", "zoo:chain5-gpt2", "zoo:chain5-qwen2"], "task": "chain5", "judge": None,
          "max_new_tokens": 48}


def mixture_greedy(env, prompt: str, alpha: float) -> list[int]:
    """A stand-alone mixture-greedy decoder, from the slates' per-teacher log-probs alone: it keeps its own weights
    over the teachers, takes the child maximising ``Σ_k w_k p_k(child)`` and updates the weights by the recursion."""
    u = env.unwrapped
    obs, info = env.reset(options={"prompt": prompt})
    k = len(u.teacher_names)
    weights, state, tokens = np.full(k, 1.0 / k), u.get_state(), []
    while True:
        p = np.exp(np.asarray(info["panel"]["teacher_logprobs"], dtype=np.float64))  # (children, K)
        action = int(np.argmax(p @ weights))
        posterior = weights * p[action]
        weights = (1 - alpha) * posterior / posterior.sum() + alpha / k
        tokens.append(int(obs["candidates"][action]))
        state, obs, _, terminated, truncated, info = u.simulate(state, action)
        if terminated or truncated:
            return tokens


def test_the_envs_ensemble_greedy_under_the_mixture_is_the_reference_decoder():
    from agents import evaluate, make_agent
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import builtin_task

    prompts = [p.prompt for p in builtin_task("chain5").problems("heldout")[:20]]
    _, episodes = evaluate(make_agent("ensemble-greedy"), prompts, CHAIN5)
    env = TokenTreeEnv(**CHAIN5, evaluation=True)
    alpha = env.expander.panel.config.alpha
    assert [mixture_greedy(env, p, alpha) for p in prompts] == [e.tokens for e in episodes]
    env.close()


@pytest.fixture(scope="module")
def exact_env():
    from tokentree_env.env import TokenTreeEnv

    env = TokenTreeEnv(**CHAIN5, panel={"alpha": 0.0}, reward_weights={"alpha": 1.0})
    yield env
    env.close()


def test_an_episodes_panel_rewards_add_up_to_the_mixtures_log_likelihood_of_its_answer(exact_env):
    from tokentree_env.scoring.panel import writers

    obs, info = exact_env.reset(options={"prompt": "47-12+85-30+19="})
    chosen, total, rng, seen = [], 0.0, np.random.default_rng(1), []
    while True:
        action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
        chosen.append(info["panel"]["teacher_logprobs"][action])
        obs, _, terminated, truncated, info = exact_env.step(action)
        total += info["reward_terms"]["panel_logprob"]
        if terminated or truncated:
            break
        seen.append(int(np.argmax(info["panel"]["weights"])))
    assert total == pytest.approx(logsumexp(math.log(1 / 3) + np.asarray(chosen).sum(0)), abs=1e-4)
    assert writers(chosen, alpha=0.0)[:-1] == seen  # who wrote each token, as the env's weights say


def test_info_shows_who_is_writing_and_the_trees_record_the_panel_that_ranked_them(exact_env, tmp_path):
    from tokentree_env.env import TokenTreeEnv

    _, info = exact_env.reset(options={"prompt": "47-12+85-30+19="})
    assert info["panel"]["rule"] == "mixture" and len(info["panel"]["weights"]) == 3
    assert np.asarray(info["panel"]["teacher_logprobs"]).shape == (len(info["candidates"]), 3)
    exact_env.save_trees(tmp_path)
    other = TokenTreeEnv(**CHAIN5, panel="product")
    other.load_trees(tmp_path)
    tree = other.trees["47-12+85-30+19="]
    assert tree.panel["rule"] == "product" and all(n.slate is None for n in tree.nodes)  # re-ranked on visit
    obs, info = other.reset(options={"prompt": "47-12+85-30+19="})
    np.testing.assert_allclose(obs["features"].reshape(16, -1)[: len(info["candidates"]), 4],
                               np.asarray(info["panel"]["teacher_logprobs"]).mean(1), atol=1e-5)
    other.close()


def test_the_step_prior_is_the_weight_times_the_per_token_likelihood_of_each_teachers_own_step():
    """Which teacher writes the next step (the prior of step options): ``w_k · exp(mean log p_k(own step))``,
    normalised; a teacher with no step gets nothing, and none at all gives the uniform prior."""
    panel = Panel(PanelConfig(), 3)
    weights = np.log([0.5, 0.3, 0.2])
    steps = [np.log([0.9, 0.4]), np.log([0.8]), np.array([])]
    expected = np.array([0.5 * np.exp(np.log([0.9, 0.4]).mean()), 0.3 * 0.8, 0.0])
    np.testing.assert_allclose(panel.step_prior(weights, steps), expected / expected.sum())
    np.testing.assert_allclose(panel.step_prior(weights, [np.array([])] * 3), [1 / 3] * 3)
