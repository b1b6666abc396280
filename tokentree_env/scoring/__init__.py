"""Scoring children: cosine similarity to the teachers' reference answers, the search prior, and the teacher
panel (how the teachers' log-probs combine). Names are imported on first use (PEP 562): the panel's settings are
read by the command line, which must not import torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "PANEL_RULES": "tokentree_env.scoring.panel",
    "Panel": "tokentree_env.scoring.panel",
    "PanelConfig": "tokentree_env.scoring.panel",
    "writer_switches": "tokentree_env.scoring.panel",
    "prior": "tokentree_env.scoring.prior",
    "MeanEmbeddingSimilarity": "tokentree_env.scoring.similarity",
    "SentenceSimilarity": "tokentree_env.scoring.similarity",
    "Similarity": "tokentree_env.scoring.similarity",
}
__all__ = ["PANEL_RULES", "MeanEmbeddingSimilarity", "Panel", "PanelConfig", "SentenceSimilarity", "Similarity", "prior",
           "writer_switches"]


def __getattr__(name: str):
    """Import a public name on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokentree_env.scoring' has no attribute {name!r}")


if TYPE_CHECKING:
    from tokentree_env.scoring.panel import PANEL_RULES, Panel, PanelConfig, writer_switches
    from tokentree_env.scoring.prior import prior
    from tokentree_env.scoring.similarity import MeanEmbeddingSimilarity, SentenceSimilarity, Similarity
