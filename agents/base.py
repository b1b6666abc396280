"""The agent interface and the episode runner, with budget accounting.

An agent picks actions through the env's public API; :meth:`Agent.run_episode` plays one episode
and reports what it cost: forwarded tokens over every model the episode made run (teachers,
primary, judge; the teachers' reference answers and the judge's working included, whether the
episode's ``reset`` built the tree or ``env.prepare`` built it in a batch), model calls and generated
tokens, read from ``env.unwrapped.episode_costs()`` (DESIGN §10).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tokentree_env.env.observation import FEATURES

PRIOR = FEATURES.index("prior")
PRIMARY_LOGPROB = FEATURES.index("primary_logprob")
PANEL_LOGPROB = FEATURES.index("panel_logprob")


def features(obs) -> np.ndarray:
    """Per-candidate features of an observation, ``(K, F)``."""
    return obs["features"].reshape(len(obs["action_mask"]), len(FEATURES))


def masked_argmax(obs, column: int) -> int:
    """The valid candidate with the highest value of a feature column."""
    return int(np.argmax(np.where(obs["action_mask"] == 1, features(obs)[:, column], -np.inf)))


def total_costs(env) -> dict[str, int]:
    """Forward calls, forwarded and generated tokens summed over every model of the env."""
    out = {"model_calls": 0, "forwarded_tokens": 0, "generated_tokens": 0}
    for c in env.unwrapped.costs().values():
        out["model_calls"] += c["forward_calls"]
        out["forwarded_tokens"] += c["forwarded_tokens"]
        out["generated_tokens"] += c["generated_tokens"]
    return out


def _minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


@dataclass
class StepRecord:
    """One decision: the slate, what the agent knew of it, and what it chose."""

    candidates: list[int]
    directions: list[str]
    proposed_by: list[list[str]]  # provenance: the models that proposed each candidate
    prior: list[float]
    chosen: int
    reward: float
    visits: list[float] = field(default_factory=list)  # visit distribution (search agents; else empty)
    q_values: list[float] = field(default_factory=list)  # mean return per child (search agents; else empty)
    improved: list[float] = field(default_factory=list)  # Gumbel MuZero's improved policy (else empty)
    continuations: list[list[int]] = field(default_factory=list)  # per child: the answer the search played after it
    panel_weights: list[float] = field(default_factory=list)  # the panel's weights over the teachers here (who writes)
    teacher_logprobs: list[float] = field(default_factory=list)  # each teacher's log-prob of the chosen child


@dataclass
class EpisodeResult:
    """What one episode produced and cost."""

    agent: str
    prompt: str
    completion: str
    hard_reward: float
    episode_return: float
    reward_terms: dict[str, float]
    terminal_reason: str | None
    steps: int
    forwarded_tokens: int
    model_calls: int
    generated_tokens: int
    seconds: float
    tokens: list[int] = field(default_factory=list)  # the answer's primary token ids
    prompt_ids: list[int] = field(default_factory=list)  # the root's ids (contexts = prompt_ids + tokens[:i])
    records: list[StepRecord] = field(default_factory=list)
    weightage_update: dict[str, int] = field(default_factory=dict)  # factors the episode lowered / raised
    forwarded_by_model: dict[str, int] = field(default_factory=dict)  # inside the episode's window, per model

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _chosen_logprobs(info: dict, action: int) -> list[float]:
    """Each teacher's log-prob of the chosen child, from ``info["panel"]`` (empty where the env gives none)."""
    rows = info.get("panel", {}).get("teacher_logprobs", [])
    return list(rows[action]) if 0 <= action < len(rows) else []


