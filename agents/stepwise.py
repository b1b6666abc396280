"""Judge-guided step-wise greedy: the strong cheap baseline of a test-bed where teachers must combine.

At each step boundary every teacher writes the next step greedily (its own log-probs of the slate's children) and
then finishes the answer greedily; the finished answers are ranked (the judge's verdict by default; the verifier
where the env shows it to planners, in self-play; the planner return breaking ties), the best one's **first step**
is kept, and the walk goes on from the boundary it reached. So a chain can pass from one teacher to another at any
step, as a search's can, for ``K`` greedy finishes a step and no tree search. A step ends where the task's answer
format puts a boundary (``env.at_step_boundary``), or at the answer's end.

Written as a planner's step generator (:class:`~agents.base.PlanningAgent`): in lockstep play its simulations are
batched with every other episode's.
"""

from __future__ import annotations

import numpy as np

from agents.base import PlanningAgent, Steps
from agents.planners import _check_rank, _refuse_hidden_verifier, rank_key


class _Finish:
    """Teacher ``k`` writing from a boundary to the answer's end: where its first step ended, and its return."""

    __slots__ = ("boundary", "done", "info", "k", "obs", "state", "step", "terms", "tokens", "total")

    def __init__(self, k: int, state, obs, info) -> None:
        self.k, self.state, self.obs, self.info = k, state, obs, info
        self.tokens: list[int] = []
        self.total, self.terms, self.done = 0.0, {}, False
        self.step: int | None = None  # tokens of its first step, once a boundary (or the end) is reached
        self.boundary = None  # (state, obs, info) at the end of its first step

    def choose(self) -> int:
        """The teacher's own greedy child among the slate's valid ones."""
        own = np.asarray([row[self.k] for row in self.info["panel"]["teacher_logprobs"]], dtype=np.float64)
        mask = self.obs["action_mask"][: len(own)] == 1
        return int(np.argmax(np.where(mask, own, -np.inf)))

    def take(self, action: int, result: tuple, at_boundary) -> None:
        self.tokens.append(int(self.obs["candidates"][action]))
        self.state, self.obs, reward, terminated, truncated, self.info = result
        self.total += reward
        if terminated or truncated:
            self.terms, self.done = self.info["reward_terms"], True
        if self.step is None and (self.done or at_boundary(self.info["text"])):
            self.step, self.boundary = len(self.tokens), (self.state, self.obs, self.info)


class StepwiseGreedy(PlanningAgent):
    """Judge-guided step-wise greedy (see the module docstring).

    Args:
        rank: how finished answers are ranked: ``"judge"`` (its verdict; the planner return where the judge is off),
            ``"verifier"`` (self-play only) or ``"return"``.
        max_steps: the most steps an answer may take.
    """

    def __init__(self, rank: str = "judge", max_steps: int = 32) -> None:
        self.rank, self.max_steps = _check_rank(rank), max_steps
        self.name = "stepwise-greedy" + ("" if rank == "judge" else f"-{rank}")
        self.writers: list[int] = []  # the teacher whose step was kept, per step of the last plan

    def plan_steps(self, env, state, obs) -> Steps:
        if self.rank == "verifier":
            _refuse_hidden_verifier(env, self.name)
        teachers, answer, self.writers = len(env.teacher_names), [], []
        here = (state, obs, env.state_info(state))
        for _ in range(self.max_steps):
            finishes = [_Finish(k, *here) for k in range(teachers)]
            for _ in range(env.max_new_tokens + 1):
                live = [f for f in finishes if not f.done]
                if not live:
                    break
                actions = [f.choose() for f in live]
                results = yield [(f.state, a) for f, a in zip(live, actions, strict=True)]
                for f, action, result in zip(live, actions, results, strict=True):
                    f.take(action, result, env.at_step_boundary)
            best = max(finishes, key=lambda f: rank_key(self.rank, f.total, f.terms))
            step = best.step if best.step is not None else len(best.tokens)
            answer += best.tokens[:step]
            self.writers.append(best.k)
            if step == len(best.tokens):  # its first step ended the answer
                return answer
            here = best.boundary
        return answer
