"""AB-MCTS (Inoue et al. 2025, "Wider or Deeper?") over the teachers' step options, from Sakana AI's own library
(``treequest``, Apache-2.0; ``pip install 'tokentree[abmcts]'``): a baseline beside step-level MCTS, not
re-implemented here.

Each of treequest's actions is a teacher. Asked to grow a node by teacher ``k``, the adapter draws a new sampled
step by that teacher from the node's boundary (:class:`~agents.search.steps.StepOptionsEnv`: another draw each time,
so a node can be widened again), then scores the child by finishing the answer with teacher ``k``'s greedy steps:
the verifier's 0/1 in self-play, the judge's P(yes) in evaluation (with the judge off, the answer's panel
likelihood per token). ABMCTS-A chooses by Thompson sampling between going wider and deeper, and between teachers.
After ``S`` growth steps (``ab-mcts:S``), the best-scored node's finished answer is played. Every token is walked
through the env's planner API, so it is charged and cached as any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents.base import PlanningAgent, Steps
from agents.search.steps import StepOptionsEnv, StepState
from tokentree_env.errors import ConfigError


@dataclass
class _Grown:
    """A treequest node's state: the boundary its step reached, and the whole answer its scoring rollout played."""

    boundary: StepState
    answer: list[int] = field(default_factory=list)
    logprobs: list[list[float]] = field(default_factory=list)  # per answer token: each teacher's log-prob
    finished: list[int] = field(default_factory=list)  # the whole answer the scoring rollout played
    score: float = 0.0  # the finished answer's score


class ABMCTSAgent(PlanningAgent):
    """``ab-mcts:S``: ABMCTS-A with Thompson sampling over the teachers, ``S`` growth steps per problem."""

    def __init__(self, steps: int = 8, *, temperature: float = 1.0, seed: int = 0, name: str | None = None) -> None:
        if steps < 1:
            raise ConfigError(f"ab-mcts needs at least one growth step, got {steps}")
        self.steps, self.temperature, self.seed = steps, temperature, seed
        self.slate_mass: list[float] = []  # the slate's share of the sampler's mass at every sampled token
        self.name = name or f"ab-mcts-{steps}"

    def reseed(self, seed) -> None:
        self.seed = int(np.random.default_rng(seed).integers(2**31))

    def plan_steps(self, env, state, obs) -> Steps:
        saved = np.random.get_state()  # importing treequest the first time draws from NumPy's global stream
        try:
            import treequest
        except ImportError as error:
            raise ConfigError("ab-mcts runs Sakana AI's treequest: pip install 'tokentree[abmcts]'") from error
        finally:
            np.random.set_state(saved)
        options = StepOptionsEnv(env, samples=self.steps, temperature=self.temperature, seed=self.seed)
        root = StepState(state, obs, _info(env, state, obs))
        draws: dict[tuple, int] = {}
        score = _scorer(env)

        algo = treequest.ABMCTSA()
        tree = algo.init_tree()
        generators = {f"teacher-{k}": _grower(options, root, k, self.steps, draws, score)
                      for k in range(options.teachers)}
        own = OwnNumpyStream(self.seed)  # treequest draws from NumPy's global stream: give it this search's own
        for _ in range(self.steps):
            with own:
                tree = algo.step(tree, generators)
        best = treequest.top_k(tree, algo, 1)[0][0]
        pairs = algo.get_state_score_pairs(tree)
        self.last_answers = [grown.finished for grown, _ in pairs]
        self._root = _root_statistics(obs, [(grown.finished, s) for grown, s in pairs])
        self.slate_mass += options.slate_mass
        yield from ()
        return best.finished

    def set_plan(self, tokens) -> None:
        super().set_plan(tokens)
        self._at_root = True

    def act(self, env, obs, info) -> int:
        at_root, self._at_root = getattr(self, "_at_root", False), False
        self._last = self._root if at_root else None
        return super().act(env, obs, info)

    def last_search(self):
        """At the root: per valid child, the share of the tree's finished answers that start with it and their best
        score (treequest's tree as a visit distribution and Q values); None at later steps."""
        last = getattr(self, "_last", None)
        return None if last is None else (last[0], last[1])

    def last_continuations(self) -> list[list[int]]:
        """At the root: per valid child, the best finished answer of the tree that starts with it (or [])."""
        last = getattr(self, "_last", None)
        return [] if last is None else last[2]


