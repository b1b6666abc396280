"""The search prior of a slate: ``P(child) ∝ weightage × similarity`` (DESIGN §3)."""

from __future__ import annotations

import numpy as np


def prior(weightage: np.ndarray, similarity: np.ndarray, *, primary_logprobs: np.ndarray | None = None,
          primary_mix: float = 0.0) -> np.ndarray:
    """Normalised ``max(weightage × similarity, 0)``, optionally mixed with the primary's
    probabilities of the children (renormalised over the slate). Uniform when all scores are 0."""
    score = np.clip(weightage * similarity, 0.0, None)
    total = score.sum()
    p = score / total if total > 0 else np.full_like(score, 1.0 / max(1, score.size))
    if primary_mix > 0 and primary_logprobs is not None:
        q = np.exp(primary_logprobs - primary_logprobs.max())
        p = (1 - primary_mix) * p + primary_mix * q / q.sum()
    return p
