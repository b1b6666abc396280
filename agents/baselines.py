"""Baseline agents for TokenTree-v0, all through the env's public API.

Fixed-cost agents (one expansion per generated token): :class:`RandomAgent`,
:class:`GreedyPrimary` (the primary's own greedy decoding), :class:`GreedyPrior` (weightage ×
similarity), :class:`EnsembleGreedy` (mean teacher log-prob), :class:`BestReference` (the best
of the teachers' reference answers). Budgeted planners: :class:`BeamSearch` and
:class:`BestOfN`. Planners rank complete answers by their **planner return**: the sum of the
rewards ``simulate`` reports, which in the default set-up holds the teacher-panel log-likelihood,
the length terms and the judge's verdict, never the task verifier.
"""

from __future__ import annotations

import re

import numpy as np

from agents.base import PRIMARY_LOGPROB, PRIOR, TEACHER_LOGPROB, Agent, PlanningAgent, features, masked_argmax
from tokentree_env.errors import ConfigError


class RandomAgent(Agent):
    """A uniformly random valid child."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, env, obs, info) -> int:
        return int(self.rng.choice(np.flatnonzero(obs["action_mask"])))


class GreedyPrimary(Agent):
    """The child the primary finds most likely: the primary's own greedy decoding."""

    name = "greedy-primary"

    def act(self, env, obs, info) -> int:
        return masked_argmax(obs, PRIMARY_LOGPROB)


class GreedyPrior(Agent):
    """The child with the highest prior (normalised weightage × similarity)."""

    name = "greedy-prior"

    def act(self, env, obs, info) -> int:
        return masked_argmax(obs, PRIOR)


class EnsembleGreedy(Agent):
    """The child with the highest mean teacher log-prob (greedy decoding of the teacher ensemble)."""

    name = "ensemble-greedy"

    def act(self, env, obs, info) -> int:
        return masked_argmax(obs, TEACHER_LOGPROB)


def rollout(env, state, obs, choose, max_steps: int = 256) -> tuple[list[int], float]:
    """Follow ``choose(obs) -> action`` through ``simulate`` to the end: ``(tokens, planner return)``."""
    tokens, total = [], 0.0
    for _ in range(max_steps):
        action = choose(obs)
        tokens.append(int(obs["candidates"][action]))
        state, obs, reward, terminated, truncated, _ = env.simulate(state, action)
        total += reward
        if terminated or truncated:
            break
    return tokens, total


class BestOfN(PlanningAgent):
    """Sample ``n`` answers from the teacher panel (child ∝ exp(mean teacher log-prob / T)); play
    the one with the highest planner return."""

    def __init__(self, n: int = 4, temperature: float = 1.0, seed: int = 0) -> None:
        if n < 1:
            raise ConfigError(f"BestOfN.n must be >= 1, got {n}")
        self.n, self.temperature, self.rng = n, temperature, np.random.default_rng(seed)
        self.name = f"best-of-{n}"

    def _sample(self, obs) -> int:
        mask = obs["action_mask"] == 1
        logits = np.where(mask, features(obs)[:, TEACHER_LOGPROB] / self.temperature, -np.inf)
        p = np.exp(logits - logits.max())
        return int(self.rng.choice(len(p), p=p / p.sum()))

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        root = u.get_state()
        samples = [rollout(u, root, obs, self._sample) for _ in range(self.n)]
        return max(samples, key=lambda s: s[1])[0]


class BeamSearch(PlanningAgent):
    """Beam search of width ``width`` on the planner return (mean teacher log-prob per step and the
    env's other non-verifier terms); each beam extends its ``width`` best children by teacher log-prob."""

    def __init__(self, width: int = 3, max_steps: int = 64) -> None:
        if width < 1:
            raise ConfigError(f"BeamSearch.width must be >= 1, got {width}")
        self.width, self.max_steps = width, max_steps
        self.name = f"beam-{width}"

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        beams = [(0.0, [], u.get_state(), obs)]  # (return so far, tokens, state, obs)
        finished: list[tuple[float, list[int]]] = []
        for _ in range(self.max_steps):
            grown = []
            for score, tokens, state, o in beams:
                valid = np.flatnonzero(o["action_mask"])
                best = valid[np.argsort(-features(o)[valid, TEACHER_LOGPROB], kind="stable")[: self.width]]
                for action in best:
                    nxt, o2, reward, terminated, truncated, _ = u.simulate(state, int(action))
                    item = (score + reward, [*tokens, int(o["candidates"][action])], nxt, o2)
                    (finished.append(item[:2]) if terminated or truncated else grown.append(item))
            beams = sorted(grown, key=lambda b: -b[0])[: self.width]
            if not beams or (finished and len(finished) >= self.width
                             and max(f[0] for f in finished) >= beams[0][0]):
                break
        pool = finished or [(b[0], b[1]) for b in beams]
        return max(pool, key=lambda f: f[0])[1]


class BestReference(PlanningAgent):
    """The teachers' greedy reference answers (already in the tree), ranked by planner return."""

    name = "best-reference"

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        root = u.get_state()
        paths = list(u.trees[root.prompt].reference_paths.values())
        if not paths:
            raise ConfigError("BestReference needs reference answers: create the env with references=True")
        scored = []
        for path in paths:
            state, o, total = root, obs, 0.0
            for token in path:
                hits = np.flatnonzero((o["candidates"] == token) & (o["action_mask"] == 1))
                if not hits.size:
                    break
                state, o, reward, terminated, truncated, _ = u.simulate(state, int(hits[0]))
                total += reward
                if terminated or truncated:
                    break
            scored.append((total, path))
        return max(scored, key=lambda s: s[0])[1]


def final_number(text: str) -> str:
    """The final answer of a completion, as the verifier reads it (its last number, when it has one)."""
    from tokentree_env.tasks import extract_final_answer

    answer = extract_final_answer(text)
    numbers = re.findall(r"[-+]?\d+(?:\.\d+)?", answer)
    return numbers[-1] if numbers else answer


def majority_answer(texts: list[str]) -> int:
    """Index of the text whose final answer most texts share; a tie goes to the lowest index among the tied
    answers (the lowest-numbered teacher). Texts with no answer vote for nothing unless all are empty."""
    finals = [final_number(t) for t in texts]
    counts: dict[str, int] = {}
    for f in finals:
        if f:
            counts[f] = counts.get(f, 0) + 1
    if not counts:
        return 0
    top = max(counts.values())
    return next(i for i, f in enumerate(finals) if f and counts[f] == top)


class MajorityVote(PlanningAgent):
    """The teachers' greedy reference answers, voted on by their final numbers; the winning answer is played
    (ties broken toward the lowest-numbered teacher). The judge and the verifier take no part."""

    name = "majority-vote"

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        paths = list(u.trees[u.get_state().prompt].reference_paths.values())
        if not paths:
            raise ConfigError("MajorityVote needs reference answers: create the env with references=True")
        return paths[majority_answer([u.expander.decode(p) for p in paths])]


class MaskablePPOAgent(Agent):
    """A trained sb3-contrib ``MaskablePPO`` model behind the agent interface."""

    name = "maskable-ppo"

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model, self.deterministic = model, deterministic

    def act(self, env, obs, info) -> int:
        action, _ = self.model.predict(obs, action_masks=env.unwrapped.action_masks(),
                                       deterministic=self.deterministic)
        return int(action)