class Agent(ABC):
    """Chooses children in TokenTree-v0. Implement :meth:`act`; :meth:`begin` is an optional hook."""

    name: str = "agent"

    def begin(self, env, obs, info) -> None:
        """Called after ``reset`` (planning agents plan here)."""

    @abstractmethod
    def act(self, env, obs, info) -> int:
        """The action (child index) to take from the current state."""

    def last_search(self) -> tuple[list[float], list[float]] | None:
        """Visit distribution and Q values of the last decision, for search agents."""
        return None

    def run_episode(self, env, *, seed: int | None = None, options: dict | None = None) -> EpisodeResult:
        """Play one episode; return its answer, hard reward, return and cost."""
        u, started = env.unwrapped, time.perf_counter()
        before = None if hasattr(u, "episode_costs") else total_costs(env)
        obs, info = env.reset(seed=seed, options=options)
        self.begin(env, obs, info)
        records, total, done = [], 0.0, False
        while not done:
            action = self.act(env, obs, info)
            search = self.last_search()
            step = StepRecord(candidates=obs["candidates"][obs["action_mask"] == 1].tolist(),
                              directions=list(info["directions"]),
                              proposed_by=[p["proposed_by"] for p in info.get("provenance", [])], prior=features(obs)[obs["action_mask"] == 1,
                                                                                       PRIOR].tolist(),
                              chosen=int(action), reward=0.0,
                              visits=search[0] if search else [], q_values=search[1] if search else [],
                              improved=list(getattr(self, "last_improved_policy", list)()),
                              continuations=list(getattr(self, "last_continuations", list)()),
                              panel_weights=list(info.get("panel", {}).get("weights", [])),
                              teacher_logprobs=_chosen_logprobs(info, action))
            obs, reward, terminated, truncated, info = env.step(action)
            step.reward = float(reward)
            records.append(step)
            total += reward
            done = terminated or truncated
        after = u.episode_costs() if before is None else _minus(total_costs(env), before)
        state = u.get_state()
        return EpisodeResult(
            agent=self.name, prompt=state.prompt, completion=info["text"], hard_reward=u.hard_reward(state),
            episode_return=float(total), reward_terms=info["reward_terms"], terminal_reason=info["terminal_reason"],
            steps=len(records), forwarded_tokens=after["forwarded_tokens"],
            model_calls=after.get("model_calls", after.get("forward_calls", 0)),
            generated_tokens=after["generated_tokens"],
            seconds=time.perf_counter() - started, tokens=list(u.trees[state.prompt].path_tokens(state.node)),
            prompt_ids=list(u.trees[state.prompt].nodes[0].ids), records=records,
            weightage_update=dict(info.get("weightage_update") or {}),
            forwarded_by_model=dict(info.get("episode_cost_by_model") or {}))


Steps = Generator[list[tuple[object, int]], list[tuple], list[int]]
"""A planner's step generator: yields ``[(state, action), ...]``, is sent their ``simulate`` results, returns tokens."""


def run_plan(steps: Steps, env) -> list[int]:
    """Drive one planner's step generator on ``env``: each round's requests in one batched ``prefetch``, then
    ``simulate`` one by one (from warm caches). Returns the planned tokens."""
    prefetch = getattr(env, "prefetch", None)
    try:
        requests = next(steps)
        while True:
            if prefetch is not None and requests:
                prefetch([s for s, _ in requests], [a for _, a in requests])
            requests = steps.send([env.simulate(s, a) for s, a in requests])
    except StopIteration as done:
        return list(done.value)


class PlanningAgent(Agent):
    """An agent that plans a whole answer (a token sequence) at the start and then plays it.

    Write the plan as a step generator (:meth:`plan_steps`): it yields the transitions it wants simulated, as
    ``[(state, action), ...]``, is sent their ``simulate`` results, and returns the answer's tokens. Alone it runs
    through :func:`run_plan`; beside other episodes, :func:`agents.play.play_many` batches every planner's requests
    of a round into one ``prefetch``."""

    def begin(self, env, obs, info) -> None:
        self._plan = self.plan(env, obs)

    @abstractmethod
    def plan_steps(self, env, state, obs) -> Steps:
        """The plan from ``state`` (with its observation) as a step generator over the unwrapped env (see the class
        docstring)."""

    def plan(self, env, obs) -> list[int]:
        """The primary-token sequence to play (simulated through ``env.unwrapped.simulate``)."""
        u = env.unwrapped
        return run_plan(self.plan_steps(u, u.get_state(), obs), u)

    def act(self, env, obs, info) -> int:
        if self._plan:
            token = self._plan.pop(0)
            hits = np.flatnonzero((obs["candidates"] == token) & (obs["action_mask"] == 1))
            if hits.size:
                return int(hits[0])
            self._plan = []
        return masked_argmax(obs, PANEL_LOGPROB)  # off the plan (cannot happen on a cached tree)
