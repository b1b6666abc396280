"""Baseline agents for TokenTree-v0, all through the env's public API.

Fixed-cost agents (one expansion per generated token): :class:`RandomAgent`,
:class:`GreedyPrimary` (the primary's own greedy decoding), :class:`GreedyPrior` (weightage ×
similarity), :class:`EnsembleGreedy` (the teacher panel's log-prob), :class:`BestReference` (the best
of the teachers' reference answers), :class:`MajorityVote` (the reference answer most teachers
agree on). Budgeted planners: :class:`BeamSearch` and :class:`BestOfN`.

Complete answers are ranked (``rank=``) by the **judge**'s verdict (the default; the planner return breaks
ties, and stands in when the judge is off), by the **planner return** (the sum of the rewards
``simulate`` reports: the teacher-panel log-likelihood, the length terms and the judge's verdict), or by
the **verifier** (only where the env shows it to planners: self-play with ``planner_verifier``).
"""

from __future__ import annotations

import numpy as np

from agents.base import PANEL_LOGPROB, PRIMARY_LOGPROB, PRIOR, Agent, PlanningAgent, features, masked_argmax
from tokentree_env.errors import ConfigError
from tokentree_env.tasks import majority_index


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
    """The child with the highest panel log-prob: greedy decoding of the teacher ensemble, under the env's panel rule
    (by default the mixture that follows the writer, :mod:`tokentree_env.scoring.panel`)."""

    name = "ensemble-greedy"

    def act(self, env, obs, info) -> int:
        return masked_argmax(obs, PANEL_LOGPROB)


RANKS = ("judge", "return", "verifier")


def rollout(env, state, obs, choose, max_steps: int = 256) -> tuple[list[int], float, dict]:
    """Follow ``choose(obs) -> action`` through ``simulate`` to the end: ``(tokens, planner return, final
    reward terms)``."""
    tokens, total, terms = [], 0.0, {}
    for _ in range(max_steps):
        action = choose(obs)
        tokens.append(int(obs["candidates"][action]))
        state, obs, reward, terminated, truncated, info = env.simulate(state, action)
        total += reward
        if terminated or truncated:
            terms = info["reward_terms"]
            break
    return tokens, total, terms


def rank_key(rank: str, total: float, terms: dict) -> tuple[float, float]:
    """Sort key of a complete answer: the judge's term (or the verifier's), the planner return breaking ties.
    A term the env does not report (judge off, verifier withheld) counts as 0, so the return decides."""
    if rank == "return":
        return (total, 0.0)
    return (terms.get("judge" if rank == "judge" else "task", 0.0), total)


def _check_rank(rank: str) -> str:
    if rank not in RANKS:
        raise ConfigError(f"rank must be one of {RANKS}, got {rank!r}")
    return rank


class BestOfN(PlanningAgent):
    """Sample ``n`` answers from the teacher panel (child ∝ exp(panel log-prob / T), renormalised over the slate);
    play the best by ``rank`` (the judge by default)."""

    def __init__(self, n: int = 4, temperature: float = 1.0, seed: int = 0, rank: str = "judge") -> None:
        if n < 1:
            raise ConfigError(f"BestOfN.n must be >= 1, got {n}")
        self.n, self.temperature, self.rng = n, temperature, np.random.default_rng(seed)
        self.rank = _check_rank(rank)
        self.name = f"best-of-{n}" + ("" if rank == "judge" else f"-by-{rank}")

    def _sample(self, obs) -> int:
        mask = obs["action_mask"] == 1
        logits = np.where(mask, features(obs)[:, PANEL_LOGPROB] / self.temperature, -np.inf)
        p = np.exp(logits - logits.max())
        return int(self.rng.choice(len(p), p=p / p.sum()))

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        if self.rank == "verifier" and not getattr(u, "planner_verifier", False):
            from tokentree_env.errors import VerifierLeakError

            raise VerifierLeakError(f"{self.name} ranks answers by the verifier, which this env hides from planners: "
                                    "play it in self-play with planner_verifier=True (never in evaluation)")
        root = u.get_state()
        samples = [rollout(u, root, obs, self._sample) for _ in range(self.n)]
        return max(samples, key=lambda s: rank_key(self.rank, s[1], s[2]))[0]


class BeamSearch(PlanningAgent):
    """Beam search of width ``width`` on the planner return (the panel log-prob per step and the env's other
    non-verifier terms); each beam extends its ``width`` best children by panel log-prob."""

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
                best = valid[np.argsort(-features(o)[valid, PANEL_LOGPROB], kind="stable")[: self.width]]
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
    """The teachers' greedy reference answers (already in the tree), the best by ``rank`` (the judge by default)."""

    def __init__(self, rank: str = "judge") -> None:
        self.rank = _check_rank(rank)
        self.name = "best-reference" + ("" if rank == "judge" else f"-by-{rank}")

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        root = u.get_state()
        paths = list(u.trees[root.prompt].reference_paths.values())
        if not paths:
            raise ConfigError("BestReference needs reference answers: create the env with references=True")
        scored = []
        for path in paths:
            state, o, total, terms = root, obs, 0.0, {}
            for token in path:
                hits = np.flatnonzero((o["candidates"] == token) & (o["action_mask"] == 1))
                if not hits.size:
                    break
                state, o, reward, terminated, truncated, info = u.simulate(state, int(hits[0]))
                total += reward
                if terminated or truncated:
                    terms = info["reward_terms"]
                    break
            scored.append((rank_key(self.rank, total, terms), path))
        return max(scored, key=lambda s: s[0])[1]


class MajorityVote(PlanningAgent):
    """The teachers' greedy reference answers, voted on by their final numbers; the winning answer is played
    (ties broken toward the lowest-numbered teacher). The judge and the verifier take no part."""

    name = "majority-vote"

    def plan(self, env, obs) -> list[int]:
        u = env.unwrapped
        paths = list(u.trees[u.get_state().prompt].reference_paths.values())
        if not paths:
            raise ConfigError("MajorityVote needs reference answers: create the env with references=True")
        return paths[majority_index([u.expander.decode(p) for p in paths])]


class MaskablePPOAgent(Agent):
    """A trained sb3-contrib ``MaskablePPO`` model behind the agent interface."""

    name = "maskable-ppo"

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model, self.deterministic = model, deterministic

    def act(self, env, obs, info) -> int:
        action, _ = self.model.predict(obs, action_masks=env.unwrapped.action_masks(),
                                       deterministic=self.deterministic)
        return int(action)
