"""Run agents over a task split and summarise accuracy against compute.

Every agent starts on a **fresh env** (fresh token trees), so no agent rides on another's cached
expansions, and each is charged its teachers' reference answers. Accuracy is measured in evaluation
mode: the search never sees the verifier (``simulate`` withholds it), weightage is frozen, and the
verifier only scores the final answer. In evaluation the judge stands in for the verifier inside
planners' returns, so its weight defaults to 1.0 here (the env's training default is 0.1).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from agents.base import Agent, EpisodeResult
from agents.baselines import (
    BeamSearch,
    BestOfN,
    BestReference,
    EnsembleGreedy,
    GreedyPrimary,
    GreedyPrior,
    MajorityOfN,
    MajorityVote,
    RandomAgent,
)
from agents.search import MCTSAgent, MCTSConfig
from agents.stepwise import StepwiseGreedy
from agents.specs import AGENT_SPECS, MCTS_SPECS, SELF_PLAY_NOISE, check_settings, parse_spec  # noqa: F401
from agents.store import EpisodeStore
from tokentree_env.errors import ConfigError
from tokentree_env.stats import wilson

EVAL_JUDGE_WEIGHT = 1.0


def make_agent(spec: str, seed: int = 0, *, self_play: bool = False, **settings) -> Agent:
    """An agent from a spec: a name, with a budget after a colon for budgeted ones (``mcts:8``; every spec:
    :data:`agents.specs.AGENT_SPECS`).

    ``settings`` (``simulations``, ``dirichlet_fraction``, ``teacher_mix``, ``gumbel``, ``rollout``) adjust a search; one the spec
    cannot honour raises a :class:`ConfigError` naming both (:func:`agents.specs.check_settings`). ``self_play``
    gives a search its exploration unless a setting says otherwise: root Dirichlet noise (ε = 0.25) for PUCT
    searches, Gumbel draws at scale 1 for Gumbel MuZero (which takes no Dirichlet noise)."""
    given = check_settings(spec, settings)
    name, budget = parse_spec(spec)
    simple = {"random": lambda: RandomAgent(seed), "greedy-primary": GreedyPrimary, "greedy-prior": GreedyPrior,
              "ensemble-greedy": EnsembleGreedy, "best-reference": BestReference, "majority-vote": MajorityVote,
              "best-reference-by-return": lambda: BestReference(rank="return"),
              "stepwise-greedy": StepwiseGreedy, "stepwise-greedy-verifier": lambda: StepwiseGreedy(rank="verifier")}
    if name in simple:
        return simple[name]()
    if name in ("best-of", "best-of-return", "best-of-verifier"):
        return BestOfN(budget or 4, seed=seed, rank={"best-of": "judge"}.get(name, name.removeprefix("best-of-")))
    if name == "majority-of":
        return MajorityOfN(budget or 4, seed=seed)
    if name == "beam":
        return BeamSearch(budget or 2)
    if name == "ab-mcts":
        from agents.search.ab_mcts import ABMCTSAgent

        return ABMCTSAgent(budget or 8, seed=seed)
    simulations = budget or given.get("simulations") or (4 if name == "mcts-steps" else 8)
    noise = given.get("dirichlet_fraction", SELF_PLAY_NOISE if self_play else 0.0)
    if name == "mcts-steps":
        from agents.search.steps import StepMCTSAgent

        config = MCTSConfig(num_simulations=simulations, teacher_mix=0.0, widening=0.5, dirichlet_fraction=noise)
        return StepMCTSAgent(config, seed=seed)
    gumbel = "gumbel" in name
    config = MCTSConfig(num_simulations=simulations, gumbel=gumbel, gumbel_scale=1.0 if gumbel and self_play else 0.0,
                        dirichlet_fraction=0.0 if gumbel else noise,
                        leaf_value="judge" if name.endswith("-judge") else "rollout",
                        teacher_mix=0.0 if name == "mcts-design-prior" else given.get("teacher_mix",
                                                                                       MCTSConfig.teacher_mix),
                        prior={"mcts-uniform-prior": "uniform", "mcts-primary-prior": "primary"}.get(name, "env"),
                        rollout=given.get("rollout", MCTSConfig.rollout),
                        stop_at_verified=bool(given.get("stop_at_verified", False)))
    return MCTSAgent(config, seed=seed, name=f"{name}-{config.num_simulations}")


@dataclass
class Summary:
    """An agent's results over a split, with a 95 % Wilson interval on accuracy."""

    agent: str
    episodes: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    mean_return: float
    forwarded_tokens: float
    model_calls: float
    generated_tokens: float
    seconds: float


