"""The teacher interface: next-token distributions in the primary's vocabulary, and proposals.

A teacher (and the primary, used as a proposer) answers one question for a batch of contexts:
the log-probabilities of the next token, **in the primary's vocabulary**. From those,
:func:`propose` picks ``k_right`` likely children (the top-k) and ``k_wrong`` deliberately
unlikely ones (uniform over the tail outside the top-p mass, reproducible from a seed).
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Context:
    """A state: the primary-token ids of prompt + generated text, and their decoded text. ``owner`` names the
    episode the context serves (the work of reading it is charged there, :class:`CostCounter`). ``prompt`` and
    ``answer_start`` (where the answer begins in ``text``) let a teacher read the prompt in its own format and the
    answer so far after it (:meth:`~tokentree_env.teachers.hf.HFTeacher.own_ids`); without them it reads ``text``."""

    ids: tuple[int, ...]
    text: str
    owner: Hashable | None = field(default=None, compare=False)
    prompt: str | None = field(default=None, compare=False)
    answer_start: int = field(default=0, compare=False)

    @property
    def answer(self) -> str:
        """The answer so far (the text after the prompt)."""
        return self.text[self.answer_start:]


COST_FIELDS = ("forward_calls", "forwarded_tokens", "generated_tokens")


@dataclass
class CostCounter:
    """Work a model did: batched forward calls, tokens forwarded (padding excluded), tokens generated.

    Work can also be charged to an **owner** (a prompt being prepared, an episode): :meth:`add` with
    ``owner=``, or inside :meth:`charging`, records it in ``ledger[owner]`` as well as in the totals,
    so work done for many owners in one batch is still charged to each (DESIGN §10).
    """

    forward_calls: int = 0
    forwarded_tokens: int = 0
    generated_tokens: int = 0
    ledger: dict[Hashable, dict[str, int]] = field(default_factory=dict, repr=False, compare=False)
    _owner: Hashable | None = field(default=None, repr=False, compare=False)
    _split: bool = field(default=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, calls: int = 0, forwarded: int = 0, generated: int = 0, owner: Hashable | None = None,
            shared: bool = False) -> None:
        """Count work; charge it to ``owner`` (default: the one set by :meth:`charging`, if any). ``shared``: work
        already counted in the totals (one batched call that served several owners), charged to ``owner`` alone.
        Thread-safe: a remote teacher's requests count from its worker threads."""
        owner = owner if owner is not None else self._owner
        with self._lock:
            if not shared:
                self.forward_calls += calls
                self.forwarded_tokens += forwarded
                self.generated_tokens += generated
            if owner is not None:
                entry = self.ledger.setdefault(owner, dict.fromkeys(COST_FIELDS, 0))
                entry["forward_calls"] += calls
                entry["forwarded_tokens"] += forwarded
                entry["generated_tokens"] += generated

    def call(self, owners: Iterable[Hashable | None] = ()) -> None:
        """Count one (batched) call that forwarded rows for ``owners``: in the totals, charged to the owner of
        :meth:`charging`; inside :func:`splitting_calls`, charged instead to each of ``owners`` (shared)."""
        if not self._split:
            self.add(calls=1)
            return
        with self._lock:
            self.forward_calls += 1
        for owner in dict.fromkeys(o for o in owners if o is not None):
            self.add(calls=1, owner=owner, shared=True)

    def charging(self, owner: Hashable | None):
        """Charge the work counted inside the block to ``owner`` (nested blocks: the innermost; ``None`` keeps the
        enclosing owner)."""
        return charging_all([self], owner)

    @property
    def owner(self) -> Hashable | None:
        """The owner :meth:`charging` is charging now (None outside any)."""
        return self._owner

    @contextmanager
    def detached(self) -> Iterator[None]:
        """Inside the block, work that names no owner is charged to none (the totals only): for a batched call whose
        rows' owners are charged one by one."""
        previous, self._owner = self._owner, None
        try:
            yield
        finally:
            self._owner = previous

    def take(self, owner: Hashable) -> dict[str, int]:
        """The work charged to ``owner`` so far, removed from the ledger (zeros if none)."""
        return self.ledger.pop(owner, dict.fromkeys(COST_FIELDS, 0))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COST_FIELDS}


