"""Per-context model state (KV and next-token log-probs): append-in-place arenas and a byte-bounded LRU.

Extending a context by one token must not copy its whole KV cache (``DynamicCache`` concatenates,
so every step allocates and fills a fresh ``(T + 1)``-long tensor, and a tree keeping every node's
cache pays that in memory too). Here a chain of contexts shares one **arena**: a buffer with spare
capacity whose rows record how many positions are written. A context is a view
``(arena, row, length)``; extending it writes the new positions in place when the view ends at the
arena's tip, and copies the prefix into a new arena only when a sibling already wrote there
(copy on write) or the capacity is exhausted (doubling, so amortised O(1) per token).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

DEFAULT_CACHE_BYTES = 256 * 2**20
MIN_CAPACITY = 32
GATHER_SLACK = 4
"""Spare positions of a gathered batch's arena: its rows are mostly gathered again (other prompts) rather than
extended in place, so it is sized to what it holds (zeroing a doubled arena cost about a tenth of self-play's CPU)."""


class Arena:
    """KV buffers ``(B, heads, capacity, head_dim)`` and, per row, how many positions are written."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, used: list[int]) -> None:
        self.keys, self.values, self.used = keys, values, used

    @classmethod
    def empty(cls, like: torch.Tensor, batch: int, capacity: int) -> Arena:
        """An arena whose unwritten positions are 0: finite, because a gathered batch copies a row's whole span and
        masks what lies past its context, and a masked weight times a NaN of uninitialised memory is still NaN."""
        shape = (batch, like.shape[1], capacity, like.shape[3])
        return cls(like.new_zeros(shape), like.new_zeros(shape), [0] * batch)

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]


@dataclass
class KVView:
    """One context's KV in one layer: the first ``length`` positions of ``arena`` row ``row``."""

    arena: Arena
    row: int
    length: int

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        a, r, n = self.arena, self.row, self.length
        return a.keys[r:r + 1, :, :n], a.values[r:r + 1, :, :n]

    @property
    def nbytes(self) -> int:
        k = self.arena.keys
        return 2 * self.length * k.shape[1] * k.shape[3] * k.element_size()


class ArenaLayer(DynamicLayer):
    """A ``DynamicLayer`` that appends into arenas instead of concatenating.

    Every batch row starts from the same ``base`` view (or from nothing, for a fresh context);
    after the forward, :meth:`views` gives each row's view of its extended context.
    """

    def __init__(self, base: KVView | None = None, max_positions: int = 2**31) -> None:
        super().__init__()
        self.base, self.max_positions = base, max_positions
        self.arena: Arena | None = None
        self.row_offset = 0
        self.length = base.length if base else 0
        if base is not None:
            self.is_initialized = True
            self.keys, self.values = base.tensors()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        batch, new = key_states.shape[0], key_states.shape[2]
        start, end = self.length, self.length + new
        base = self.base
        if self.arena is None and base is not None and batch == 1 and base.arena.used[base.row] == start \
                and end <= base.arena.capacity:
            self.arena, self.row_offset = base.arena, base.row  # the base ends at the arena's tip: append
        elif self.arena is None or end > self.arena.capacity:
            arena = Arena.empty(key_states, batch, min(self.max_positions, max(MIN_CAPACITY, 2 * end)))
            if start:  # copy the prefix once (a 1-row base broadcasts over the batch)
                arena.keys[:, :, :start] = self.keys
                arena.values[:, :, :start] = self.values
            arena.used = [start] * batch
            self.arena, self.row_offset = arena, 0
        rows = slice(self.row_offset, self.row_offset + batch)
        self.arena.keys[rows, :, start:end] = key_states
        self.arena.values[rows, :, start:end] = value_states
        for r in range(self.row_offset, self.row_offset + batch):
            self.arena.used[r] = max(self.arena.used[r], end)
        self.length = end
        self.keys = self.arena.keys[rows, :, :end]
        self.values = self.arena.values[rows, :, :end]
        self.is_initialized = True
        return self.keys, self.values

    def views(self, lengths: list[int]) -> list[KVView]:
        """Each batch row's view, cut to its own length (rows were right-padded to one width)."""
        for i, n in enumerate(lengths):  # positions beyond a row's length held padding: free them
            self.arena.used[self.row_offset + i] = n
        return [KVView(self.arena, self.row_offset + i, n) for i, n in enumerate(lengths)]


class GatherLayer(DynamicLayer):
    """Rows with *different* cached prefixes (other prompts, other nodes) in one batch.

    Row ``i``'s prefix (length ``L_i``) is copied to positions ``[0, L_i)`` of a new arena (one indexed copy for all
    the rows that live in one source arena, as the rows of one earlier batch do) and the new positions of every row
    are written after the longest prefix, ``[P, P + S)``; the caller's attention mask hides the gap ``[L_i, P)`` (it
    holds finite values: arenas start zeroed) and its position ids continue each row at ``L_i``. After the forward,
    :meth:`views` moves each row's new positions down to follow its own prefix (one indexed copy), so every context
    is again a contiguous view that later steps extend in place. Gathering costs one copy of each prefix: measured by
    ``python -m benchmarks.throughput``.
    """

    def __init__(self, bases: list[KVView | None], max_positions: int = 2**31) -> None:
        super().__init__()
        self.bases, self.max_positions = bases, max_positions
        self.prefix = max((b.length for b in bases if b is not None), default=0)
        self.length = self.prefix
        self.arena: Arena | None = None
        self.is_initialized = True
        self.keys = self.values = None

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        batch, new = key_states.shape[0], key_states.shape[2]
        start, end = self.prefix, self.prefix + new
        arena = Arena.empty(key_states, batch, min(self.max_positions, end + GATHER_SLACK))
        if start:  # every row's prefix in one copy per source arena (rows of one batch share theirs)
            for source, rows, slots in _by_arena(self.bases):
                width = min(start, source.capacity)
                index = torch.tensor(rows)
                arena.keys[slots, :, :width] = source.keys[:, :, :width].index_select(0, index)
                arena.values[slots, :, :width] = source.values[:, :, :width].index_select(0, index)
                # positions past a row's own prefix hold another context's keys: finite, and masked by the caller
        arena.keys[:, :, start:end] = key_states
        arena.values[:, :, start:end] = value_states
        self.arena, self.length = arena, end
        self.keys, self.values = arena.keys[:, :, :end], arena.values[:, :, :end]
        return self.keys, self.values

    def views(self, lengths: list[int]) -> list[KVView]:
        """Each row's view: its prefix, then its own ``lengths[i]`` new positions moved down to follow it (one indexed
        copy for every row that ends before the longest prefix)."""
        starts = [base.length if base is not None else 0 for base in self.bases]
        rows, dst, src = [], [], []
        for i, (start, n) in enumerate(zip(starts, lengths, strict=True)):
            if start < self.prefix:
                rows += [i] * n
                dst += range(start, start + n)
                src += range(self.prefix, self.prefix + n)
        if rows:
            rows_t, dst_t, src_t = torch.tensor(rows), torch.tensor(dst), torch.tensor(src)
            self.arena.keys[rows_t, :, dst_t] = self.arena.keys[rows_t, :, src_t]
            self.arena.values[rows_t, :, dst_t] = self.arena.values[rows_t, :, src_t]
        out = []
        for i, (start, n) in enumerate(zip(starts, lengths, strict=True)):
            self.arena.used[i] = start + n
            out.append(KVView(self.arena, i, start + n))
        return out


def _by_arena(bases: list[KVView | None]) -> list[tuple[Arena, list[int], list[int]]]:
    """The rows of ``bases`` grouped by the arena they live in: ``(arena, its rows, their slots in the batch)``."""
    groups: dict[int, tuple[Arena, list[int], list[int]]] = {}
    for slot, base in enumerate(bases):
        if base is not None and base.length:
            entry = groups.setdefault(id(base.arena), (base.arena, [], []))
            entry[1].append(base.row)
            entry[2].append(slot)
    return list(groups.values())


def gather_cache(bases: list[tuple[KVView, ...] | None], n_layers: int, max_positions: int) -> DynamicCache:
    """A ``DynamicCache`` of :class:`GatherLayer` s for rows with per-row prefixes (a view per layer, or None)."""
    cache = DynamicCache()
    cache.layers = [GatherLayer([b[layer] if b is not None else None for b in bases], max_positions)
                    for layer in range(n_layers)]
    return cache


def arena_cache(base: tuple[KVView, ...] | None, n_layers: int, max_positions: int) -> DynamicCache:
    """A ``DynamicCache`` of :class:`ArenaLayer` s, every row starting from ``base`` (a view per layer)."""
    cache = DynamicCache()
    cache.layers = [ArenaLayer(base[i] if base else None, max_positions) for i in range(n_layers)]
    return cache


@dataclass
class CachedState:
    """One model's state after reading a context: its own token ids, a KV view per layer, the next-token
    log-probs in the primary vocabulary ``(V_p,)``, and (token healing) the model's own top next tokens
    ``(ids (k,), log-probs (k,))``."""

    ids: tuple[int, ...]
    kv: tuple[KVView, ...]
    logprobs: torch.Tensor
    top: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the context's own KV positions and log-probs (arena slack not counted)."""
        top = 0 if self.top is None else sum(t.numel() * t.element_size() for t in self.top)
        return sum(v.nbytes for v in self.kv) + self.logprobs.numel() * self.logprobs.element_size() + top


class KVStore:
    """LRU map ``own token ids -> CachedState`` holding at most ``max_bytes`` (by :attr:`CachedState.nbytes`).

    States along a chain share an arena, so the true footprint is about that of the longest
    context per chain, up to twice that for the arena's spare capacity.
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

    def discard(self, ids: tuple[int, ...]) -> None:
        """Drop one entry if present."""
        old = self._entries.pop(ids, None)
        if old is not None:
            self.bytes -= old.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
