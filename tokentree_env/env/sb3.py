"""A Stable-Baselines3 features extractor for TokenTree-v0's observations.

SB3's default extractor would treat token ids as floats. This one embeds the context tokens
(mean-pooled over non-pad positions) and each candidate token, concatenates each candidate's
embedding with its features, and flattens::

    from sb3_contrib import MaskablePPO
    from tokentree_env.env.sb3 import TokenTreeExtractor
    model = MaskablePPO("MultiInputPolicy", env, policy_kwargs={"features_extractor_class": TokenTreeExtractor})
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from tokentree_env.env.observation import FEATURES


class TokenTreeExtractor(BaseFeaturesExtractor):
    """Token embeddings for ``context`` and ``candidates``; features per candidate; one flat vector."""

    def __init__(self, observation_space: spaces.Dict, embedding_dim: int = 16, pad_id: int = 0) -> None:
        vocab = int(observation_space["candidates"].high.max()) + 1
        width = observation_space["candidates"].shape[0]
        super().__init__(observation_space, features_dim=embedding_dim + width * (embedding_dim + len(FEATURES)))
        self.embed = nn.Embedding(vocab, embedding_dim)
        self.width, self.pad_id = width, pad_id

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        context = obs["context"].long()  # (B, C)
        keep = (context != self.pad_id).float().unsqueeze(-1)  # (B, C, 1)
        pooled = (self.embed(context) * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, E)
        candidates = self.embed(obs["candidates"].long())  # (B, K, E)
        features = obs["features"].view(-1, self.width, len(FEATURES))  # (B, K, F)
        per_candidate = torch.cat([candidates, features], dim=-1).flatten(1)  # (B, K*(E+F))
        return torch.cat([pooled, per_candidate], dim=-1)