def summarise(agent: str, results: Sequence[EpisodeResult], seconds: float) -> Summary:
    n = len(results)
    acc = sum(r.hard_reward for r in results) / n
    lo, hi = wilson(sum(r.hard_reward for r in results), n)
    return Summary(agent, n, acc, lo, hi, sum(r.episode_return for r in results) / n,
                   sum(r.forwarded_tokens for r in results) / n, sum(r.model_calls for r in results) / n,
                   sum(r.generated_tokens for r in results) / n, seconds)


def evaluate(agent: Agent, prompts: Sequence[str], env_kwargs: dict | None = None, *,
             store: EpisodeStore | None = None, progress=None, batch: int = 1,
             seed: int = 0) -> tuple[Summary, list[EpisodeResult]]:
    """Play one episode per prompt on a fresh evaluation env; store each episode if asked.

    An agent that samples or searches is seeded by ``(seed, prompt index)`` for each episode; with ``batch > 1``
    ``batch`` episodes play in lockstep (one batched forward per model per round serves them all, whatever the
    agent: :func:`agents.play.play_many`), with the same episodes as one at a time."""
    from tokentree_env.env import TokenTreeEnv

    if batch < 1:
        raise ConfigError(f"evaluate(batch=...) must be >= 1, got {batch}")
    kwargs = {"evaluation": True, "reward_weights": {"judge_weight": EVAL_JUDGE_WEIGHT}} | dict(env_kwargs or {})
    env = TokenTreeEnv(**kwargs)
    started, results = time.perf_counter(), []
    for result in _episodes(agent, env, prompts, batch, seed):
        results.append(result)
        if store is not None:
            store.append(result)
        if progress is not None:
            progress()
    env.close()
    return summarise(agent.name, results, time.perf_counter() - started), results


def ensemble_greedy_rewards(prompts: Sequence[str], env_kwargs: dict) -> list[float]:
    """The hard reward of ensemble greedy (the panel's greedy decoding, under the env's panel rule) on each prompt,
    in evaluation mode: what a test-bed's gate reads (:func:`tokentree_env.zoo.skills_testbed.skills_report`)."""
    _, results = evaluate(make_agent("ensemble-greedy"), list(prompts), env_kwargs)
    return [r.hard_reward for r in results]


def skills_testbed(n: int, samples: int, progress=None) -> dict:
    """The ``chain5-skills`` test-bed's gates on ``n`` held-out problems with ``samples`` pooled samples each
    (:func:`tokentree_env.zoo.skills_testbed.skills_report`), ensemble greedy by :func:`ensemble_greedy_rewards`."""
    from tokentree_env.zoo.skills_testbed import skills_report

    return skills_report(n=n, samples=samples, ensemble=ensemble_greedy_rewards, progress=progress)


def _episodes(agent: Agent, env, prompts: Sequence[str], batch: int, seed: int):
    if batch == 1:
        for index, prompt in enumerate(prompts):
            if hasattr(agent, "reseed"):  # seeded per episode as in lockstep play: the same episodes
                agent.reseed([seed, 0, index, 0])
            yield agent.run_episode(env, options={"prompt": prompt})
        return
    import copy

    from agents.base import StepRecord
    from agents.play import play_many

    agents = [copy.deepcopy(agent) for _ in range(batch)]  # one per slot: each keeps its own plan and stream
    done, next_index = {}, 0
    for record in play_many(env, agents, list(enumerate(prompts)), seed=seed, iteration=0):
        fields = {k: v for k, v in record.items() if k not in ("iteration", "prompt_index", "repeat")}
        fields["records"] = [r if isinstance(r, StepRecord) else StepRecord(**r) for r in fields["records"]]
        done[record["prompt_index"]] = EpisodeResult(**fields)
        while next_index in done:  # in prompt order, each as soon as the ones before it are done
            yield done.pop(next_index)
            next_index += 1
