"""Baseline agents for TokenTree-v0, all through the env's public API.

Fixed-cost agents (one expansion per generated token): :class:`RandomAgent`, :class:`GreedyPrimary` (the
primary's own greedy decoding), :class:`GreedyPrior` (weightage × similarity), :class:`EnsembleGreedy` (the teacher
panel's log-prob); :class:`MaskablePPOAgent` for a trained sb3-contrib model. The planners (best-of-N,
majority-of-N, beam, best reference, majority vote) live in :mod:`agents.planners` and are importable here too.
"""

from __future__ import annotations

import numpy as np

from agents.base import PANEL_LOGPROB, PRIMARY_LOGPROB, PRIOR, Agent, masked_argmax
from agents.planners import RANKS, BeamSearch, BestOfN, BestReference, MajorityOfN, MajorityVote, rank_key


class RandomAgent(Agent):
    """A uniformly random valid child."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed) -> None:
        """Restart the random stream (per episode, as searches are seeded)."""
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


class MaskablePPOAgent(Agent):
    """A trained sb3-contrib ``MaskablePPO`` model behind the agent interface."""

    name = "maskable-ppo"

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model, self.deterministic = model, deterministic

    def act(self, env, obs, info) -> int:
        action, _ = self.model.predict(obs, action_masks=env.unwrapped.action_masks(),
                                       deterministic=self.deterministic)
        return int(action)


__all__ = ["RANKS", "BeamSearch", "BestOfN", "BestReference", "EnsembleGreedy", "GreedyPrimary", "GreedyPrior",
           "MajorityOfN", "MajorityVote", "MaskablePPOAgent", "RandomAgent", "rank_key"]
