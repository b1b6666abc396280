"""AlphaZero-style MCTS over TokenTree-v0, using only the env's public planner API.

``search`` = repeat(``simulate`` (select down by PUCT) -> ``expand`` (one ``env.simulate``)
-> leaf value -> ``backward``), then act on the root's visit counts.

PUCT (Silver et al. 2017, "Mastering the game of Go without human knowledge"; Schrittwieser et al.
2020 for the min-max Q normalisation)::

    a* = argmax_a  Q_norm(s, a) + c · P(s, a) · sqrt(N(s)) / (1 + N(s, a))

with ``P`` the env's prior (normalised weightage × similarity, ``obs["features"]``). Dirichlet
noise ``(1 - ε) P + ε Dir(α)`` is mixed into the root prior in self-play. Leaf values come from a
rollout to a terminal state with a fast default policy, scored by the env's reward (in evaluation
mode the env withholds the verifier from ``simulate``), or from a value function.

The Gumbel variant (Danihelka et al. 2022, "Policy improvement by planning with Gumbel") samples
``m`` root actions by Gumbel-top-k on the prior logits and halves them by
``g + logit + σ(Q)`` over ``log2 m`` rounds (sequential halving).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agents.base import Agent
from agents.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchTree
from tokentree_env.env.observation import FEATURES
from tokentree_env.errors import ConfigError

PRIOR = FEATURES.index("prior")
PRIMARY_LOGPROB = FEATURES.index("primary_logprob")
PRIORS = ("env", "uniform", "primary")
GUMBEL_C_VISIT = 50.0
GUMBEL_C_SCALE = 0.1
TEACHER_LOGPROB = FEATURES.index("teacher_logprob")


@dataclass(frozen=True)
class MCTSConfig:
    """Hyperparameters of the search."""

    num_simulations: int = 16
    """Simulations (expansions) per real step."""
    c_puct: float = 1.25
    """Exploration constant ``c`` of PUCT."""
    dirichlet_alpha: float = 0.3
    """Concentration of the root Dirichlet noise."""
    dirichlet_fraction: float = 0.0
    """ε: weight of the root noise (0 in evaluation; 0.25 is AlphaZero's self-play value)."""
    temperature: float = 0.0
    """Temperature of the action choice from visit counts (0 = most visited)."""
    rollout_depth: int = 48
    """Most steps of a leaf rollout (the env's own length limit ends it earlier)."""
    rollout: str = "teacher"
    """Default rollout policy: "teacher" (highest mean teacher log-prob) or "prior"."""
    gumbel: bool = False
    """Use Gumbel root sampling with sequential halving instead of PUCT at the root."""
    gumbel_actions: int = 4
    """m: root actions considered by the Gumbel variant."""
    teacher_mix: float = 0.5
    """λ: prior = (1 - λ) · env prior (weightage × similarity) + λ · the teacher panel's
    probabilities of the children (softmax of their mean log-probs). 0 is the design's prior alone;
    on a fresh tree its weightage is uniform and similarity barely tells digits apart, so with fewer
    simulations than children the right child is often never tried (measured on 10 held-out chain3
    prompts, 8 simulations: accuracy 0.00 at λ=0, 1.00 at λ=0.5; see benchmarks/README.md)."""
    prior: str = "env"
    """Where the search prior comes from: "env" (the env's weightage × similarity, mixed with the
    panel by ``teacher_mix``), "uniform" (over the valid children) or "primary" (the primary's own
    probabilities of the children). The last two exist for ablations."""
    update_weightage: bool = False
    """Also apply the weightage rule along each simulated rollout (self-play only; the env ignores
    it in evaluation mode). Off by default: the env applies it to the episode actually played."""

    def __post_init__(self) -> None:
        if self.num_simulations < 1:
            raise ConfigError(f"MCTSConfig.num_simulations must be >= 1, got {self.num_simulations}")
        if self.c_puct <= 0:
            raise ConfigError(f"MCTSConfig.c_puct must be > 0, got {self.c_puct}")
        if not 0.0 <= self.dirichlet_fraction <= 1.0:
            raise ConfigError(f"MCTSConfig.dirichlet_fraction must be in [0, 1], got {self.dirichlet_fraction}")
        if not 0.0 <= self.teacher_mix <= 1.0:
            raise ConfigError(f"MCTSConfig.teacher_mix must be in [0, 1], got {self.teacher_mix}")
        if self.prior not in PRIORS:
            raise ConfigError(f"MCTSConfig.prior must be one of {PRIORS}, got {self.prior!r}")
        if self.rollout not in ("teacher", "prior"):
            raise ConfigError(f"MCTSConfig.rollout must be 'teacher' or 'prior', got {self.rollout!r}")


def _features(obs) -> np.ndarray:
    return obs["features"].reshape(len(obs["action_mask"]), len(FEATURES))


def puct_scores(tree: SearchTree, node: int, c_puct: float, bounds: tuple[float, float]) -> np.ndarray:
    """PUCT score of each child of ``node``; masked children get ``-inf``.

    ``Q`` is min-max normalised over the values seen in the search (Schrittwieser et al. 2020), so
    selection does not depend on the reward's scale.
    """
    lo, hi = bounds
    visits = tree.children_visits[node]
    # first-play urgency: an unvisited child is valued at its parent's mean (not the minimum, which
    # would lock the search onto whichever child it happened to try first)
    q = np.where(visits > 0, tree.children_values[node], tree.node_values[node])
    q = (q - lo) / (hi - lo) if hi > lo else np.zeros_like(q)
    u = c_puct * tree.children_prior[node] * math.sqrt(max(1, tree.node_visits[node])) / (1 + visits)
    return np.where(tree.children_mask[node], q + u, -np.inf)


def select(tree: SearchTree, c_puct: float, bounds, start: int = ROOT_INDEX) -> tuple[int, int]:
    """Walk down by PUCT from ``start`` to a child not yet expanded: ``(parent, action)``.

    Returns ``(node, -1)`` when the walk ends on a terminal node.
    """
    node = start
    while True:
        if tree.terminal[node]:
            return node, -1
        action = int(np.argmax(puct_scores(tree, node, c_puct, bounds)))
        child = tree.children_index[node, action]
        if child == UNVISITED:
            return node, action
        node = int(child)


def backward(tree: SearchTree, node: int, value: float) -> None:
    """Back the leaf value up to the root, adding each transition's reward on the way."""
    tree.node_visits[node] += 1
    tree.node_values[node] += (value - tree.node_values[node]) / tree.node_visits[node]
    while tree.parents[node] != NO_PARENT:
        parent, action = int(tree.parents[node]), int(tree.action_from_parent[node])
        value = tree.children_rewards[parent, action] + value
        tree.children_visits[parent, action] += 1
        n = tree.children_visits[parent, action]
        tree.children_values[parent, action] += (value - tree.children_values[parent, action]) / n
        tree.node_visits[parent] += 1
        tree.node_values[parent] += (value - tree.node_values[parent]) / tree.node_visits[parent]
        node = parent


class MCTS:
    """MCTS planner over an env exposing ``simulate``/``get_state`` (``env.unwrapped``).

    Args:
        config: search hyperparameters.
        value_fn: optional ``(env, state, obs) -> float`` leaf value; default: a rollout.
        rng: source of Dirichlet noise, Gumbel draws and temperature sampling.
    """

    def __init__(self, config: MCTSConfig = MCTSConfig(), *,
                 value_fn: Callable | None = None, rng: np.random.Generator | None = None) -> None:
        self.config = config
        self.value_fn = value_fn
        self.rng = rng or np.random.default_rng(0)

    # -- one search ------------------------------------------------------------------------------
    def search(self, env, obs) -> SearchTree:
        """Run ``num_simulations`` simulations from the env's current state."""
        cfg = self.config
        tree = SearchTree(cfg.num_simulations + 1, len(obs["action_mask"]))
        mask = obs["action_mask"].astype(bool)
        prior = self._root_prior(self.prior(obs), mask)
        tree.add_node(env.get_state(), prior, mask)
        bounds = [math.inf, -math.inf]
        self._search_bounds = bounds
        candidates = self._gumbel_candidates(prior, mask) if cfg.gumbel else None
        self._candidates = candidates
        for sim in range(cfg.num_simulations):
            if candidates is not None:
                node, action = ROOT_INDEX, self._gumbel_action(tree, candidates, sim)
                child = tree.children_index[node, action]
                if child != UNVISITED:
                    node, action = select(tree, cfg.c_puct, self._bounds(bounds), start=int(child))
            else:
                node, action = select(tree, cfg.c_puct, self._bounds(bounds))
            if action < 0:  # reached a terminal node: its value is 0, rewards are on the edges
                backward(tree, node, 0.0)
                continue
            leaf, value = self.expand(env, tree, node, action)
            backward(tree, leaf, value)
            self._track(bounds, tree, leaf)
        return tree

    def expand(self, env, tree: SearchTree, node: int, action: int) -> tuple[int, float]:
        """Simulate ``action`` from ``node``; add the child; return it with its leaf value."""
        state, obs, reward, terminated, truncated, _ = env.simulate(tree.states[node], action)
        done = terminated or truncated
        mask = obs["action_mask"].astype(bool)
        prior = self.prior(obs)
        child = tree.add_node(state, prior, mask, parent=node, action=action, reward=reward, terminal=done)
        value = 0.0 if done else self.leaf_value(env, state, obs)
        return child, value

    def leaf_value(self, env, state, obs) -> float:
        """Value of a non-terminal leaf: ``value_fn`` if given, else a fast rollout's return."""
        if self.value_fn is not None:
            return float(self.value_fn(env, state, obs))
        column = TEACHER_LOGPROB if self.config.rollout == "teacher" else PRIOR
        total = 0.0
        for _ in range(self.config.rollout_depth):
            scores = np.where(obs["action_mask"] == 1, _features(obs)[:, column], -np.inf)
            state, obs, reward, terminated, truncated, _ = env.simulate(state, int(np.argmax(scores)))
            total += reward
            if terminated or truncated:
                if self.config.update_weightage:
                    env.update_weightage(state.path, state.episode_return, state.prompt)
                break
        return total

    def prior(self, obs) -> np.ndarray:
        """The search prior of a node's children: the env's prior, optionally mixed with the panel's."""
        mask = obs["action_mask"] == 1
        feats = _features(obs)
        if self.config.prior != "env":
            if not mask.any():
                return np.zeros(len(mask))
            if self.config.prior == "uniform":
                return mask / mask.sum()
            logits = np.where(mask, feats[:, PRIMARY_LOGPROB], -np.inf)
            probs = np.exp(logits - logits.max())
            return probs / probs.sum()
        prior = feats[:, PRIOR] * mask
        lam = self.config.teacher_mix
        if lam > 0 and mask.any():
            logits = np.where(mask, feats[:, TEACHER_LOGPROB], -np.inf)
            panel = np.exp(logits - logits.max())
            prior = (1 - lam) * prior + lam * panel / panel.sum()
        return prior

    # -- acting ----------------------------------------------------------------------------------
    def choose(self, tree: SearchTree) -> int:
        """The action to play: for Gumbel, the most visited candidate with the best ``g + logit +
        σ(q̂)``; else from the root's visit counts (Q breaks ties), at the temperature."""
        visits = tree.children_visits[ROOT_INDEX].astype(np.float64)
        if self.config.gumbel and getattr(self, "_candidates", None):
            top = visits[self._candidates].max()
            finalists = [a for a in self._candidates if visits[a] == top]
            score = self._gumbel_scores(tree, finalists)
            return int(max(finalists, key=lambda a: score[a]))
        if self.config.temperature > 0:
            p = visits ** (1.0 / self.config.temperature)
            return int(self.rng.choice(len(p), p=p / p.sum()))
        q = np.where(visits > 0, tree.children_values[ROOT_INDEX], -np.inf)
        best = np.flatnonzero(visits == visits.max())
        return int(best[np.argmax(q[best])])

    # -- helpers ---------------------------------------------------------------------------------
    def _root_prior(self, prior: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cfg = self.config
        prior = prior * mask
        if cfg.dirichlet_fraction > 0 and mask.any():
            noise = np.zeros_like(prior)
            noise[mask] = self.rng.dirichlet([cfg.dirichlet_alpha] * int(mask.sum()))
            prior = (1 - cfg.dirichlet_fraction) * prior + cfg.dirichlet_fraction * noise
        return prior

    def _gumbel_candidates(self, prior: np.ndarray, mask: np.ndarray) -> list[int] | None:
        """Gumbel-top-m root actions. The noise is scaled by the temperature: at 0 (decoding) the
        top-m by prior and the final argmax are deterministic; above 0 acting samples from the
        improved policy, as in Gumbel MuZero."""
        logits = np.where(mask, np.log(np.maximum(prior, 1e-12)), -np.inf)
        self._gumbel = self.config.temperature * self.rng.gumbel(size=prior.shape)
        m = min(self.config.gumbel_actions, int(mask.sum()))
        return list(np.argsort(-(logits + self._gumbel), kind="stable")[:m]) if m else None

    def _gumbel_scores(self, tree: SearchTree, candidates: list[int]) -> dict[int, float]:
        """``g + logit + σ(q̂)`` per candidate, with ``σ(q̂) = (c_visit + max N) · c_scale · q̂`` and
        ``q̂`` the min-max normalised Q (Danihelka et al. 2022, eq. 8; c_visit = 50, c_scale = 0.1).
        Unvisited candidates take the root's mean value."""
        visits = tree.children_visits[ROOT_INDEX]
        q = np.where(visits > 0, tree.children_values[ROOT_INDEX], tree.node_values[ROOT_INDEX])
        lo, hi = self._bounds(self._search_bounds)
        q_hat = (q - lo) / (hi - lo) if hi > lo else np.full_like(q, 0.5)
        sigma = (GUMBEL_C_VISIT + visits.max()) * GUMBEL_C_SCALE * q_hat
        prior = tree.children_prior[ROOT_INDEX]
        return {a: self._gumbel[a] + math.log(max(prior[a], 1e-12)) + sigma[a] for a in candidates}

    def _gumbel_action(self, tree: SearchTree, candidates: list[int], sim: int) -> int:
        """Sequential halving: visit the surviving candidates round-robin; after each of the
        ``log2(m)`` rounds keep the better half by ``g + logit + σ(q̂)``."""
        m = len(candidates)
        rounds = max(1, math.ceil(math.log2(m)))
        per_round = max(1, self.config.num_simulations // rounds)
        keep = max(1, m >> min(sim // per_round, rounds))
        score = self._gumbel_scores(tree, candidates)
        survivors = sorted(candidates, key=lambda a: -score[a])[:keep]
        return min(survivors, key=lambda a: tree.children_visits[ROOT_INDEX, a])

    @staticmethod
    def _bounds(bounds) -> tuple[float, float]:
        return (bounds[0], bounds[1]) if bounds[0] <= bounds[1] else (0.0, 0.0)

    @staticmethod
    def _track(bounds, tree: SearchTree, leaf: int) -> None:
        node = leaf
        while node != NO_PARENT:
            parent = int(tree.parents[node])
            if parent == NO_PARENT:
                break
            v = tree.children_values[parent, int(tree.action_from_parent[node])]
            bounds[0], bounds[1] = min(bounds[0], v), max(bounds[1], v)
            node = parent



class MCTSAgent(Agent):
    """MCTS behind the agent interface: search from each state, play the most visited child."""

    def __init__(self, config: MCTSConfig = MCTSConfig(), *, value_fn: Callable | None = None, seed: int = 0,
                 name: str | None = None) -> None:
        self.mcts = MCTS(config, value_fn=value_fn, rng=np.random.default_rng(seed))
        self.name = name or f"mcts{'-gumbel' if config.gumbel else ''}-{config.num_simulations}"
        self._last: tuple[list[float], list[float]] | None = None

    def reseed(self, seed: int | Sequence[int]) -> None:
        """Restart the search's random stream (noise, Gumbel draws, sampling). Seeding each episode
        makes it independent of the episodes played before it, so a resumed run that skips them
        plays the same episode an uninterrupted run would."""
        self.mcts.rng = np.random.default_rng(seed)

    def act(self, env, obs, info) -> int:
        tree = self.mcts.search(env.unwrapped, obs)
        mask = obs["action_mask"] == 1
        self._last = (tree.visit_distribution()[mask].tolist(), tree.children_values[ROOT_INDEX][mask].tolist())
        return self.mcts.choose(tree)

    def last_search(self):
        return self._last
