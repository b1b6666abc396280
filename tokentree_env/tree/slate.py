"""A node's slate: its children (primary token ids) with provenance, merged from every proposer.

Each child keeps which models proposed it, every model's log-prob of it, the panel's log-prob of it
(:mod:`tokentree_env.scoring.panel`), its right-direction votes, whether it lies on a teacher's reference
answer, and its direction label: **right** if any proposer ranks it in its top-k (or it is on a reference
path), **wrong** only if every proposer drew it from the low-probability tail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB


@dataclass
class Slate:
    """Children of one node; arrays are aligned by child index ``i < n <= K``.

    Model columns ``m`` follow the expander's model order (teachers first, the primary last
    when it proposes).
    """

    tokens: np.ndarray  # (n,) int64 primary token ids
    right: np.ndarray  # (n,) bool direction label (True = right)
    votes: np.ndarray  # (n,) int32 models ranking the child in their top-k
    proposed: np.ndarray  # (n, M) bool which models proposed the child (right or wrong)
    logprobs: np.ndarray  # (n, M) float32 each model's log-prob of the child, floored
    reference: np.ndarray  # (n,) bool child continues a teacher's reference answer
    primary_version: int = 0
    panel: np.ndarray | None = None  # (n,) float32 the panel's log-prob of each child, at this node's weights

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def index_of(self, token: int) -> int | None:
        """The child index of ``token``, or None when it is not on the slate."""
        hits = np.flatnonzero(self.tokens == token)
        return int(hits[0]) if hits.size else None

    def to_json(self) -> dict:
        data = {k: getattr(self, k).tolist() for k in ("tokens", "right", "votes", "proposed", "logprobs",
                                                       "reference")} | {"primary_version": self.primary_version}
        return data | ({"panel": self.panel.tolist()} if self.panel is not None else {})

    @classmethod
    def from_json(cls, data: dict) -> Slate:
        return cls(
            tokens=np.asarray(data["tokens"], dtype=np.int64),
            right=np.asarray(data["right"], dtype=bool),
            votes=np.asarray(data["votes"], dtype=np.int32),
            proposed=np.asarray(data["proposed"], dtype=bool).reshape(len(data["tokens"]), -1),
            logprobs=np.asarray(data["logprobs"], dtype=np.float32).reshape(len(data["tokens"]), -1),
            reference=np.asarray(data["reference"], dtype=bool),
            primary_version=int(data["primary_version"]),
            panel=np.asarray(data["panel"], dtype=np.float32) if data.get("panel") is not None else None,
        )


def merge_proposals(
    proposals: Sequence[tuple[list[int], list[int]]],
    logprobs,
    *,
    width: int,
    panel: Callable[[np.ndarray], np.ndarray],
    reference_tokens: Sequence[int] = (),
    keep_tokens: Sequence[int] = (),
    wrong_slots: int | None = None,
    primary_version: int = 0,
) -> Slate:
    """Merge per-model ``(right, wrong)`` proposals into one slate of at most ``width`` children.

    Args:
        proposals: per model, the right (top-k) and wrong (tail) token ids it proposed.
        logprobs: ``(M, V_p)`` every model's next-token log-probs in the primary vocabulary
            (a tensor or an array).
        width: the slate width ``K``.
        panel: the panel's log-prob of candidates from their per-model log-probs ``(C, M) -> (C,)``; it ranks
            the children.
        reference_tokens: tokens continuing a teacher's reference answer (always kept, right).
        keep_tokens: right tokens always kept (each teacher's own top-1, and the primary's when it proposes, so a
            model's confident choice is never cut when the models disagree).
        wrong_slots: slots kept for wrong children when the slate overflows (default ``K // 4``).

    Order: reference children; then right ones by the panel's log-prob (votes break ties), the kept ones
    never cut; then wrong ones by the panel's log-prob, keeping up to ``wrong_slots`` places when there are
    too many.
    """
    n_models = len(proposals)
    votes: dict[int, int] = {}
    proposed: dict[int, int] = {}  # token -> bit m set when model m proposed it
    for m, (right, wrong) in enumerate(proposals):
        bit = 1 << m
        for t in right:
            votes[t] = votes.get(t, 0) + 1
        for t in (*right, *wrong):
            proposed[t] = proposed.get(t, 0) | bit
    refs = list(dict.fromkeys(int(t) for t in reference_tokens))
    for t in refs:
        proposed.setdefault(t, 0)
    candidates = list(proposed)
    lp = np.maximum(np.asarray(logprobs)[:, candidates], UNMAPPED_LOGPROB).T.astype(np.float32, copy=False)  # (C, M)
    row = {t: i for i, t in enumerate(candidates)}
    score = np.asarray(panel(lp), dtype=np.float32)  # (C,)
    negated = (-score).tolist()  # exactly -float(score[i])

    def key(t: int) -> tuple[float, int]:
        return (negated[row[t]], -votes.get(t, 0))

    is_ref = set(refs)
    right_tokens = sorted((t for t in candidates if t not in is_ref and t in votes), key=key)
    wrong_tokens = sorted((t for t in candidates if t not in is_ref and t not in votes), key=key)
    room = max(0, width - len(refs))
    keep_wrong = min(len(wrong_tokens), wrong_slots if wrong_slots is not None else max(1, width // 4))
    right_room = max(room - keep_wrong, room - len(wrong_tokens))
    kept = {t for t in keep_tokens if t in votes and t not in is_ref}
    cut = [t for t in right_tokens if t not in kept][: max(0, right_room - len(kept))]
    right_tokens = [t for t in right_tokens if t in kept or t in cut]
    wrong_tokens = wrong_tokens[: max(0, room - len(right_tokens))]
    tokens = (refs + right_tokens + wrong_tokens)[:width]
    rows = [row[t] for t in tokens]
    counts = np.asarray([votes.get(t, 0) for t in tokens], dtype=np.int32)
    reference = np.asarray([t in is_ref for t in tokens], dtype=bool)
    bits = np.asarray([proposed[t] for t in tokens], dtype=np.int64 if n_models < 63 else object)
    return Slate(
        tokens=np.asarray(tokens, dtype=np.int64),
        right=reference | (counts > 0),
        votes=counts,
        proposed=((bits[:, None] >> np.arange(n_models)) & 1).astype(bool),
        logprobs=lp[rows].reshape(len(tokens), n_models),
        reference=reference,
        primary_version=primary_version,
        panel=score[rows],
    )
