"""The persistent token tree of one prompt: nodes, cached slates, reference paths, weightage.

A node is a context (prompt + generated primary tokens). The tree stores what expansions
found (slates), never model state (that lives in each teacher's bounded KV cache), so a tree is
small, saved as JSON, and reused across episodes and runs.

Weightage (DESIGN §3): each child starts at ``1/n`` for the ``n`` children of its node. The
tree stores a multiplicative *factor* per child (1 at creation); ``weightage = factor / n``.
After an episode, along the chosen path, a wrong child's factor is multiplied by ``1 - eta``;
a right child's by ``1 + eta`` (capped) only when the episode's return beat the previous
episode's on this prompt. Factors are never renormalised, so a wrong child never goes up;
trees merge by multiplying factors, which keeps that property.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokentree_env.errors import ConfigError
from tokentree_env.teachers.base import Context
from tokentree_env.tree.slate import Slate

ROOT = 0
NO_PARENT = -1
TREE_FORMAT = 1


@dataclass(frozen=True)
class WeightageRule:
    """Hyperparameters of the weightage update (DESIGN §3)."""

    eta: float = 0.2
    """Step of the multiplicative update: wrong x (1 - eta), right x (1 + eta)."""
    cap: float = 4.0
    """Upper bound of a right child's factor."""

    def __post_init__(self) -> None:
        if not 0.0 < self.eta < 1.0:
            raise ConfigError(f"WeightageRule.eta must be in (0, 1), got {self.eta}")
        if self.cap < 1.0:
            raise ConfigError(f"WeightageRule.cap must be >= 1, got {self.cap}")


@dataclass
class Node:
    """One context: the ids of prompt + path, its children by token, and (once expanded) its slate."""

    ids: tuple[int, ...]
    parent: int = NO_PARENT
    token: int = -1
    children: dict[int, int] = field(default_factory=dict)
    slate: Slate | None = None
    factors: np.ndarray | None = None  # (n,) float64 weightage factors, aligned with the slate
    text: str | None = None


