"""Planning baselines: agents that plan a whole answer through ``simulate`` before playing it.

A planner is written as a **step generator** (:meth:`PlanningAgent.plan_steps`): it yields the transitions it
wants simulated next, as a list of ``(state, action)``, receives their results, and returns the answer's tokens.
So the same planner runs alone (:func:`run_plan`: one batched ``prefetch`` per round of its own requests) or beside
other episodes' planners in lockstep (:func:`agents.play.play_many`: one ``prefetch`` per round for all of them),
with the same answers.

- :class:`BestOfN`: ``n`` answers sampled from the teacher panel, the best by ``rank`` played.
- :class:`MajorityOfN`: ``n`` answers sampled from the panel, the one whose final answer most samples share
  (self-consistency, Wang et al. 2023).
- :class:`BeamSearch`: beam search of width ``width`` on the planner return.
- :class:`BestReference`: the teachers' greedy reference answers, the best by ``rank``.
- :class:`MajorityVote`: the reference answers voted on by their final numbers.

Complete answers are ranked (``rank=``) by the **judge**'s verdict (the default; the planner return breaks ties,
and stands in when the judge is off), by the **planner return** (the sum of the rewards ``simulate`` reports: the
panel's log-likelihood, the length terms and the judge's verdict), or by the **verifier** (only where the env shows
it to planners: self-play with ``planner_verifier``).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from agents.base import PANEL_LOGPROB, PlanningAgent, Steps, features, run_plan
from tokentree_env.errors import ConfigError
from tokentree_env.tasks import majority_index

RANKS = ("judge", "return", "verifier")
class _Path:
    """One answer being followed through ``simulate``: its state, observation, tokens, return and final terms."""

    __slots__ = ("done", "obs", "state", "terms", "tokens", "total")

    def __init__(self, state, obs) -> None:
        self.state, self.obs, self.tokens, self.total, self.terms, self.done = state, obs, [], 0.0, {}, False

    def take(self, action: int, result: tuple) -> None:
        self.tokens.append(int(self.obs["candidates"][action]))
        self.state, self.obs, reward, terminated, truncated, info = result
        self.total += reward
        if terminated or truncated:
            self.terms, self.done = info["reward_terms"], True


def follow(paths: list[_Path], choose, max_steps: int = 256) -> Steps:
    """Step generator that advances every path by ``choose(path) -> action`` (``None``: stop that path) until each
    has ended; all paths' next transitions are requested together."""
    for _ in range(max_steps):
        live = [(p, choose(p)) for p in paths if not p.done]
        live = [(p, a) for p, a in live if a is not None]
        if not live:
            break
        results = yield [(p.state, a) for p, a in live]
        for (p, a), result in zip(live, results, strict=True):
            p.take(a, result)
    return []


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


def _refuse_hidden_verifier(env, name: str) -> None:
    if not getattr(env, "planner_verifier", False):
        from tokentree_env.errors import VerifierLeakError

        raise VerifierLeakError(f"{name} ranks answers by the verifier, which this env hides from planners: play it "
                                "in self-play with planner_verifier=True (never in evaluation)")


class _Sampler(PlanningAgent):
    """``n`` answers sampled from the teacher panel: a child ∝ exp(panel log-prob / T), renormalised over the slate."""

    def __init__(self, n: int, temperature: float, seed: int) -> None:
        if n < 1:
            raise ConfigError(f"{type(self).__name__}.n must be >= 1, got {n}")
        self.n, self.temperature, self.rng = n, temperature, np.random.default_rng(seed)

    def reseed(self, seed) -> None:
        """Restart the sampling stream (per episode, as a search is seeded)."""
        self.rng = np.random.default_rng(seed)

    def _sample(self, obs) -> int:
        mask = obs["action_mask"] == 1
        logits = np.where(mask, features(obs)[:, PANEL_LOGPROB] / self.temperature, -np.inf)
        p = np.exp(logits - logits.max())
        return int(self.rng.choice(len(p), p=p / p.sum()))

    def _samples(self, state, obs) -> Generator:
        paths = [_Path(state, obs) for _ in range(self.n)]
        yield from follow(paths, lambda path: self._sample(path.obs))
        return paths


class BestOfN(_Sampler):
    """Sample ``n`` answers from the teacher panel; play the best by ``rank`` (the judge by default)."""

    def __init__(self, n: int = 4, temperature: float = 1.0, seed: int = 0, rank: str = "judge") -> None:
        super().__init__(n, temperature, seed)
        self.rank = _check_rank(rank)
        self.name = f"best-of-{n}" + ("" if rank == "judge" else f"-by-{rank}")

    def plan_steps(self, env, state, obs) -> Steps:
        if self.rank == "verifier":
            _refuse_hidden_verifier(env, self.name)
        paths = yield from self._samples(state, obs)
        return max(paths, key=lambda p: rank_key(self.rank, p.total, p.terms)).tokens


