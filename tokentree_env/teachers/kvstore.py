"""A byte-bounded LRU store of per-context model state (KV tensors and next-token log-probs)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

DEFAULT_CACHE_BYTES = 256 * 2**20


@dataclass
class CachedState:
    """One model's state after reading a context: its own token ids, the KV tensors covering them
    (per layer ``(keys, values)``, each ``(1, heads, T, head_dim)``) and the next-token log-probs
    in the primary vocabulary ``(V_p,)``."""

    ids: tuple[int, ...]
    kv: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    logprobs: torch.Tensor

    @property
    def nbytes(self) -> int:
        kv = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.kv)
        return kv + self.logprobs.numel() * self.logprobs.element_size()


class KVStore:
    """LRU map ``own token ids -> CachedState`` holding at most ``max_bytes`` of tensors.

    Entries may be views of one batched tensor (siblings decoded together): the byte count is
    that of the views, so a partly evicted batch keeps its storage until its last view goes.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._entries: OrderedDict[tuple[int, ...], CachedState] = OrderedDict()

    def get(self, ids: tuple[int, ...]) -> CachedState | None:
        state = self._entries.get(ids)
        if state is not None:
            self._entries.move_to_end(ids)
        return state

    def put(self, state: CachedState) -> None:
        old = self._entries.pop(state.ids, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._entries[state.ids] = state
        self.bytes += state.nbytes
        while self.bytes > self.max_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
