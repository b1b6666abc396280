"""Gumbel MuZero (Danihelka et al. 2022, "Policy improvement by planning with Gumbel").

- At the root: ``m`` actions are considered, taken by Gumbel-top-m of ``g + logits`` (Gumbel noise ``g``
  scaled by ``gumbel_scale``; 0 for deterministic decoding), and **sequential halving** spreads the
  simulation budget over them for any number of simulations: round by round, each remaining action gets
  an equal share of visits and the better half (by ``g + logits + σ(q̂)``) goes on.
- **Completed Q-values**: a visited child's Q, an unvisited one's the **mixed value** (Appendix D), which
  interpolates the node's own value estimate and the prior-weighted Q of the visited children; rescaled
  to [0, 1] over the node's children and scaled by ``σ = (c_visit + max_b N(b)) · c_scale``.
- At interior nodes, a deterministic selection whose visit frequencies follow the improved policy:
  ``argmax softmax(logits + σ(q̂)) - N(a) / (1 + Σ N)`` (Section 5).
- The **improved policy** ``softmax(logits + σ(q̂))`` is the training target; the action played is the
  most-visited considered action with the best ``g + logits + σ(q̂)``.
"""

from __future__ import annotations

import math

import numpy as np

from agents.search.tree import SearchTree

C_VISIT = 50.0
C_SCALE = 0.1
LOW_LOGIT = -1e9


def considered_visits(m: int, num_simulations: int) -> tuple[int, ...]:
    """The sequential-halving schedule: for each simulation index, the visit count an action must have to be
    the one visited next (the considered actions are visited in turns, round by round)."""
    if m <= 1:
        return tuple(range(num_simulations))
    rounds = math.ceil(math.log2(m))
    schedule, visits, remaining = [], [0] * m, m
    while len(schedule) < num_simulations:
        per_action = max(1, num_simulations // (rounds * remaining))
        for _ in range(per_action):
            schedule += visits[:remaining]
            for i in range(remaining):
                visits[i] += 1
        remaining = max(2, remaining // 2)
    return tuple(schedule[:num_simulations])


def _softmax(logits: np.ndarray) -> np.ndarray:
    finite = np.isfinite(logits)
    if not finite.any():
        return np.full_like(logits, 1.0 / len(logits))
    shifted = np.where(finite, logits - logits[finite].max(), -np.inf)
    e = np.exp(shifted)
    return e / e.sum()


def mixed_value(tree: SearchTree, node: int) -> float:
    """Appendix D: ``(v̂ + Σ_b N(b) · Σ_visited π(a) q(a) / Σ_visited π(a)) / (Σ_b N(b) + 1)``."""
    visits = tree.children_visits[node]
    total = visits.sum()
    prior = np.maximum(_softmax(tree.prior_logits(node)), np.finfo(np.float64).tiny)
    seen = visits > 0
    weighted = (prior[seen] * tree.children_values[node][seen]).sum() / prior[seen].sum() if seen.any() else 0.0
    return float((tree.raw_values[node] + total * weighted) / (total + 1))


def completed_q(tree: SearchTree, node: int, *, c_visit: float = C_VISIT, c_scale: float = C_SCALE,
                epsilon: float = 1e-8) -> np.ndarray:
    """``σ(q̂)``: the completed Q-values rescaled to [0, 1] over the node's actions, times
    ``(c_visit + max N) · c_scale``, ``(A,)``."""
    visits = tree.children_visits[node]
    q = np.where(visits > 0, tree.children_values[node], mixed_value(tree, node))
    q = (q - q.min()) / max(q.max() - q.min(), epsilon)
    return (c_visit + visits.max()) * c_scale * q


def improved_policy(tree: SearchTree, node: int) -> np.ndarray:
    """``softmax(logits + σ(q̂))`` over the node's valid children: Gumbel MuZero's policy target, ``(A,)``."""
    return _softmax(tree.prior_logits(node) + completed_q(tree, node))


def _considered_scores(tree: SearchTree, node: int, gumbel: np.ndarray, considered_visit: int) -> np.ndarray:
    logits = tree.prior_logits(node)
    logits = logits - logits[np.isfinite(logits)].max() if np.isfinite(logits).any() else logits
    score = np.maximum(LOW_LOGIT, gumbel + logits + completed_q(tree, node))
    eligible = (tree.children_visits[node] == considered_visit) & tree.children_mask[node]
    return np.where(eligible, score, -np.inf)


def root_action(tree: SearchTree, node: int, gumbel: np.ndarray, *, num_simulations: int, m: int) -> int:
    """Sequential halving at the root: among the actions with the visit count the schedule asks for next,
    the best ``g + logits + σ(q̂)`` (the Gumbel-top-m come first, since they score highest)."""
    considered = min(m, int(tree.children_mask[node].sum()))
    schedule = considered_visits(considered, num_simulations)
    index = int(tree.children_visits[node].sum())
    visit = schedule[min(index, len(schedule) - 1)]
    return int(np.argmax(_considered_scores(tree, node, gumbel, visit)))


def interior_action(tree: SearchTree, node: int) -> int:
    """The deterministic interior selection: visit frequencies approach the improved policy."""
    visits = tree.children_visits[node]
    score = improved_policy(tree, node) - visits / (1 + visits.sum())
    return int(np.argmax(np.where(tree.children_mask[node], score, -np.inf)))


def final_action(tree: SearchTree, node: int, gumbel: np.ndarray) -> int:
    """The action to play: the most-visited considered action with the best ``g + logits + σ(q̂)``."""
    return int(np.argmax(_considered_scores(tree, node, gumbel, int(tree.children_visits[node].max()))))
