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
    raw_values: np.ndarray = field(init=False)  # (N,) float64: the node's own value estimate when expanded
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
    rollouts: list = field(init=False)  # (N,) the tokens a leaf's rollout played from the node (or [])
    verified: np.ndarray = field(init=False)  # (N,) float64: the verifier's score of the node's rollout (NaN: unseen)
    tokens: np.ndarray = field(init=False)  # (N,) int64: the token that leads to the node (UNVISITED at the root)
    root_path: list = field(default_factory=list)  # the answer's tokens before the root (the episode so far)
    found: int = UNVISITED  # the first node whose rollout (or own end) the verifier passed, when the search stopped
    size: int = 0

    def __post_init__(self) -> None:
        n, a = self.capacity, self.width
        self.node_visits = np.zeros(n, dtype=np.int64)
        self.node_values = np.zeros(n)
        self.raw_values = np.zeros(n)
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
        self.rollouts = [[] for _ in range(n)]
        self.verified = np.full(n, np.nan)
        self.tokens = np.full(n, UNVISITED, dtype=np.int64)

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

    def prior_logits(self, node: int) -> np.ndarray:
        """Log of the node's prior over its children; ``-inf`` on masked (or zero-prior) children, ``(A,)``."""
        prior = self.children_prior[node]
        with np.errstate(divide="ignore"):
            return np.where(self.children_mask[node] & (prior > 0), np.log(np.maximum(prior, 1e-300)), -np.inf)

    def continuation(self, node: int, action: int, token: int) -> list[int]:
        """The whole answer the search played from ``node`` after ``action`` (its token, then the child's rollout),
        or ``[]`` when the action was never expanded."""
        child = self.children_index[node, action]
        return [] if child == UNVISITED else [int(token), *self.rollouts[int(child)]]

    def path_from_root(self, node: int) -> list[int]:
        """The tokens from the root down to ``node``."""
        out = []
        while self.parents[node] != NO_PARENT:
            out.append(int(self.tokens[node]))
            node = int(self.parents[node])
        return out[::-1]

    def verified_answers(self, at_least: float = 0.5) -> list[list[int]]:
        """Every distinct whole answer the search saw the verifier pass: the episode so far, the path to a node and
        the node's rollout (or the node's own end)."""
        found = {tuple([*self.root_path, *self.path_from_root(n), *self.rollouts[n]])
                 for n in range(1, self.size) if self.verified[n] >= at_least}
        return [list(a) for a in sorted(found)]

    def visit_distribution(self, node: int = ROOT_INDEX) -> np.ndarray:
        """Visit counts of ``node``'s children, normalised: the AlphaZero policy target."""
        visits = self.children_visits[node].astype(np.float64)
        total = visits.sum()
        return visits / total if total > 0 else self.children_mask[node] / max(1, self.children_mask[node].sum())

    def subtree(self, node: int, extra: int) -> SearchTree:
        """A new tree rooted at ``node`` holding its whole subtree and its statistics, with room for ``extra``
        more nodes (subtree reuse between moves)."""
        order, frontier = [node], [node]
        while frontier:
            children = [int(c) for n in frontier for c in self.children_index[n] if c != UNVISITED]
            order += children
            frontier = children
        new = SearchTree(len(order) + extra, self.width)
        remap = {old: i for i, old in enumerate(order)}
        index = np.asarray(order)
        for name in ("node_visits", "node_values", "raw_values", "action_from_parent", "children_prior",
                     "children_mask", "children_visits", "children_values", "children_rewards", "terminal", "verified",
                     "tokens"):
            getattr(new, name)[: len(order)] = getattr(self, name)[index]
        new.parents[: len(order)] = [remap.get(int(p), NO_PARENT) for p in self.parents[index]]
        new.parents[ROOT_INDEX], new.action_from_parent[ROOT_INDEX] = NO_PARENT, -1
        new.children_index[: len(order)] = np.vectorize(lambda c: remap.get(int(c), UNVISITED))(
            self.children_index[index]) if len(order) else UNVISITED
        new.states[: len(order)] = [self.states[i] for i in order]
        new.rollouts[: len(order)] = [self.rollouts[i] for i in order]
        new.size = len(order)
        return new
