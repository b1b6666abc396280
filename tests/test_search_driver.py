"""Specification of the one search driver: every ``MCTSConfig`` option acts the same whether an episode's search runs
alone (``MCTSAgent`` through ``env.step``) or beside others in lockstep (``play_lockstep`` through ``env.advance``).

Each field is set to a non-default value one at a time, then several together; both modes play the same two
prompts, each episode seeded by (seed, iteration, prompt index, repeat), on fresh trees over the same models, and
must record the same searches: the same tokens, visit counts and Q values at every step. Self-play mode (not
evaluation), so that ``update_weightage`` acts too. A second test shows that each setting changes those records,
so a path that ignored it would fail the first. The ``chain5`` test-bed's three teachers in three styles give
the searches room: on the zoo's ``chain3`` several settings leave these short searches unchanged.
"""

import dataclasses

import pytest

from agents.search import MCTSAgent, MCTSConfig
from agents.search.lockstep import play_lockstep
from tokentree_env.env import TokenTreeEnv
from tokentree_env.errors import ConfigError

PROMPTS = ["47-12+85-30+19=", "13+26+51-24+49="]
BASE = {"num_simulations": 6}
NEEDS = {"gumbel_actions": {"gumbel": True}, "gumbel_scale": {"gumbel": True}, "virtual_loss": {"leaf_batch": 3},
         "dirichlet_alpha": {"dirichlet_fraction": 0.25}, "widening_min": {"widening": 0.5}}
"""Settings that act only beside another: their comparison runs with it on both sides."""
NON_DEFAULT = {  # every field of MCTSConfig, at a value other than its default
    "num_simulations": 5, "c_puct": 2.5, "c_base": 2.0, "q_transform": "parent_and_siblings", "root_value": True,
    "dirichlet_alpha": 0.5, "dirichlet_fraction": 0.25, "temperature": 1.0, "rollout_depth": 4, "rollout": "prior",
    "leaf_value": "judge", "gumbel": True, "gumbel_actions": 2, "gumbel_scale": 1.0, "teacher_mix": 0.0,
    "prior": "uniform", "reuse_subtree": True, "leaf_batch": 3, "virtual_loss": 0.25, "update_weightage": True,
    "widening": 0.5, "widening_min": 3, "stop_at_verified": True}
SELF_PLAY_FIELDS = {"stop_at_verified"}
"""Settings that act only where planners see the verifier (self-play on train prompts): these tables' env hides it;
tests/test_coverage.py shows each one acting."""
COMBINED = {"num_simulations": 5, "leaf_batch": 3, "virtual_loss": 0.25, "reuse_subtree": True, "leaf_value": "judge",
            "dirichlet_fraction": 0.25, "temperature": 1.0, "c_base": 5.0, "root_value": True, "update_weightage": True,
            "q_transform": "parent_and_siblings"}


def test_the_table_covers_every_field():
    fields = {f.name: f.default for f in dataclasses.fields(MCTSConfig)}
    assert set(NON_DEFAULT) == set(fields)
    assert all(NON_DEFAULT[name] != default for name, default in fields.items())


@pytest.fixture(scope="module")
def models():
    from tokentree_env.zoo.catalog import CHAIN5_JUDGE, CHAIN5_TEACHERS

    env = TokenTreeEnv(teachers=list(CHAIN5_TEACHERS), judge=CHAIN5_JUDGE, task="chain5", max_new_tokens=12)
    yield {"teachers": env.models.teachers, "primary": env.primary, "judge": env.judge, "max_new_tokens": 12,
           "task": "chain5"}
    env.close()


def _searches(tokens, steps) -> tuple:
    """An episode's tokens and, per step, the search's visit distribution and Q values (rounded)."""
    return (list(tokens), [([round(v, 6) for v in _get(s, "visits")], [round(q, 4) for q in _get(s, "q_values")])
                           for s in steps])


def _get(step, name):
    return step[name] if isinstance(step, dict) else getattr(step, name)


def _one_at_a_time(models, config):
    env, agent = TokenTreeEnv(**models), MCTSAgent(config)
    out = []
    for index, prompt in enumerate(PROMPTS):
        agent.reseed([0, 0, index, 0])
        episode = agent.run_episode(env, options={"prompt": prompt})
        out.append(_searches(episode.tokens, episode.records))
    return out


def _lockstep(models, config):
    env = TokenTreeEnv(**models)
    records = play_lockstep(env, [MCTSAgent(config) for _ in PROMPTS], [(i, p, [0]) for i, p in enumerate(PROMPTS)],
                            seed=0, iteration=0)
    return [_searches(r["tokens"], r["records"]) for r in sorted(records, key=lambda r: r["prompt_index"])]


@pytest.mark.parametrize("settings", [NEEDS.get(name, {}) | {name: value} for name, value in NON_DEFAULT.items()]
                         + [COMBINED], ids=[*NON_DEFAULT, "combined"])
def test_one_at_a_time_and_lockstep_play_the_same_episodes(models, settings):
    config = MCTSConfig(**(BASE | settings))
    assert _one_at_a_time(models, config) == _lockstep(models, config)


@pytest.mark.parametrize("name", list(NON_DEFAULT))
def test_each_setting_changes_the_searches_so_the_equality_above_can_fail(models, name):
    if name in SELF_PLAY_FIELDS:
        pytest.skip("acts only where planners see the verifier: tests/test_coverage.py")
    without = MCTSConfig(**(BASE | NEEDS.get(name, {})))
    assert _one_at_a_time(models, dataclasses.replace(without, **{name: NON_DEFAULT[name]})) != _one_at_a_time(
        models, without)


