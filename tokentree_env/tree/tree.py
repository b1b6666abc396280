"""The persistent token tree of one prompt: nodes, cached slates, reference paths, weightage.

A node is a context (prompt + generated primary tokens). The tree stores what expansions
found (slates), never model state (that lives in each teacher's bounded KV cache), so a tree is
small, saved as JSON, and reused across episodes and runs.

Weightage (DESIGN §3, ``docs/design.md``): each child starts at ``1/n`` for the ``n`` children
of its node. The tree stores a multiplicative **factor** per child token (1 until first updated),
kept per node **by token**, so a factor survives when the slate is recomputed (after the primary
is trained) and a child that leaves the slate and comes back keeps it. ``weightage = factor / n``
is computed only when read; stored factors are never renormalised.

After an episode, along the chosen path, a wrong child's factor is multiplied by ``1 - eta``; a
right child's by ``1 + eta`` (capped) only when the episode's return beat the previous episode's
on this prompt. **Invariant**: the stored factor of a child token never increases while that child
is labelled wrong (not by updates, slate recomputation, saving and loading, or merging).

Merging is exact. A tree remembers the factors it **started from** (its *base*: all 1 for a new
tree, the stored factors for a loaded one) and saves them beside its factors. Merging a saved tree
multiplies each factor by that tree's own updates, ``factor / base``, so each worker's updates are
applied once: merging two copies of one checkpoint changes nothing, and a wrong child's factor
only ever goes down. ``last_return`` merges by a documented rule (:meth:`TokenTree.merge`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokentree_env.errors import ConfigError, TreeMismatchError
from tokentree_env.teachers.base import Context
from tokentree_env.tree.slate import Slate

ROOT = 0
NO_PARENT = -1
TREE_FORMAT = 3
LEGACY_PANEL = {"rule": "product", "alpha": None, "prior": None}
"""The panel that ranked the slates of a tree saved before trees recorded it (format 1 and 2)."""


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
    """One context: the ids of prompt + path, its children by token, its slate once expanded, and the
    weightage factors of its child tokens (``factors``; ``base``: what this tree started from)."""

    ids: tuple[int, ...]
    parent: int = NO_PARENT
    token: int = -1
    children: dict[int, int] = field(default_factory=dict)
    slate: Slate | None = None
    factors: dict[int, float] = field(default_factory=dict)  # child token -> factor (absent = 1)
    base: dict[int, float] = field(default_factory=dict)  # child token -> factor when this tree started
    text: str | None = None
    log_weights: tuple | None = field(default=None, repr=False)  # the panel's weights here: (key, (K,) array)
    evidence: tuple[float, ...] | None = None  # each teacher's log-prob of this node's token, kept from its creation


@dataclass(frozen=True)
class UpdateCount:
    """How many child factors one application of the weightage rule lowered and raised."""

    lowered: int = 0
    raised: int = 0
    improved: bool = False


class TokenTree:
    """The token tree of one prompt, shared by every episode on it (one tree per prompt).

    ``built_by`` records the models whose proposals fill it (teacher specs and tokenizer hashes, the
    primary's tokenizer hash); an env refuses a tree built by other models (:meth:`check_built_by`).
    ``panel`` records the panel setting that ranked its slates (:meth:`restamp_panel` re-ranks them).
    """

    def __init__(self, prompt: str, prompt_ids: Sequence[int], root_text: str | None = None,
                 built_by: dict | None = None, panel: dict | None = None) -> None:
        self.prompt = prompt
        self.root_text = root_text if root_text is not None else prompt  # the prompt as the primary reads it
        self.nodes: list[Node] = [Node(tuple(int(i) for i in prompt_ids), text=self.root_text)]
        self._by_ids: dict[tuple[int, ...], int] = {self.nodes[ROOT].ids: ROOT}
        self.reference_paths: dict[str, list[int]] = {}
        self.reference_children: dict[int, set[int]] = {}
        self.last_return: float | None = None
        self.base_last_return: float | None = None
        self.built_by = dict(built_by or {})
        self.panel: dict | None = dict(panel) if panel is not None else None
        self.owner: object = prompt
        """Whom the work of reading this tree's contexts is charged to (the env sets its episode key; not saved)."""

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
        return Context(n.ids, n.text, self.owner, prompt=self.prompt, answer_start=len(self.root_text))

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

    # -- provenance -----------------------------------------------------------------------------
    def check_built_by(self, expected: dict, where: str = "") -> None:
        """Refuse a tree filled by other base models than ``expected`` (teacher specs, tokenizer hashes).

        The primary's weights may differ (a trained checkpoint still loads its own trees: stale slates
        are recomputed), but not its tokenizer, since the tree's token ids are the primary's.
        """
        if self.built_by and expected and self.built_by != expected:
            mine, theirs = self.built_by, expected
            diffs = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
            raise TreeMismatchError(
                f"the token tree of {self.prompt!r}{where} was built by other models ({', '.join(diffs)} differ: "
                f"tree {[mine.get(k) for k in diffs]} vs env {[theirs.get(k) for k in diffs]}); load it into an env "
                "with the same teachers and primary tokenizer, or start new trees")

    def restamp_panel(self, panel: dict) -> bool:
        """Adopt another panel setting: the slates it ranked are dropped (recomputed on the next visit, so they are
        re-ranked by ``panel``) and the panel weights forgotten; weightage factors are kept by token. Returns
        whether anything changed."""
        if self.panel == panel:
            return False
        for n in self.nodes:
            n.slate, n.log_weights = None, None
        self.panel = dict(panel)
        return True

    # -- weightage ------------------------------------------------------------------------------
    def set_slate(self, node: int, slate: Slate) -> None:
        """Attach a (re)computed slate. Factors are kept by token, so they carry over to the new slate,
        and a child that is not on it keeps its factor for when it comes back."""
        self.nodes[node].slate = slate

    def factor(self, node: int, token: int) -> float:
        """The stored weightage factor of ``node``'s child ``token`` (1 until updated)."""
        return self.nodes[node].factors.get(int(token), 1.0)

    def weightage(self, node: int) -> np.ndarray:
        """Weightage of each child on an expanded node's slate: ``factor / n``, ``(n,)``."""
        n = self.nodes[node]
        if n.slate is None:
            raise ConfigError(f"node {node} has not been expanded yet; expand it before reading weightage")
        factors = n.factors
        return np.asarray([factors.get(t, 1.0) for t in n.slate.tokens.tolist()], dtype=np.float64) / max(
            1, len(n.slate))

    def apply_weightage(self, path: Sequence[tuple[int, int]], episode_return: float,
                        rule: WeightageRule = WeightageRule()) -> UpdateCount:
        """Apply the rule along ``path`` (``(node, child index)`` pairs) for an episode's return.

        Returns how many factors were lowered and raised, and whether the return improved on the
        previous episode's on this prompt (only then do right children rise).
        """
        improved = self.last_return is not None and episode_return > self.last_return
        lowered = raised = 0
        for node, index in path:
            n = self.nodes[node]
            if n.slate is None or not 0 <= index < len(n.slate):
                raise ConfigError(f"path step ({node}, {index}) is not a child on the node's slate")
            token = int(n.slate.tokens[index])
            old = n.factors.get(token, 1.0)
            if not n.slate.right[index]:
                n.factors[token] = old * (1.0 - rule.eta)
                lowered += 1
            elif improved and old < rule.cap:
                n.factors[token] = min(rule.cap, old * (1.0 + rule.eta))
                raised += 1
        self.last_return = float(episode_return)
        return UpdateCount(lowered, raised, improved)

    def rebase(self) -> None:
        """Take the current factors as this tree's base (done when a tree is loaded as a start point)."""
        for n in self.nodes:
            n.base = dict(n.factors)
        self.base_last_return = self.last_return

    def merge(self, other: TokenTree, rule: WeightageRule = WeightageRule()) -> None:
        """Fold a tree saved by another worker into this one.

        Nodes and slates missing here are copied. Each of ``other``'s factors contributes only its own
        updates, ``factor / base`` relative to the base it started from: ``mine *= theirs / their_base``
        (a right child's capped at ``rule.cap``). So merging an unplayed copy changes nothing, every
        worker's updates count once, and a wrong child's factor never rises (its updates are <= 1).

        ``last_return`` (the "previous episode" of the rule): if ``other`` played this prompt since its
        base, its ``last_return`` is taken, or the larger of the two when this tree played it too (so a
        later episode must beat the better one before right children rise: never more raises than
        either worker alone would make).
        """
        if other.prompt != self.prompt or other.nodes[ROOT].ids != self.nodes[ROOT].ids:
            raise ConfigError(f"cannot merge trees of different prompts: {self.prompt!r} vs {other.prompt!r}")
        if self.built_by and other.built_by:
            other.check_built_by(self.built_by, " (merged)")
        if self.panel is not None:
            other.restamp_panel(self.panel)  # its slates, ranked by another panel, are not copied
        for theirs in other.nodes[1:]:
            self.child(self.find(theirs.ids[:-1]), theirs.token)
        for theirs in other.nodes:
            mine = self.nodes[self.find(theirs.ids)]
            if mine.slate is None and theirs.slate is not None:
                mine.slate = theirs.slate
            if mine.evidence is None:
                mine.evidence = theirs.evidence
            for token, value in theirs.factors.items():
                delta = value / theirs.base.get(token, 1.0)
                if delta != 1.0:
                    merged = mine.factors.get(token, 1.0) * delta
                    mine.factors[token] = min(rule.cap, merged) if delta > 1.0 else merged
        for name, tokens in other.reference_paths.items():
            if name not in self.reference_paths:
                self.add_reference(name, tokens)
        if other.last_return != other.base_last_return and other.last_return is not None:
            played_here = self.last_return != self.base_last_return and self.last_return is not None
            self.last_return = max(self.last_return, other.last_return) if played_here else other.last_return

    # -- persistence ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": TREE_FORMAT,
            "prompt": self.prompt,
            "root_text": self.root_text,
            "prompt_ids": list(self.nodes[ROOT].ids),
            "built_by": self.built_by,
            "panel": self.panel,
            "last_return": self.last_return,
            "base_last_return": self.base_last_return,
            "reference_paths": self.reference_paths,
            "nodes": [{"parent": n.parent, "token": n.token,
                       "slate": n.slate.to_json() if n.slate is not None else None,
                       "factors": _pairs(n.factors), "base": _pairs(n.base),
                       "evidence": list(n.evidence) if n.evidence is not None else None}
                      for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data: dict) -> TokenTree:
        """A tree from :meth:`to_json` (format 3; format 1's slate-aligned factors are converted, and formats 1 and 2
        record no panel: their slates were ranked by the product, :data:`LEGACY_PANEL`)."""
        version = data.get("format")
        if version not in (1, 2, TREE_FORMAT):
            raise ConfigError(f"token tree format {version!r} is not {TREE_FORMAT} (or 1, 2)")
        tree = cls(data["prompt"], data["prompt_ids"], data.get("root_text"), data.get("built_by"),
                   data.get("panel", LEGACY_PANEL))
        for row in data["nodes"][1:]:
            tree.child(row["parent"], row["token"])
        for node, row in zip(tree.nodes, data["nodes"], strict=True):
            if row["slate"] is not None:
                node.slate = Slate.from_json(row["slate"])
            if version == 1:  # factors aligned with the slate, no base: the file is the base
                if row["factors"] is not None:
                    node.factors = {t: f for t, f in zip(row["slate"]["tokens"], row["factors"], strict=True)
                                    if f != 1.0}
                node.base = dict(node.factors)
            else:
                node.factors, node.base = dict(row["factors"]), dict(row["base"])
            if row.get("evidence") is not None:
                node.evidence = tuple(float(x) for x in row["evidence"])
        for name, tokens in data["reference_paths"].items():
            tree.add_reference(name, tokens)
        tree.last_return = data["last_return"]
        tree.base_last_return = data.get("base_last_return", tree.last_return if version == 1 else None)
        return tree

    def save(self, path: str | os.PathLike) -> None:
        """Write the tree as JSON atomically (a crash never leaves a half-written file)."""
        save_json_atomic(self.to_json(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenTree:
        """A saved tree, exactly as saved (its base included: :meth:`merge` reads it)."""
        return cls.from_json(json.loads(Path(path).read_text()))


def _pairs(factors: dict[int, float]) -> list[list]:
    """Factors as ``[[token, factor], ...]`` (JSON object keys would turn token ids into strings)."""
    return [[int(t), float(f)] for t, f in sorted(factors.items())]


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
