"""Scoring children: cosine similarity to the teachers' reference answers, and the search prior."""

from tokentree_env.scoring.prior import prior
from tokentree_env.scoring.similarity import MeanEmbeddingSimilarity, SentenceSimilarity, Similarity

__all__ = ["MeanEmbeddingSimilarity", "SentenceSimilarity", "Similarity", "prior"]
