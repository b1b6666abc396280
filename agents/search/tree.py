"""The search statistics of one MCTS run, as flat arrays indexed by node id (after mctx's ``Tree``).

World state is opaque here: each node keeps the env's state handle (``EnvState``), and the
token tree (slates, weightage, KV caches) lives in the env. This object only counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROOT_INDEX = 0
NO_PARENT = -1
UNVISITED = -1


@dataclass
class SearchTree:
    """Statistics of a search over at most ``capacity`` nodes with ``width`` actions each."""

    capacity: int
    width: int
    node_visits: np.ndarray = field(init=False)  # (N,) int64
    node_values: np.ndarray = field(init=False)  # (N,) float64: mean return from the node on
    parents: np.ndarray = field(init=False)  # (N,) int64, NO_PARENT at the root
    action_from_parent: np.ndarray = field(init=False)  # (N,) int64
    children_index: np.ndarray = field(init=False)  # (N, A) int64, UNVISITED where not expanded
    children_prior: np.ndarray = field(init=False)  # (N, A) float64, 0 on masked actions
    children_mask: np.ndarray = field(init=False)  # (N, A) bool valid actions
    children_visits: np.ndarray = field(init=False)  # (N, A) int64
    children_values: np.ndarray = field(init=False)  # (N, A) float64: mean of reward + value after
    children_rewards: np.ndarray = field(init=False)  # (N, A) float64: reward of the transition
    terminal: np.ndarray = field(init=False)  # (N,) bool
    states: list = field(init=False)  # (N,) env state handles
    size: int = 0

    def __post_init__(self) -> None:
        n, a = self.capacity, self.width
        self.node_visits = np.zeros(n, dtype=np.int64)
        self.node_values = np.zeros(n)
        self.parents = np.full(n, NO_PARENT, dtype=np.int64)
        self.action_from_parent = np.full(n, -1, dtype=np.int64)
        self.children_index = np.full((n, a), UNVISITED, dtype=np.int64)
        self.children_prior = np.zeros((n, a))
        self.children_mask = np.zeros((n, a), dtype=bool)
        self.children_visits = np.zeros((n, a), dtype=np.int64)
        self.children_values = np.zeros((n, a))
        self.children_rewards = np.zeros((n, a))
        self.terminal = np.zeros(n, dtype=bool)
        self.states = [None] * n

    def add_node(self, state, prior: np.ndarray, mask: np.ndarray, *, parent: int = NO_PARENT,
                 action: int = -1, reward: float = 0.0, terminal: bool = False) -> int:
        """Append a node; link it under ``parent`` by ``action`` with the transition's reward."""
        if self.size >= self.capacity:
            raise IndexError(f"search tree is full ({self.capacity} nodes)")
        node = self.size
        self.size += 1
        self.states[node] = state
        self.children_prior[node] = prior
        self.children_mask[node] = mask
        self.terminal[node] = terminal
        if parent != NO_PARENT:
            self.parents[node] = parent
            self.action_from_parent[node] = action
            self.children_index[parent, action] = node
            self.children_rewards[parent, action] = reward
        return node

    def visit_distribution(self, node: int = ROOT_INDEX) -> np.ndarray:
        """Visit counts of ``node``'s children, normalised: the policy target."""
        visits = self.children_visits[node].astype(np.float64)
        total = visits.sum()
        return visits / total if total > 0 else self.children_mask[node] / max(1, self.children_mask[node].sum())
