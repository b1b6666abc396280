"""Specification of seeds and search settings: every (prompt, repeat) gets its own seed on every path, self-play
searches explore, and a setting a search cannot honour is refused, never dropped."""

import pytest

from agents.evaluation import make_agent
from agents.search import MCTSAgent
from agents.training import TrainConfig
from agents.training.selfplay import SelfPlayJob, play_episodes
from tokentree_env.env import TokenTreeEnv
from tokentree_env.errors import ConfigError

SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "max_new_tokens": 14, "planner_verifier": True}
PROMPTS = ["12+35+20=", "31+42+15=", "50+17+9=", "23+64+11="]


@pytest.mark.parametrize("batch", [1, 3], ids=["one at a time", "lockstep"])
def test_self_play_seeds_every_episode_by_seed_iteration_prompt_and_repeat(monkeypatch, batch):
    seen = []
    original = MCTSAgent.reseed
    monkeypatch.setattr(MCTSAgent, "reseed", lambda self, seed: (seen.append(tuple(seed)), original(self, seed)))
    items = [(i, p, [0, 1]) for i, p in enumerate(PROMPTS[:3])]
    records = list(play_episodes(TokenTreeEnv(**SMALL), items, SelfPlayJob(seed=7, iteration=2, batch=batch)))
    assert sorted(seen) == sorted((7, 2, i, r) for i in range(3) for r in (0, 1))
    assert sorted((r["prompt_index"], r["repeat"]) for r in records) == sorted((i, r) for i in range(3) for r in (0, 1))


@pytest.mark.parametrize(("spec", "batch"), [("best-of:2", 1), ("best-of:2", 3), ("mcts-steps:2", 3)],
                         ids=["planner, one at a time", "planner, lockstep batch", "step options, lockstep batch"])
def test_every_play_path_seeds_each_prompt_and_repeat_apart(monkeypatch, spec, batch):
    """Planners and step searches play through ``play_many``'s batch path, not the MCTS lockstep: their seeds are
    ``(seed, iteration, prompt index, repeat)`` too."""
    agent = make_agent(spec)
    seen = []
    original = type(agent).reseed
    monkeypatch.setattr(type(agent), "reseed", lambda self, seed: (seen.append(tuple(seed)), original(self, seed)))
    items = [(i, p, [0, 1]) for i, p in enumerate(PROMPTS[:3])]
    list(play_episodes(TokenTreeEnv(**SMALL), items, SelfPlayJob(agent=spec, seed=5, iteration=1, batch=batch)))
    assert sorted(set(seen)) == sorted((5, 1, i, r) for i in range(3) for r in (0, 1))


NOISY = {"mcts:2": (("dirichlet_fraction", 0.75),), "mcts-steps:2": (("dirichlet_fraction", 0.75),),
         "mcts-gumbel:2": (), "best-of:2": (), "ab-mcts:2": ()}
"""A noisy self-play agent of each kind: strong root noise for PUCT (at self-play's default ε = 0.25 and 2 simulations
the noise rarely moves the choice on these prompts), Gumbel draws, sampling."""


@pytest.mark.parametrize("spec", list(NOISY))
def test_two_repeats_of_a_noisy_self_play_search_play_different_episodes(spec):
    """Each repeat has its own seed, so the repeats of a prompt by a noisy agent are not copies of one episode."""
    if spec.startswith("ab-mcts"):
        pytest.importorskip("treequest")
    items = [(i, p, [0, 1]) for i, p in enumerate(PROMPTS)]
    job = SelfPlayJob(agent=spec, settings=NOISY[spec], batch=2)
    records = list(play_episodes(TokenTreeEnv(**SMALL), items, job))
    by = {(r["prompt_index"], r["repeat"]): r for r in records}
    differs = [by[(i, 0)]["tokens"] != by[(i, 1)]["tokens"] or by[(i, 0)]["records"] != by[(i, 1)]["records"]
               for i in range(len(PROMPTS))]
    assert any(differs)