class OwnNumpyStream:
    """A search's own NumPy stream for code that draws from NumPy's global one (treequest's ``scipy.stats`` ``rvs``
    and ``np.random.normal``): inside ``with stream:`` the global stream is this one, continuing where it stopped;
    after the block the global stream is exactly as it was found."""

    def __init__(self, seed: int) -> None:
        self.state, self.saved = np.random.RandomState(seed).get_state(), None

    def __enter__(self) -> OwnNumpyStream:
        self.saved = np.random.get_state()
        np.random.set_state(self.state)
        return self

    def __exit__(self, *exc) -> None:
        self.state = np.random.get_state()
        np.random.set_state(self.saved)


def _root_statistics(obs, answers: list[tuple[list[int], float]]) -> tuple[list[float], list[float], list[list[int]]]:
    """Per valid child of the root: the share of ``answers`` (tokens, score) that start with it, their best score, and
    the best-scored answer that starts with it."""
    candidates = obs["candidates"][obs["action_mask"] == 1].tolist()
    counts, best, answer = np.zeros(len(candidates)), np.zeros(len(candidates)), [[] for _ in candidates]
    for tokens, score in answers:
        if tokens and tokens[0] in candidates:
            i = candidates.index(tokens[0])
            counts[i] += 1
            if not answer[i] or score > best[i]:
                best[i], answer[i] = float(score), list(tokens)
    total = counts.sum()
    return ((counts / total).tolist() if total else counts.tolist()), best.tolist(), answer


def _grower(options: StepOptionsEnv, root: StepState, k: int, steps: int, draws: dict, score):
    """treequest's generator for teacher ``k``: grow a node by a new step of that teacher (its first ``steps``
    draws sampled, later ones its greedy step), then finish the answer with the teacher's greedy steps to score it."""
    def generate(parent: _Grown | None) -> tuple[_Grown, float]:
        here = parent if parent is not None else _Grown(root)
        if here.boundary.done:  # treequest may pick a node whose step ended the answer: it cannot grow, stays itself
            return _Grown(here.boundary, here.answer, here.logprobs, here.finished, here.score), here.score
        key = (options.key(here.boundary), k)
        draw, draws[key] = draws.get(key, 0), draws.get(key, 0) + 1
        option = k if draw >= steps else options.teachers * (1 + draw) + k
        walk = options.play(here.boundary, option)
        grown = _Grown(walk.end, here.answer + walk.tokens, here.logprobs + walk.logprobs)
        answer, logprobs, end = list(grown.answer), list(grown.logprobs), walk
        while not end.end.done:  # finish with the writer's greedy steps, to score the node
            end = options.play(end.end, k)
            answer, logprobs = answer + end.tokens, logprobs + end.logprobs
        grown.finished, grown.score = answer, score(end, logprobs)
        return grown, grown.score
    return generate


def _info(env, state, obs) -> dict:
    """The root's info (the panel's weights), as the env reports it."""
    return env.state_info(state)


def _scorer(env):
    """A finished answer's score in [0, 1]: the verifier (self-play), the judge's P(yes), else the answer's panel
    likelihood per token (``exp`` of the panel's mean log-prob)."""
    def score(walk, logprobs: list[list[float]]) -> float:
        verified = env.task_score(walk.info.get("reward_terms", {}))
        if verified is not None:
            return verified
        if walk.info.get("judge_verdict") is not None:
            return float(walk.info["judge_verdict"])
        return float(np.exp(env.panel_path_logprob(logprobs) / max(1, len(logprobs))))
    return score


__all__ = ["ABMCTSAgent", "OwnNumpyStream"]
