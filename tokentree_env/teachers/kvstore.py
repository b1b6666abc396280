"""Per-context model state (KV and next-token log-probs): a pool of KV rows and a byte-bounded LRU.

Every context's keys and values live in one **row** of its model's :class:`KVPool`: slabs of rows by capacity (64,
128, 256, ... positions, up to the model's window), a row holding every layer's keys and values. A context is a
reference ``(capacity, row, length)`` (:class:`KVRef`). A forward (:class:`PooledBatch`):

- **gathers** its rows' prefixes into one padded scratch batch (a slice copy per row: long contiguous runs), into a
  buffer that is reused from forward to forward;
- lets the model append the new positions there (after the longest prefix; the caller masks each row's gap);
- **writes back** each row's new positions: **in place**, after its prefix in its own row, when the prefix ends at
  the row's tip (nothing past it written yet: a chain of contexts, a rollout, a node's first child) and the row
  has room; otherwise into a fresh row, prefix and all (copy on write: a sibling wrote there first; or growth into
  the next capacity).

So a chain's KV is stored once however long it grows, and the rows the LRU frees are reused. (The design before
this one gave every forward's rows a new buffer holding each row's whole prefix again: memory grew with the square of
a path's length, and on this machine touching fresh memory costs a page fault per 4 KiB, which was the largest
single cost of self-play: ``benchmarks/engine_ab.py``.) A row is only ever read up to the length written into it, so
rows are not zeroed. The scratch is zeroed when made and after that only written with a model's keys and values, so
the positions a mask hides hold finite values (a masked weight times a NaN is still NaN).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

DEFAULT_CACHE_BYTES = 256 * 2**20
MIN_CAPACITY = 64
SLACK = 4
"""Spare positions a fresh row gets beyond what it holds (a chain grows into them in place)."""
SPARE_ROWS = 64
"""Rows a slab reserves beyond what the cache's byte bound can keep alive (a batch's new rows, before eviction)."""


class KVPool:
    """One model's KV rows: per capacity ``C``, a slab ``(R, layers, 2, heads, C, head_dim)`` (keys, values); per row,
    how many positions are written (``used``); rows the cache lets go are reused.

    On the CPU a slab reserves the rows that ``reserve_bytes`` (the cache's bound) can keep alive, as untouched
    memory: a row's pages are touched when it is first written (pages never touched cost nothing);
    on an accelerator, where memory is allocated when asked for, a slab starts small. Past its rows a slab doubles.
    Every layer of a model has the same number of key-value heads and head size (as in every transformers model
    this library loads).
    """

    def __init__(self, n_layers: int, max_positions: int, reserve_bytes: int = 0) -> None:
        self.n_layers, self.max_positions, self.reserve_bytes = n_layers, max_positions, reserve_bytes
        self.slabs: dict[int, torch.Tensor] = {}
        self.used: dict[int, list[int]] = {}
        self.free: dict[int, list[int]] = {}
        self.fresh: dict[int, int] = {}  # per slab: rows below this were handed out before
        self._scratch: torch.Tensor | None = None

    def capacity_for(self, positions: int) -> int:
        """The smallest capacity holding ``positions`` (at most the model's window)."""
        capacity = MIN_CAPACITY
        while capacity < positions:
            capacity *= 2
        return max(min(capacity, self.max_positions), min(positions, self.max_positions))

    def row_bytes(self, capacity: int) -> int:
        return self.slabs[capacity][0].nbytes

    def alloc(self, capacity: int, like: torch.Tensor) -> int:
        """A free row of ``capacity`` (``like``: a ``(layers, 2, B, heads, T, head_dim)`` tensor of the model's)."""
        if capacity not in self.slabs:
            _, _, _, heads, _, dim = like.shape
            shape = (self.n_layers, 2, heads, capacity, dim)
            fits = self.reserve_bytes // (like.element_size() * math.prod(shape))
            rows = fits + SPARE_ROWS if like.device.type == "cpu" else max(1, min(SPARE_ROWS, fits))
            self.slabs[capacity] = like.new_empty((rows, *shape))
            self.used[capacity], self.free[capacity], self.fresh[capacity] = [0] * rows, [], 0
        if self.free[capacity]:
            row = self.free[capacity].pop()
        else:
            slab, row = self.slabs[capacity], self.fresh[capacity]
            if row == slab.shape[0]:  # past the reserve: double the slab (references are rows, so they stay valid)
                grown = slab.new_empty((2 * row, *slab.shape[1:]))
                grown[:row] = slab
                self.slabs[capacity], slab = grown, grown
                self.used[capacity] += [0] * row
            self.fresh[capacity] = row + 1  # not zeroed: a row is only read up to the length written into it
        self.used[capacity][row] = 0
        return row

    def release(self, capacity: int, row: int) -> None:
        self.used[capacity][row] = 0
        self.free[capacity].append(row)

    def scratch(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A reused buffer of ``shape`` (zeroed when first made; after that it holds earlier keys and values)."""
        size = 1
        for n in shape:
            size *= n
        buffer = self._scratch
        if buffer is None or buffer.numel() < size or buffer.dtype != like.dtype or buffer.device != like.device:
            grown = size if buffer is None else max(size, 2 * buffer.numel())
            self._scratch = buffer = like.new_zeros(grown)
        return buffer[:size].view(shape)


class KVRef(NamedTuple):
    """One context's KV: the first ``length`` positions of row ``row`` of ``pool``'s slab of ``capacity``."""

    pool: KVPool
    capacity: int
    row: int
    length: int


class PooledLayer(DynamicLayer):
    """Layer ``index`` of a :class:`PooledBatch` (a ``DynamicLayer`` whose keys and values live in the batch)."""

    def __init__(self, batch: PooledBatch, index: int) -> None:
        super().__init__()
        self.batch, self.index = batch, index
        self.length = batch.prefix
        self.is_initialized = True

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.keys, self.values = self.batch.append(self.index, key_states, value_states)
        self.length = self.keys.shape[2]
        return self.keys, self.values


class PooledBatch:
    """One forward's KV: row ``i`` continues ``bases[i]`` (a :class:`KVRef`, or None for a fresh context) by up to
    ``width`` new positions. :meth:`cache` is the model's cache; :meth:`commit` writes the new positions back."""

    def __init__(self, pool: KVPool, bases: list[KVRef | None], width: int) -> None:
        self.pool, self.bases, self.width = pool, bases, width
        self.prefix = max((b.length for b in bases if b is not None), default=0)
        self.kv: torch.Tensor | None = None  # (layers, 2, B, heads, prefix + width, head_dim)
        base = bases[0] if len(bases) == 1 else None
        self.direct = base is not None and pool.used[base.capacity][base.row] == base.length \
            and base.length + width <= base.capacity
        """One row whose prefix ends at its row's tip, with room: the forward reads and writes that row itself."""

    def cache(self) -> DynamicCache:
        cache = DynamicCache()
        cache.layers = [PooledLayer(self, i) for i in range(self.pool.n_layers)]
        return cache

    def append(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.prefix, self.prefix + keys.shape[2]
        if self.direct:
            base = self.bases[0]
            slab = self.pool.slabs[base.capacity]
            slab[base.row, layer, 0, :, start:end] = keys[0]
            slab[base.row, layer, 1, :, start:end] = values[0]
            return slab[base.row:base.row + 1, layer, 0, :, :end], slab[base.row:base.row + 1, layer, 1, :, :end]
        if self.kv is None:
            self._gather(keys)
        self.kv[layer, 0, :, :, start:end] = keys
        self.kv[layer, 1, :, :, start:end] = values
        return self.kv[layer, 0, :, :, :end], self.kv[layer, 1, :, :, :end]

    def _gather(self, like: torch.Tensor) -> None:
        """Every row's own prefix into the scratch batch, one slice copy a row (each layer's keys and values for a head
        are one contiguous run in the slab and the batch: a row copy moves long runs, where one indexed copy of many
        rows moves short ones, and twice). Past a row's own prefix the batch holds earlier forwards' keys and values:
        finite (the scratch starts zeroed), and masked."""
        batch, heads, _, dim = like.shape
        self.kv = kv = self.pool.scratch((self.pool.n_layers, 2, batch, heads, self.prefix + self.width, dim), like)
        slabs = self.pool.slabs
        for slot, base in enumerate(self.bases):
            if base is not None and base.length:
                kv[:, :, slot, :, :base.length] = slabs[base.capacity][base.row, :, :, :, :base.length]

    def commit(self, lengths: list[int]) -> list[KVRef]:
        """Write each row's ``lengths[i]`` new positions back to the pool (in place where its prefix ends at its row's
        tip and the row has room, else into a fresh row with its prefix); each row's context."""
        pool = self.pool
        if self.direct:
            base = self.bases[0]
            pool.used[base.capacity][base.row] = base.length + lengths[0]
            return [KVRef(pool, base.capacity, base.row, base.length + lengths[0])]
        moves: dict[int, tuple[list[int], list[int], list[int], list[int]]] = {}
        out, prefix, used = [], self.prefix, pool.used
        for slot, (base, n) in enumerate(zip(self.bases, lengths, strict=True)):
            if base is not None and used[base.capacity][base.row] == base.length and base.length + n <= base.capacity:
                capacity, row, start = base.capacity, base.row, base.length  # in place: its new positions only
                rows, dst, slots, src = moves.setdefault(capacity, ([], [], [], []))
                rows += [row] * n
                dst += range(start, start + n)
                slots += [slot] * n
                src += range(prefix, prefix + n)
            else:  # a fresh row: its prefix, then its new positions (two slices; the slab read after alloc grows it)
                start = base.length if base is not None else 0
                capacity = pool.capacity_for(start + n + SLACK)
                row = pool.alloc(capacity, self.kv)
                slab = pool.slabs[capacity]
                if start:
                    slab[row, :, :, :, :start] = self.kv[:, :, slot, :, :start]
                slab[row, :, :, :, start:start + n] = self.kv[:, :, slot, :, prefix:prefix + n]
            used[capacity][row] = start + n
            out.append(KVRef(pool, capacity, row, start + n))
        rows_first, device = self.kv.permute(2, 0, 1, 3, 4, 5), self.kv.device
        for capacity, (rows, dst, slots, src) in moves.items():  # the rows written in place, a slab at a time
            if not rows:
                continue
            if src.count(prefix) == len(src):  # only the first new column moves (a token a row): select its rows
                source = rows_first[:, :, :, :, prefix].index_select(0, torch.tensor(slots, device=device))
            else:
                source = rows_first[torch.tensor(slots, device=device), :, :, :, torch.tensor(src, device=device)]
            pool.slabs[capacity][torch.tensor(rows, device=device), :, :, :, torch.tensor(dst, device=device)] = source
        return out


class OwnLogits(NamedTuple):
    """A forward's logits in the model's own vocabulary ``(E, V_t)``, kept in place of its rows' top ``k`` tokens
    where they take no more memory (small vocabularies): a row's top tokens are computed when read, and token healing
    reads few (35 of 35,000 in ``benchmarks/engine_ab.py``)."""

    logits: torch.Tensor
    k: int

    @staticmethod
    def top_nbytes(k: int) -> int:
        """Bytes of a row's top ``k`` tokens: int64 ids and float32 log-probs."""
        return k * (8 + 4)


class CachedState:
    """One model's state after reading a context: its own token ids ``ids``, its KV ``kv`` (:class:`KVRef`), the
    next-token log-probs in the primary vocabulary (:attr:`logprobs`), and (token healing) the model's own top next
    tokens (:attr:`top`).

    ``logprobs``: the state's own ``(V_p,)``; or, with ``row``, its forward's ``(E, V_p)``, of which row ``row`` is this
    state's (and ``tops``, the forward's ``(ids (E, k), log-probs (E, k))`` top tokens, or its :class:`OwnLogits`,
    from which a row's are computed when read). A forward's states share its tensors and read their row only when
    asked: a forward that caches every prefix makes many states, and few of them are ever read (a state that a later
    context is read from needs only its KV).
    """

    __slots__ = ("_logprobs", "_row", "ids", "kv", "tops")

    def __init__(self, ids: tuple[int, ...], kv: KVRef, logprobs: torch.Tensor,
                 tops: tuple[torch.Tensor, torch.Tensor] | OwnLogits | None = None, row: int | None = None) -> None:
        if tops is not None and row is None:
            raise ValueError("CachedState: top tokens come from a forward's batch; give the state's row too")
        self.ids, self.kv, self._logprobs, self._row, self.tops = ids, kv, logprobs, row, tops

    @property
    def logprobs(self) -> torch.Tensor:
        """The next-token log-probs in the primary vocabulary, ``(V_p,)``."""
        return self._logprobs if self._row is None else self._logprobs[self._row]

    @property
    def top(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The model's own top next tokens after this context, ``(ids (k,), log-probs (k,))``."""
        if isinstance(self.tops, OwnLogits):  # the row's log-softmax and top-k: bit for bit the whole batch's row
            own = torch.log_softmax(self.tops.logits[self._row], dim=-1).topk(self.tops.k)
            return own.indices, own.values
        return None if self.tops is None else (self.tops[0][self._row], self.tops[1][self._row])

    @property
    def own_nbytes(self) -> int:
        """Bytes of its log-probs (and healing top tokens), its row's share of shared tensors: what it holds beside
        its pool row."""
        lp = self._logprobs
        if isinstance(self.tops, OwnLogits):  # counted as the top tokens it stands for (no more than its logits):
            top = OwnLogits.top_nbytes(self.tops.k)  # the cache evicts as it did when the tokens were kept
        else:
            top = 0 if self.tops is None else sum(t.shape[-1] * t.element_size() for t in self.tops)
        return lp.shape[-1] * lp.element_size() + top


class KVStore:
    """LRU map ``own token ids -> CachedState`` holding at most ``max_bytes``.

    Bytes are those the entries keep alive: each pool row their states point into, counted once, whole (states along
    a chain share a row), plus each entry's log-probs. A row no entry points into any more goes back to its pool.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._entries: OrderedDict[tuple[int, ...], CachedState] = OrderedDict()
        self._rows: dict[tuple[int, int, int], int] = {}  # (pool, capacity, row) -> entries pointing into it

    def get(self, ids: tuple[int, ...]) -> CachedState | None:
        state = self._entries.get(ids)
        if state is not None:
            self._entries.move_to_end(ids)
        return state

    def put(self, state: CachedState) -> None:
        self.put_many([state])

    def put_many(self, states: list[CachedState], committed: list[KVRef] = ()) -> None:
        """Add ``states`` (all of them before anything is evicted: a new state may share the row of an old one).
        ``committed``: the rows a forward wrote; one no state points into (a row whose states a longer row's
        replaced, in a forward that caches every prefix) goes back to its pool."""
        for state in states:  # every new state's row held first: an entry replaced must not free a row one uses
            self._hold((id(state.kv.pool), state.kv.capacity, state.kv.row), state.kv)
        for state in states:
            self.discard(state.ids)
            self._entries[state.ids] = state
            self.bytes += state.own_nbytes
        for ref in committed:
            if (id(ref.pool), ref.capacity, ref.row) not in self._rows:
                ref.pool.release(ref.capacity, ref.row)
        while self.bytes > self.max_bytes and len(self._entries) > 1:
            self.discard(next(iter(self._entries)))

    @contextmanager
    def pinned(self, states: list[CachedState]) -> Iterator[None]:
        """Inside the block the rows of ``states`` are not given back to their pool, even if their entries are
        evicted (forwards run one after another that read them)."""
        keys = [(id(s.kv.pool), s.kv.capacity, s.kv.row) for s in states]
        for key, state in zip(keys, states, strict=True):
            self._hold(key, state.kv)
        try:
            yield
        finally:
            for key, state in zip(keys, states, strict=True):
                self._drop(key, state.kv)

    def _hold(self, key: tuple, ref: KVRef) -> None:
        if self._rows.get(key, 0) == 0:
            self.bytes += ref.pool.row_bytes(ref.capacity)
        self._rows[key] = self._rows.get(key, 0) + 1

    def _drop(self, key: tuple, ref: KVRef) -> None:
        self._rows[key] -= 1
        if self._rows[key] == 0:
            del self._rows[key]
            self.bytes -= ref.pool.row_bytes(ref.capacity)
            ref.pool.release(ref.capacity, ref.row)

    def discard(self, ids: tuple[int, ...]) -> None:
        """Drop one entry if present."""
        old = self._entries.pop(ids, None)
        if old is None:
            return
        self.bytes -= old.own_nbytes
        self._drop((id(old.kv.pool), old.kv.capacity, old.kv.row), old.kv)

    def clear(self) -> None:
        for ids in list(self._entries):
            self.discard(ids)

    def __len__(self) -> int:
        return len(self._entries)