def charging_all(counters, owner: Hashable | None):
    """:meth:`CostCounter.charging` of many counters in one block (one entry for all of them: the env enters it at
    every transition)."""
    return nullcontext() if owner is None else _setting(counters, "_owner", owner)


def splitting_calls(counters):
    """Inside the block, each call of these counters (:meth:`CostCounter.call`) is charged to every owner it forwarded
    rows for: work done in one batch ahead of several episodes charges each the calls that it alone would have made."""
    return _setting(counters, "_split", True)


@contextmanager
def _setting(counters, name: str, value) -> Iterator[None]:
    """Every counter's attribute ``name`` set to ``value`` inside the block, and back after it."""
    counters = list(counters)
    previous = [getattr(counter, name) for counter in counters]
    for counter in counters:
        setattr(counter, name, value)
    try:
        yield
    finally:
        for counter, before in zip(counters, previous, strict=True):
            setattr(counter, name, before)


class Teacher(ABC):
    """A model that reads contexts and gives next-token log-probs in the primary's vocabulary.

    Implementations: :class:`~tokentree_env.teachers.hf.HFTeacher` (any transformers causal LM)
    and :class:`~tokentree_env.teachers.scripted.ScriptedTeacher` (a table, for unit tests).
    ``version`` changes whenever the model's weights change (the primary after training), so
    that what was cached from it can be recomputed.
    """

    name: str = "teacher"
    version: int = 0
    remote: bool = False
    """Its work happens elsewhere (a server): an expansion sends its request concurrently with every other
    teacher's instead of waiting its turn."""
    parameters: int | None = None
    """The model's parameter count (the weight of its forwarded tokens in compute parity, about its FLOPs per token;
    ``agents.compute``); None where unknown (a server's model, unless declared)."""

    def __init__(self) -> None:
        self.counters = CostCounter()

    def bind(self, primary_tokenizer) -> None:
        """Attach the primary's tokenizer (the canonical vocabulary). Called once by the tree."""

    @abstractmethod
    def next_logprobs(self, contexts: Sequence[Context]) -> torch.Tensor:
        """Log-probabilities of the next primary token after each context, ``(B, V_p)``;
        ``-inf`` for tokens the model cannot produce."""

    @abstractmethod
    def answer(self, prompt: str, *, max_new_tokens: int = 64) -> str:
        """The model's greedy answer to ``prompt`` (text after the prompt, without EOS)."""

    def answers(self, prompts: Sequence[str], *, max_new_tokens: int = 64,
                owners: Sequence[Hashable] | None = None) -> list[str]:
        """Greedy answers of many prompts (:meth:`answer` each; models that can batch override this).
        With ``owners`` (one per prompt), each prompt's work is charged to its owner in ``counters``."""
        out = []
        for i, prompt in enumerate(prompts):
            with self.counters.charging(owners[i] if owners is not None else None):
                out.append(self.answer(prompt, max_new_tokens=max_new_tokens))
        return out

    def mark_updated(self) -> None:
        """Declare the weights changed: bump ``version`` and drop cached state."""
        self.version += 1

    def clear_caches(self) -> None:
        """Forget every cached forward (the next read of any context is computed again and charged), e.g. so that a
        benchmark row on shared models starts as cold as on freshly loaded ones."""

    def close(self) -> None:
        """Release models and connections."""