def test_self_play_gives_puct_root_noise_and_gumbel_its_draws_unless_declared_off():
    assert make_agent("mcts:4", self_play=True).mcts.config.dirichlet_fraction == 0.25
    assert make_agent("mcts:4").mcts.config.dirichlet_fraction == 0.0  # evaluation: no noise
    assert make_agent("mcts:4", self_play=True, dirichlet_fraction=0.0).mcts.config.dirichlet_fraction == 0.0
    gumbel = make_agent("mcts-gumbel:4", self_play=True).mcts.config
    assert (gumbel.gumbel_scale, gumbel.dirichlet_fraction) == (1.0, 0.0)
    assert make_agent("mcts-steps:4", self_play=True).mcts.config.dirichlet_fraction == 0.25


@pytest.mark.parametrize(("kwargs", "names"), [
    ({"agent": "mcts:4", "simulations": 8}, ["mcts:4", "simulations=8"]),
    ({"agent": "ab-mcts:8", "simulations": 3}, ["ab-mcts:8", "simulations=3"]),
    ({"agent": "ab-mcts:8", "dirichlet_fraction": 0.25}, ["ab-mcts:8", "dirichlet_fraction=0.25"]),
    ({"gumbel": True, "dirichlet_fraction": 0.25}, ["mcts-gumbel:2", "dirichlet_fraction=0.25"]),
    ({"agent": "mcts-steps:4", "teacher_mix": 0.3}, ["mcts-steps:4", "teacher_mix=0.3"]),
    ({"agent": "mcts:4", "gumbel": True}, ["mcts:4", "gumbel"]),
], ids=["simulations vs budget", "ab-mcts simulations", "ab-mcts noise", "gumbel noise", "steps mix", "gumbel kind"])
def test_a_setting_a_search_cannot_honour_is_refused_naming_both(kwargs, names):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**kwargs)
    assert all(name in str(error.value) for name in names)


@pytest.mark.parametrize(("kwargs", "spec"), [({}, "mcts:2"), ({"simulations": 8}, "mcts:8"),
                                              ({"gumbel": True}, "mcts-gumbel:2"), ({"agent": "ab-mcts:8"}, "ab-mcts:8"),
                                              ({"agent": "mcts:4", "simulations": 4}, "mcts:4")])
def test_the_self_play_search_is_the_spec_with_its_own_settings_unless_set(kwargs, spec):
    config = TrainConfig(**kwargs)
    assert config.search_spec == spec
    agent = make_agent(config.search_spec, self_play=True,
                       **{k: v for k, v in config.search_settings.items() if v is not None})
    name, budget = spec.split(":")
    if name == "ab-mcts":
        assert type(agent).__name__ == "ABMCTSAgent" and agent.steps == int(budget)
    else:  # the search that runs: its simulations and its kind
        assert agent.mcts.config.num_simulations == int(budget)
        assert agent.mcts.config.gumbel == (name == "mcts-gumbel")


@pytest.mark.parametrize("task", ["reverse", "chain5"])
def test_greedy_primary_through_the_env_is_the_primarys_own_greedy_token_for_token(task):
    """The primary's own top choice is always on the slate when it proposes, so following its log-probs through
    the tree decodes exactly what it decodes alone (it was cut when three teachers agreed on other tokens)."""
    from agents.evaluation import evaluate
    from tokentree_env.models import load_model
    from tokentree_env.models.generation import greedy_ids
    from tokentree_env.models.prompts import prompt_ids
    from tokentree_env.tasks import load_task
    from tokentree_env.zoo.catalog import CHAIN5_PRIMARY, CHAIN5_TEACHERS

    problems = load_task(task).problems("heldout")[:12]
    kwargs = {"teachers": list(CHAIN5_TEACHERS), "primary": CHAIN5_PRIMARY, "judge": None, "task": task,
              "max_new_tokens": 24}
    _, results = evaluate(make_agent("greedy-primary"), [p.prompt for p in problems], kwargs)
    lm = load_model(CHAIN5_PRIMARY)
    alone = greedy_ids(lm.model, lm.tokenizer, [prompt_ids(lm.tokenizer, p.prompt) for p in problems],
                       max_new_tokens=24)
    eos = lm.tokenizer.eos_token_id
    assert [[t for t in r.tokens if t != eos] for r in results] == alone