def test_a_judge_leaf_is_refused_without_the_judge_or_with_rollouts_shorter_than_the_answer(models):
    from agents.evaluation import evaluate

    for env_kwargs, config, message in [
            (models | {"judge": None}, MCTSConfig(num_simulations=2, leaf_value="judge"), "judge on"),
            (models, MCTSConfig(num_simulations=2, leaf_value="judge", rollout_depth=4), "rollout_depth=4")]:
        with pytest.raises(ConfigError, match=message):
            evaluate(MCTSAgent(config), PROMPTS[:1], env_kwargs)


def test_the_judge_leaf_reads_the_judges_raw_verdict_whatever_its_reward_weight(models):
    env = TokenTreeEnv(**models, reward_weights={"judge_weight": 0.0})
    obs, _ = env.reset(options={"prompt": PROMPTS[0]})
    search = MCTSAgent(MCTSConfig(num_simulations=2, leaf_value="judge")).mcts
    value = search.leaf_value(env, env.get_state(), obs)
    assert -1.0 <= value <= 1.0 and value != 0.0


# -- the Gumbel and the step paths: every field acts there too, or is refused -------------------------------------
GUMBEL_BASE = {"num_simulations": 6, "gumbel": True}
STEP_BASE = {"num_simulations": 6, "teacher_mix": 0.0, "widening": 0.5}
STEP_VALUES = NON_DEFAULT | {"widening_min": 5, "widening": 0.8, "teacher_mix": 0.5, "rollout_depth": 1}
"""The step path's non-default values (widening_min is raised to the number of teachers there: 5 > 3 acts; a step
rollout is a few options long, so depth 1 cuts it)."""


def _or_refused(make, settings):
    """The searches under ``settings``, or "refused" when the search refuses them with a ConfigError."""
    try:
        return make(settings)
    except ConfigError:
        return "refused"


@pytest.mark.parametrize("name", [n for n in NON_DEFAULT if n != "gumbel"])
def test_on_the_gumbel_path_every_field_acts_or_is_refused(models, name):
    if name in SELF_PLAY_FIELDS:
        pytest.skip("acts only where planners see the verifier: tests/test_coverage.py")

    def searches(settings):
        env, agent, out = TokenTreeEnv(**models), MCTSAgent(MCTSConfig(**(GUMBEL_BASE | settings))), []
        for index, prompt in enumerate(PROMPTS):
            agent.reseed([0, 0, index, 0])
            episode = agent.run_episode(env, options={"prompt": prompt})
            out.append(_searches(episode.tokens, episode.records))
        return out, dict(env.weightage_updates)  # update_weightage acts on the trees, which later searches read

    changed = _or_refused(searches, NEEDS.get(name, {}) | {name: NON_DEFAULT[name]})
    assert changed == "refused" or changed != searches(NEEDS.get(name, {}) if name in NEEDS else {})


def _steps(models, config):
    """Each prompt's first step-level search, in full: the root's prior over the options, the visits and Q values of
    every node, the leaves' values and rollouts, the option chosen under 8 seeds, and the env's weightage updates."""
    import numpy as np

    from agents.search.driver import run_searches
    from agents.search.mcts import MCTS
    from agents.search.steps import StepMCTSAgent, StepOptionsEnv

    StepMCTSAgent(config)  # refuses what the step path would ignore
    env, out = TokenTreeEnv(**models), []
    for index, prompt in enumerate(PROMPTS):
        options = StepOptionsEnv(env, seed=index)
        state, obs, info = env.begin(prompt)
        search = MCTS(dataclasses.replace(config, widening_min=max(config.widening_min, options.teachers)),
                      rng=np.random.default_rng(index))
        tree = run_searches([search], options, [options.root(state, obs, info)])[0]
        picks = [MCTS(search.config, rng=np.random.default_rng(s)).choose(tree) for s in range(8)]
        out.append((np.round(tree.children_prior[0], 4).tolist(), tree.children_visits[: tree.size].tolist(),
                    np.round(tree.children_values[: tree.size], 4).tolist(), tree.node_visits[: tree.size].tolist(),
                    np.round(tree.raw_values[: tree.size], 4).tolist(), [list(r) for r in tree.rollouts[: tree.size]],
                    picks))
    return out, dict(env.weightage_updates)


@pytest.mark.parametrize("name", [n for n in NON_DEFAULT if n != "rollout"])
def test_on_the_step_path_every_field_acts_or_is_refused(models, name):
    needs = {k: v for k, v in NEEDS.get(name, {}).items() if k != "widening"}

    def searches(settings):
        return _steps(models, MCTSConfig(**(STEP_BASE | settings)))

    changed = _or_refused(searches, needs | {name: STEP_VALUES[name]})
    assert changed == "refused" or changed != searches(needs)


def test_on_the_step_path_a_prior_rollout_follows_the_top_prior_option_and_a_teacher_rollout_the_writer():
    """``rollout`` on step options: "teacher" follows the writer's own greedy option, "prior" the option with the
    largest prior. On the test-bed the writer is nearly always the top-prior teacher (its own next step is the
    likeliest), so the searches above cannot tell them apart; here the two columns disagree."""
    import numpy as np

    from agents.search.rollout import _greedy

    obs = {"option_prior": np.array([0.2, 0.5, 0.3], dtype=np.float32), "writer": np.array([1, 0, 0], dtype=np.int8),
           "action_mask": np.ones(3, dtype=np.int8), "candidates": np.zeros(3, dtype=np.int64)}
    assert (_greedy(obs, "teacher"), _greedy(obs, "prior")) == (0, 1)
