"""PUCT action selection (Silver et al. 2017; Schrittwieser et al. 2020), its Q transforms, and backup.

    a* = argmax_a  Q̂(s, a) + c(s) · P(s, a) · sqrt(N(s)) / (1 + N(s, a))

``c(s)`` is the constant ``c_puct``, or MuZero's visit-dependent schedule
``c_puct + log((N(s) + c_base + 1) / c_base)`` (Schrittwieser et al. 2020, Appendix B) when ``c_base`` is
given. ``Q̂`` is a Q transform into [0, 1]:

- :func:`q_minmax` (the default): min-max over every value seen in this search (MuZero), an unvisited child
  valued at its parent's mean (first-play urgency);
- :func:`q_parent_and_siblings`: min-max over the parent's value and its children's Q (mctx's default for
  MuZero), an unvisited child at the minimum.
"""

from __future__ import annotations

import math

import numpy as np

from agents.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchTree

Q_TRANSFORMS = ("minmax", "parent_and_siblings")


def q_minmax(tree: SearchTree, node: int, bounds: tuple[float, float]) -> np.ndarray:
    """Children's Q min-max normalised by the search-wide ``bounds``; unvisited at the parent's mean."""
    lo, hi = bounds
    visits = tree.children_visits[node]
    q = np.where(visits > 0, tree.children_values[node], tree.node_values[node])
    return (q - lo) / (hi - lo) if hi > lo else np.zeros_like(q)


def q_parent_and_siblings(tree: SearchTree, node: int, bounds=None, epsilon: float = 1e-8) -> np.ndarray:
    """Children's Q min-max normalised over the parent's value and its visited children's Q; unvisited at 0."""
    visits = tree.children_visits[node]
    q = tree.children_values[node]
    value = tree.node_values[node]
    seen = np.where(visits > 0, q, value)
    lo, hi = min(value, seen.min()), max(value, seen.max())
    return (np.where(visits > 0, q, lo) - lo) / max(hi - lo, epsilon)


def puct_scores(tree: SearchTree, node: int, c_puct: float, bounds: tuple[float, float], *,
                c_base: float | None = None, q_transform: str = "minmax") -> np.ndarray:
    """PUCT score of each child of ``node``; masked children get ``-inf``."""
    parent_visits = tree.node_visits[node]
    c = c_puct if c_base is None else c_puct + math.log((parent_visits + c_base + 1.0) / c_base)
    q = q_minmax(tree, node, bounds) if q_transform == "minmax" else q_parent_and_siblings(tree, node)
    u = c * tree.children_prior[node] * math.sqrt(max(1, parent_visits)) / (1 + tree.children_visits[node])
    return np.where(tree.children_mask[node], q + u, -np.inf)


def select(tree: SearchTree, choose, start: int = ROOT_INDEX) -> tuple[int, int]:
    """Walk down from ``start``, choosing by ``choose(tree, node) -> action``, to a child not yet expanded:
    ``(parent, action)``. Returns ``(node, -1)`` when the walk ends on a terminal node."""
    node = start
    while True:
        if tree.terminal[node]:
            return node, -1
        action = int(choose(tree, node))
        child = tree.children_index[node, action]
        if child == UNVISITED:
            return node, action
        node = int(child)


def backward(tree: SearchTree, node: int, value: float) -> None:
    """Back the leaf value up to the root, adding each transition's reward on the way (discount 1)."""
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