class TokenTree:
    """The token tree of one prompt, shared by every episode on it (one tree per prompt)."""

    def __init__(self, prompt: str, prompt_ids: Sequence[int], root_text: str | None = None) -> None:
        self.prompt = prompt
        self.root_text = root_text if root_text is not None else prompt  # the prompt as the primary reads it
        self.nodes: list[Node] = [Node(tuple(int(i) for i in prompt_ids), text=self.root_text)]
        self._by_ids: dict[tuple[int, ...], int] = {self.nodes[ROOT].ids: ROOT}
        self.reference_paths: dict[str, list[int]] = {}
        self.reference_children: dict[int, set[int]] = {}
        self.last_return: float | None = None

    # -- structure ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def prompt_length(self) -> int:
        return len(self.nodes[ROOT].ids)

    def child(self, node: int, token: int) -> int:
        """The id of ``node``'s child by ``token``, created if new."""
        found = self.nodes[node].children.get(token)
        if found is not None:
            return found
        ids = (*self.nodes[node].ids, int(token))
        new = len(self.nodes)
        self.nodes.append(Node(ids, parent=node, token=int(token)))
        self.nodes[node].children[int(token)] = new
        self._by_ids[ids] = new
        return new

    def find(self, ids: Sequence[int]) -> int | None:
        """The node whose context is ``ids``, if it exists."""
        return self._by_ids.get(tuple(ids))

    def path_tokens(self, node: int) -> tuple[int, ...]:
        """Generated tokens from the root to ``node``."""
        return self.nodes[node].ids[self.prompt_length:]

    def context(self, node: int, decode) -> Context:
        """The node's context; ``decode`` maps primary ids to text (computed once, then kept)."""
        n = self.nodes[node]
        if n.text is None:
            n.text = self.root_text + decode(self.path_tokens(node))
        return Context(n.ids, n.text)

    # -- reference paths ------------------------------------------------------------------------
    def add_reference(self, name: str, tokens: Sequence[int]) -> None:
        """Insert a teacher's reference answer (primary tokens, EOS last) as a path of the tree."""
        tokens = [int(t) for t in tokens]
        self.reference_paths[name] = tokens
        node = ROOT
        for t in tokens:
            self.reference_children.setdefault(node, set()).add(t)
            node = self.child(node, t)

    @property
    def min_reference_length(self) -> int | None:
        """``L_min``: the shortest reference answer, in primary tokens (EOS included)."""
        lengths = [len(p) for p in self.reference_paths.values() if p]
        return min(lengths) if lengths else None

    # -- weightage ------------------------------------------------------------------------------
    def set_slate(self, node: int, slate: Slate) -> None:
        """Attach a slate; weightage factors carry over by token, new children start at 1."""
        n = self.nodes[node]
        old = dict(zip(n.slate.tokens.tolist(), n.factors.tolist(), strict=True)) if n.slate is not None else {}
        n.slate = slate
        n.factors = np.asarray([old.get(t, 1.0) for t in slate.tokens.tolist()], dtype=np.float64)

    def weightage(self, node: int) -> np.ndarray:
        """Weightage of each child of an expanded node: ``factor / n``, ``(n,)``."""
        n = self.nodes[node]
        if n.factors is None:
            raise ConfigError(f"node {node} has not been expanded yet; expand it before reading weightage")
        return n.factors / max(1, len(n.factors))

    def apply_weightage(self, path: Sequence[tuple[int, int]], episode_return: float,
                        rule: WeightageRule = WeightageRule()) -> bool:
        """Apply the rule along ``path`` (``(node, child index)`` pairs) for an episode's return.

        Returns whether the return improved on the previous episode's (so right children rose).
        """
        improved = self.last_return is not None and episode_return > self.last_return
        for node, index in path:
            n = self.nodes[node]
            if n.slate is None or not 0 <= index < len(n.slate):
                raise ConfigError(f"path step ({node}, {index}) is not a child on the node's slate")
            if not n.slate.right[index]:
                n.factors[index] *= 1.0 - rule.eta
            elif improved:
                n.factors[index] = min(rule.cap, n.factors[index] * (1.0 + rule.eta))
        self.last_return = float(episode_return)
        return improved

    def merge(self, other: TokenTree, rule: WeightageRule = WeightageRule()) -> None:
        """Fold a tree from another worker into this one: nodes and slates missing here are
        copied; weightage factors of shared children multiply (capped), so wrong never rises."""
        if other.prompt != self.prompt or other.nodes[ROOT].ids != self.nodes[ROOT].ids:
            raise ConfigError(f"cannot merge trees of different prompts: {self.prompt!r} vs {other.prompt!r}")
        for theirs in other.nodes[1:]:
            self.child(self.find(theirs.ids[:-1]), theirs.token)
        for theirs in other.nodes:
            mine = self.nodes[self.find(theirs.ids)]
            if theirs.slate is None:
                continue
            if mine.slate is None:
                mine.slate, mine.factors = theirs.slate, theirs.factors.copy()
                continue
            their_factor = dict(zip(theirs.slate.tokens.tolist(), theirs.factors.tolist(), strict=True))
            for i, t in enumerate(mine.slate.tokens.tolist()):
                mine.factors[i] = min(rule.cap, mine.factors[i] * their_factor.get(t, 1.0))
        for name, tokens in other.reference_paths.items():
            if name not in self.reference_paths:
                self.add_reference(name, tokens)

    # -- persistence ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": TREE_FORMAT,
            "prompt": self.prompt,
            "root_text": self.root_text,
            "prompt_ids": list(self.nodes[ROOT].ids),
            "last_return": self.last_return,
            "reference_paths": self.reference_paths,
            "nodes": [{"parent": n.parent, "token": n.token,
                       "slate": n.slate.to_json() if n.slate is not None else None,
                       "factors": n.factors.tolist() if n.factors is not None else None}
                      for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data: dict) -> TokenTree:
        if data.get("format") != TREE_FORMAT:
            raise ConfigError(f"token tree format {data.get('format')!r} is not {TREE_FORMAT}")
        tree = cls(data["prompt"], data["prompt_ids"], data.get("root_text"))
        for row in data["nodes"][1:]:
            tree.child(row["parent"], row["token"])
        for node, row in zip(tree.nodes, data["nodes"], strict=True):
            if row["slate"] is not None:
                node.slate = Slate.from_json(row["slate"])
                node.factors = np.asarray(row["factors"], dtype=np.float64)
        for name, tokens in data["reference_paths"].items():
            tree.add_reference(name, tokens)
        tree.last_return = data["last_return"]
        return tree

    def save(self, path: str | os.PathLike) -> None:
        """Write the tree as JSON atomically (a crash never leaves a half-written file)."""
        save_json_atomic(self.to_json(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenTree:
        return cls.from_json(json.loads(Path(path).read_text()))


def save_json_atomic(data, path: str | os.PathLike) -> None:
    """Write JSON to a temporary file in the same folder, fsync it, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