class MajorityOfN(_Sampler):
    """Sample ``n`` answers from the teacher panel; play the one whose final answer most samples share
    (self-consistency; ties go to the earliest sample). Neither the judge nor the verifier takes part."""

    def __init__(self, n: int = 4, temperature: float = 1.0, seed: int = 0) -> None:
        super().__init__(n, temperature, seed)
        self.name = f"majority-of-{n}"

    def plan_steps(self, env, state, obs) -> Steps:
        paths = yield from self._samples(state, obs)
        return paths[majority_index([env.decode(p.tokens) for p in paths])].tokens


class BeamSearch(PlanningAgent):
    """Beam search of width ``width`` on the planner return (the panel log-prob per step and the env's other
    non-verifier terms); each beam extends its ``width`` best children by panel log-prob."""

    def __init__(self, width: int = 3, max_steps: int = 64) -> None:
        if width < 1:
            raise ConfigError(f"BeamSearch.width must be >= 1, got {width}")
        self.width, self.max_steps = width, max_steps
        self.name = f"beam-{width}"

    def plan_steps(self, env, state, obs) -> Steps:
        beams = [(0.0, [], state, obs)]  # (return so far, tokens, state, obs)
        finished: list[tuple[float, list[int]]] = []
        for _ in range(self.max_steps):
            requests, grown = [], []
            for score, tokens, at, o in beams:
                valid = np.flatnonzero(o["action_mask"])
                for action in valid[np.argsort(-features(o)[valid, PANEL_LOGPROB], kind="stable")[: self.width]]:
                    requests.append((score, tokens, at, o, int(action)))
            results = yield [(at, action) for _, _, at, _, action in requests]
            for (score, tokens, _, o, action), (nxt, o2, reward, terminated, truncated, _) in zip(
                    requests, results, strict=True):
                item = (score + reward, [*tokens, int(o["candidates"][action])], nxt, o2)
                (finished.append(item[:2]) if terminated or truncated else grown.append(item))
            beams = sorted(grown, key=lambda b: -b[0])[: self.width]
            if not beams or (finished and len(finished) >= self.width and max(f[0] for f in finished) >= beams[0][0]):
                break
        pool = finished or [(b[0], b[1]) for b in beams]
        return max(pool, key=lambda f: f[0])[1]


def _reference_paths(env, state, name: str) -> list[list[int]]:
    paths = env.reference_answers(state.prompt)
    if not paths:
        raise ConfigError(f"{name} needs reference answers: create the env with references=True")
    return paths


class BestReference(PlanningAgent):
    """The teachers' greedy reference answers (already in the tree), the best by ``rank`` (the judge by default)."""

    def __init__(self, rank: str = "judge") -> None:
        self.rank = _check_rank(rank)
        self.name = "best-reference" + ("" if rank == "judge" else f"-by-{rank}")

    def plan_steps(self, env, state, obs) -> Steps:
        references = _reference_paths(env, state, self.name)
        paths = [_Path(state, obs) for _ in references]
        reference_of = {id(p): ref for p, ref in zip(paths, references, strict=True)}

        def next_token(path: _Path) -> int | None:  # the reference's next token, or stop where it left the slate
            ref = reference_of[id(path)]
            if len(path.tokens) >= len(ref):
                return None
            hits = np.flatnonzero((path.obs["candidates"] == ref[len(path.tokens)]) & (path.obs["action_mask"] == 1))
            return int(hits[0]) if hits.size else None

        yield from follow(paths, next_token)
        scored = [(rank_key(self.rank, p.total, p.terms), ref) for p, ref in zip(paths, references, strict=True)]
        return max(scored, key=lambda s: s[0])[1]


class MajorityVote(PlanningAgent):
    """The teachers' greedy reference answers, voted on by their final numbers; the winning answer is played
    (ties broken toward the lowest-numbered teacher). The judge and the verifier take no part."""

    name = "majority-vote"

    def plan_steps(self, env, state, obs) -> Steps:
        paths = _reference_paths(env, state, self.name)
        yield from ()
        return paths[majority_index([env.decode(p) for p in paths])]


__all__ = ["RANKS", "BeamSearch", "BestOfN", "BestReference", "MajorityOfN", "MajorityVote", "PlanningAgent",
           "rank_key", "run_plan"]
