"""The agent interface and the episode runner, with budget accounting.

An agent picks actions through the env's declared door (:mod:`tokentree_env.env.door`); :meth:`Agent.run_episode`
plays one episode and reports what it cost: forwarded tokens over every model the episode made run (teachers,
primary, judge; the teachers' reference answers and the judge's working included, whether the
episode's ``reset`` built the tree or ``env.prepare`` built it in a batch), model calls and generated
tokens, read from ``env.unwrapped.episode_costs()`` (DESIGN §10).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Generator

import numpy as np

from agents.records import EpisodeResult, StepRecord, episode_result, step_record  # noqa: F401 - StepRecord: re-exported
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


class Agent(ABC):
    """Chooses children in TokenTree-v0. Implement :meth:`act`; :meth:`begin` is an optional hook."""

    name: str = "agent"

    def begin(self, env, obs, info) -> None:
        """Called after ``reset`` (planning agents plan here)."""

    @abstractmethod
    def act(self, env, obs, info) -> int:
        """The action (child index) to take from the current state."""

    def last_search(self) -> tuple | None:
        """Visit distribution and Q values over the valid children of the last decision, and optionally the visits'
        total (search agents; else None)."""
        return None

    def last_improved_policy(self) -> list[float]:
        """Gumbel MuZero's improved policy over the last decision's valid children (else empty)."""
        return []

    def last_continuations(self) -> list[list[int]]:
        """Per valid child of the last decision, the whole answer the search played after it (else empty)."""
        return []

    def last_continuation_scores(self) -> list[float | None]:
        """Per valid child of the last decision, the verifier's score of its continuation where shown (else empty)."""
        return []

    def verified_answers(self) -> list[list[int]]:
        """Every distinct whole answer this episode's searches saw the verifier pass (else empty)."""
        return []

    def run_episode(self, env, *, seed: int | None = None, options: dict | None = None) -> EpisodeResult:
        """Play one episode; return its answer, hard reward, return and cost."""
        u, started = env.unwrapped, time.perf_counter()
        obs, info = env.reset(seed=seed, options=options)
        self.begin(env, obs, info)
        records, total, done = [], 0.0, False
        while not done:
            action = self.act(env, obs, info)
            step = step_record(self, obs, info, action)
            obs, reward, terminated, truncated, info = env.step(action)
            step.reward = float(reward)
            records.append(step)
            total += reward
            done = terminated or truncated
        return episode_result(u, self.name, u.get_state(), info, records, total, started, self.verified_answers())


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
        self.set_plan(self.plan(env, obs))

    def set_plan(self, tokens) -> None:
        """The answer to play from now on (lockstep play plans beside other episodes, then hands the plan over)."""
        self._plan = list(tokens)

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
