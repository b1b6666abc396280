"""Observations of TokenTree-v0: the ``Dict`` of 1-D boxes an agent sees, and the ``info`` beside it.

Built from a tree node's slate (expanded by the :class:`~tokentree_env.tree.Expander`), the tree's
weightage and the similarity scorer. The parts of a node's observation that do not change with the
weightage (features, candidates, mask, provenance) are computed once per slate and cached. Knows
nothing of the env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from tokentree_env.env.state import EnvState
from tokentree_env.scoring import Similarity, prior
from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB
from tokentree_env.tree import ROOT, Expander, TokenTree

FEATURES: tuple[str, ...] = (
    "prior", "similarity", "weightage", "primary_logprob", "panel_logprob", "votes", "right", "reference")
"""Per-candidate features, in the order they are flattened into ``obs["features"]``."""
FEATURE_LOW = np.array([0.0, -1.0, 0.0, UNMAPPED_LOGPROB, UNMAPPED_LOGPROB, 0.0, 0.0, 0.0], dtype=np.float32)


class TokenTexts:
    """Each token's text, decoded on first use (a real model's 262k-token vocabulary is never decoded whole)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self._texts = tokenizer, {}

    def __getitem__(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.tokenizer.decode([int(token)], skip_special_tokens=True)
        return text


class ObservationBuilder:
    """Observations and infos of tree nodes for an env with ``width`` action slots.

    Args:
        expander: the expander whose slates fill the observations (its tokenizer is the vocabulary).
        similarity: scores each child against the prompt's reference answers (rebound when the
            primary's weights change).
        width: K, the action-space size; max_context: context ids shown; primary_mix: the prior's
            mix of the primary's probabilities; weightage_cap: the weightage feature's upper bound; boundary: the
            task's step-boundary test of the answer's text (``info["step_boundary"]``; the answer's start is one).
    """

    def __init__(self, expander: Expander, similarity: Similarity, *, width: int, max_context: int,
                 primary_mix: float, weightage_cap: float, boundary=None) -> None:
        self.expander, self.similarity, self.width = expander, similarity, width
        self.boundary = boundary or (lambda text: False)
        self.max_context, self.primary_mix = max_context, primary_mix
        tok = expander.tokenizer
        self.vocab_size = max(len(tok), max(tok.get_vocab().values()) + 1)
        self.token_texts = TokenTexts(tok)
        self._pieces: dict[int, str] = {}  # token id -> the tokenizer's piece, for provenance
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        self.low = FEATURE_LOW
        self.high = np.array([1.0, 1.0, weightage_cap, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=np.float32)
        self.space = spaces.Dict({
            "context": spaces.Box(0, self.vocab_size - 1, (max_context,), dtype=np.int64),
            "candidates": spaces.Box(0, self.vocab_size - 1, (width,), dtype=np.int64),
            "features": spaces.Box(np.tile(self.low, width), np.tile(self.high, width), dtype=np.float32),
            "action_mask": spaces.Box(0, 1, (width,), dtype=np.int8),
        })
        self.similarity.bind(expander.primary)
        self._version = expander.primary.version
        self._references: dict[str, np.ndarray] = {}
        self._node_cache: dict[tuple[str, int], tuple] = {}

    def clear(self) -> None:
        """Forget cached node parts and reference embeddings (after trees are replaced or merged)."""
        self._node_cache.clear()
        self._references.clear()

    def prepare(self, tree: TokenTree) -> None:
        """Ready a prompt's tree for observations: the similarity follows the primary's current weights,
        the reference answers are embedded, and the root is expanded."""
        if self.expander.primary.version != self._version:
            self.similarity.bind(self.expander.primary)
            self._version = self.expander.primary.version
            self.clear()
        if tree.prompt not in self._references:
            paths = list(tree.reference_paths.values())
            with self.similarity.counters.charging(tree.owner):
                self._references[tree.prompt] = self.similarity.reference(paths, [self.expander.decode(p) for p in paths])
        self.expander.expand(tree, [ROOT])

    def _piece(self, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.expander.tokenizer.convert_ids_to_tokens(token)
        return piece

    def _static(self, tree: TokenTree, node: int):
        """Per-node parts of the observation and info that do not change with weightage (cached)."""
        key = (tree.prompt, node)
        found = self._node_cache.get(key)
        slate = tree.nodes[node].slate
        if found is not None and found[0] is slate:
            return found
        n, tokens, ex = len(slate), slate.tokens, self.expander
        with self.similarity.counters.charging(tree.owner):
            sim = self.similarity.children(self._references[tree.prompt], tree.path_tokens(node),
                                           tree.nodes[node].text or "", tokens, [self.token_texts[t] for t in tokens])
        feats = np.zeros((self.width, len(FEATURES)), dtype=np.float32)
        feats[:n, 1] = np.clip(sim, -1.0, 1.0)
        feats[:n, 3] = slate.logprobs[:, ex.primary_column]
        feats[:n, 4] = slate.panel  # the teacher panel's log-prob (tokentree_env.scoring.panel)
        feats[:n, 5] = slate.votes / max(1, len(ex.proposer_columns))
        feats[:n, 6] = slate.right
        feats[:n, 7] = slate.reference
        candidates = np.full(self.width, self.pad_id, dtype=np.int64)
        candidates[:n] = tokens
        mask = np.zeros(self.width, dtype=np.int8)
        mask[:n] = 1
        names = [m.name for m in ex.models]
        provenance = [{"token": t, "text": self._piece(t), "direction": "right" if r else "wrong", "votes": v,
                       "reference": ref, "proposed_by": [name for name, on in zip(names, p, strict=True) if on]}
                      for t, r, v, ref, p in zip(tokens.tolist(), slate.right.tolist(), slate.votes.tolist(),
                                                 slate.reference.tolist(), slate.proposed.tolist(), strict=True)]
        weights = np.exp(ex.log_weights(tree, node))
        panel = {"rule": ex.panel.config.rule, "weights": weights, "writer": int(np.argmax(weights)),
                 "teacher_logprobs": slate.logprobs[:, ex.teacher_columns]}  # arrays: info() lists them afresh
        found = (slate, feats, candidates, mask, sim, provenance, panel)
        self._node_cache[key] = found
        return found

    def mask(self, tree: TokenTree, state: EnvState) -> np.ndarray:
        """The action mask of a state (all zeros once the episode is done)."""
        if state.done or tree.nodes[state.node].slate is None:
            return np.zeros(self.width, dtype=np.int8)
        return self._static(tree, state.node)[3]

    def observe(self, tree: TokenTree, state: EnvState) -> dict[str, np.ndarray]:
        """The observation of ``state`` (expanding its node if needed)."""
        ids = tree.nodes[state.node].ids[-self.max_context:]
        context = np.full(self.max_context, self.pad_id, dtype=np.int64)
        context[self.max_context - len(ids):] = ids
        if state.done:
            return {"context": context, "candidates": np.full(self.width, self.pad_id, dtype=np.int64),
                    "features": np.tile(self.low, self.width), "action_mask": np.zeros(self.width, dtype=np.int8)}
        self.expander.expand(tree, [state.node])
        slate, feats, candidates, mask, sim, _, _ = self._static(tree, state.node)
        feats = feats.copy()
        n = len(slate)
        weightage = tree.weightage(state.node)
        feats[:n, 2] = weightage
        feats[:n, 0] = prior(weightage, sim, primary_logprobs=slate.logprobs[:, self.expander.primary_column],
                             primary_mix=self.primary_mix)
        feats[n:] = self.low
        np.clip(feats, self.low, self.high, out=feats)
        return {"context": context, "candidates": candidates.copy(), "features": feats.reshape(-1),
                "action_mask": mask.copy()}

    def info(self, tree: TokenTree, state: EnvState, terms: dict, reason: str | None, invalid: bool) -> dict[str, Any]:
        """The ``info`` of ``state``: answer text, reward terms, end reason, the children's provenance and the panel
        (``info["panel"]``: the rule, the node's weights over the teachers, the writer, the teacher with the largest
        weight, and each child's per-teacher log-probs, in the order of ``env.teacher_names``)."""
        text = tree.context(state.node, self.expander.decode).text[len(tree.root_text):]  # cached per node
        info = {"prompt": state.prompt, "text": text, "step": state.length, "reward_terms": dict(terms),
                "terminal_reason": reason, "invalid_action": invalid,
                "min_reference_length": tree.min_reference_length,
                "step_boundary": not text or bool(self.boundary(text))}
        if not state.done:
            provenance, panel = self._static(tree, state.node)[5:]
            info["candidates"] = [p["text"] for p in provenance]
            info["directions"] = [p["direction"] for p in provenance]
            info["provenance"] = provenance
            info["panel"] = {**panel, "weights": panel["weights"].tolist(),  # fresh per call: callers may keep infos
                             "teacher_logprobs": panel["teacher_logprobs"].tolist()}
        return info