def propose(
    logprobs,
    *,
    k_right: int,
    k_wrong: int,
    top_p: float,
    rng: random.Random,
    allowed=None,
) -> list[tuple[list[int], list[int]]]:
    """Per row of ``logprobs`` ``(M, V)`` (or one row ``(V,)``; a tensor or an array): right children
    (the top ``k_right``) and wrong ones (``k_wrong`` drawn uniformly, without replacement, from the
    tokens outside the smallest set holding ``top_p`` of the mass).

    Only tokens with finite log-prob (and ``allowed``, if given) are proposed. NumPy throughout: at
    zoo sizes a torch op costs more in dispatch than in arithmetic, and this runs once per node.
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    out = propose_many(lp[None, None] if lp.ndim == 1 else lp[None], k_right=k_right, k_wrong=k_wrong, top_p=top_p,
                       rngs=[rng], allowed=allowed)[0]
    return out[0] if lp.ndim == 1 else out


def propose_many(logprobs, *, k_right: int, k_wrong: int, top_p: float, rngs: Sequence[random.Random],
                 allowed=None) -> list[list[tuple[list[int], list[int]]]]:
    """:func:`propose` for many nodes at once: ``logprobs`` ``(N, M, V)``, node ``n``'s wrong children drawn with
    ``rngs[n]`` (model after model, as :func:`propose` draws them); the sorting is done for every node in one call.
    """
    mask = None if allowed is None else np.asarray(allowed, dtype=bool)
    if np.shape(logprobs)[-1] > LARGE_VOCABULARY:  # a node at a time: a whole batch in float64 would be large
        return [[_propose_large(row, k_right=k_right, k_wrong=k_wrong, top_p=top_p, rng=rng) for row in
                 (np.asarray(node, dtype=np.float64) if mask is None
                  else np.where(mask, np.asarray(node, dtype=np.float64), -np.inf))]
                for node, rng in zip(logprobs, rngs, strict=True)]
    lp = np.asarray(logprobs, dtype=np.float64)
    if mask is not None:
        lp = np.where(mask, lp, -np.inf)
    order = np.argsort(-lp, axis=-1, kind="stable")  # (N, M, V)
    sorted_lp = np.take_along_axis(lp, order, axis=-1)
    finite = np.isfinite(sorted_lp).sum(-1).tolist()
    nucleus = ((np.cumsum(np.exp(sorted_lp), axis=-1) < top_p).sum(-1) + 1).tolist()
    heads, flat, (_, models, vocabulary) = order[..., :k_right].tolist(), order.reshape(-1), order.shape
    out = []
    for n, rng in enumerate(rngs):
        node = []
        for m in range(models):
            right = heads[n][m][: finite[n][m]]
            start = max(nucleus[n][m], len(right))
            size = max(0, finite[n][m] - start)  # the tail: ranks start .. finite - 1; only the drawn ranks are read
            drawn = rng.sample(range(size), min(k_wrong, size))  # draws as sampling the tail's list itself would
            offset = (n * models + m) * vocabulary + start  # the tail's first rank in the flat order
            node.append((right, [flat.item(offset + j) for j in drawn]))
        out.append(node)
    return out


LARGE_VOCABULARY = 8192
"""Above this many tokens (real models' 49k-262k vocabularies), proposals sort only the head of the distribution
(:func:`_propose_large`); the zoo's vocabularies take the exact full sort above."""
HEAD = 2048


def _propose_large(lp: np.ndarray, *, k_right: int, k_wrong: int, top_p: float, rng: random.Random):
    """One row's proposals without sorting the whole vocabulary: the nucleus is found within the ``HEAD`` most
    likely tokens (by ``argpartition``; it is all of them when they hold less than ``top_p``), and the wrong
    children are drawn uniformly from the finite tokens outside it, by rejection."""
    finite = np.flatnonzero(np.isfinite(lp))
    head = finite if len(finite) <= HEAD else finite[np.argpartition(-lp[finite], HEAD)[:HEAD]]
    head = head[np.argsort(-lp[head], kind="stable")]
    nucleus = int((np.cumsum(np.exp(lp[head])) < top_p).sum()) + 1
    right = head[:k_right].tolist()
    excluded = set(head[: max(nucleus, len(right))].tolist())
    tail_size = len(finite) - len(excluded)
    wrong: list[int] = []
    while len(wrong) < min(k_wrong, tail_size):
        token = int(finite[rng.randrange(len(finite))])
        if token not in excluded and token not in wrong:
            wrong.append(token)
    return right, wrong
