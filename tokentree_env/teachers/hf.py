"""``HFTeacher``: any transformers causal LM as a teacher (or as the primary proposer).

Speed (the physical limit is the forward passes):

- a context already read is a cache hit: no model call (KV and next-token log-probs kept in
  a byte-bounded LRU, keyed by the model's own token ids);
- a new context is read from the cached state of its longest cached prefix (the parent's
  ids, or a few tokens back when a foreign tokenizer re-merges the end of the text), so the
  prompt is never re-encoded;
- contexts that share a cached prefix are forwarded together in one batch, right-padded (no
  mask needed: under causal attention padding at the end affects only the padded positions).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

from tokentree_env.errors import ContextTooLongError, ModelOutputError
from tokentree_env.models.generation import greedy_ids
from tokentree_env.models.loader import LoadedModel, load_model
from tokentree_env.teachers.alignment import (
    TokenHealer,
    piece_texts,
    piece_to_primary_map,
    same_tokenizer,
    to_primary_logprobs,
)
from tokentree_env.teachers.base import Context, Teacher
from tokentree_env.teachers.cached_greedy import cached_greedy
from tokentree_env.teachers.kvstore import (
    DEFAULT_CACHE_BYTES,
    CachedState,
    KVPool,
    KVRef,
    KVStore,
    OwnLogits,
    PooledBatch,
)

HEAL_TOP_K = 256
"""A foreign teacher's own top next tokens kept per cached state, for token healing (the tail beyond holds
negligible mass)."""
PREFIX_LOOKBACK = 4
"""How many tokens back from the end a foreign-tokenizer teacher looks for a cached prefix."""

FEWEST_STEPS_INSTRUCTION = "Answer in the fewest steps. Give only the answer."
PLAIN_CAUSAL = frozenset({"llama", "gpt2", "qwen2", "gemma3_text"})
"""Architectures whose ``sdpa`` mask (read in transformers 5) is causal plus padding, within any sliding window:
:meth:`HFTeacher._mask` builds theirs itself."""


class HFTeacher(Teacher):
    """A transformers causal LM giving next-token log-probs in the primary's vocabulary.

    **Its own format.** A teacher with a chat template reads a prompt as the user turn of its own template (after
    ``system_prompt``) with the assistant turn begun, and the answer so far after it, in its reference answers and
    its expansions alike (:meth:`prompt_format`); a base model reads the bare prompt. A teacher that shares the
    primary's tokenizer reads the primary's own ids (one forward can serve both roles), and so the primary's format
    (no system prompt) in its reference answers too.

    Args:
        model: a hub id, local path, ``zoo:NAME``, or a :class:`LoadedModel`.
        name: display name (default: the model spec).
        cache_bytes: bound of the KV/log-prob LRU cache, in bytes.
        system_prompt: instruction in a chat model's own format (the seed's "use the fewest steps"; used only when
            the tokenizer has a chat template and the teacher reads its own format).
    """

    def __init__(self, model: str | LoadedModel, *, name: str | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES,
                 system_prompt: str = FEWEST_STEPS_INSTRUCTION, heal: bool = True,
                 device: str | None = None, dtype=None) -> None:
        super().__init__()
        self.lm = model if isinstance(model, LoadedModel) else load_model(model, device=device, dtype=dtype)
        self.name = name or self.lm.name
        self.model, self.tokenizer = self.lm.model, self.lm.tokenizer
        self.max_positions = self.lm.max_positions
        self.n_layers = self.model.config.get_text_config().num_hidden_layers
        self.store = KVStore(cache_bytes)
        self.pool = KVPool(self.n_layers, self.max_positions, cache_bytes)
        self.system_prompt = system_prompt
        self.shares_primary_tokenizer = True
        self.heal = heal
        self.batch_across = True
        """Forward contexts with different cached prefixes (other prompts) in one padded batch."""
        self.every_prefix = False
        self._prompt_lengths: dict[str, int] = {}
        self._formats: dict[tuple, str] = {}
        """Cache a state for every prefix a forward passes, and read a context from its longest cached prefix: for a
        model that reads whole paths now and then (the judge), so that a path shares its siblings' beginning."""
        self._healer: TokenHealer | None = None
        self._map: torch.Tensor | None = None
        self._primary_size = len(self.tokenizer)

    @property
    def parameters(self) -> int:
        """The model's parameter count (embeddings included), the weight of its tokens in compute parity."""
        if getattr(self, "_parameters", None) is None:
            self._parameters = sum(p.numel() for p in self.model.parameters())
        return self._parameters

    # -- vocabulary ------------------------------------------------------------------------
    def bind(self, primary_tokenizer) -> None:
        """Use ``primary_tokenizer``'s vocabulary; build the piece map when it differs from ours."""
        self.shares_primary_tokenizer = same_tokenizer(self.tokenizer, primary_tokenizer)
        self._primary_size = max(len(primary_tokenizer), max(primary_tokenizer.get_vocab().values()) + 1)
        self._map = self._healer = None
        if not self.shares_primary_tokenizer:
            texts = piece_texts(self.tokenizer)
            self._map = piece_to_primary_map(self.tokenizer, primary_tokenizer, texts)
            self._healer = TokenHealer(texts, primary_tokenizer) if self.heal else None
        self.store.clear()

    def prompt_format(self, prompt: str) -> tuple[str, bool]:
        """How this model reads ``prompt``: the text, and whether its tokenizer adds special tokens to it (not to a
        chat template's text, which writes its own). A model that shares the primary's tokenizer reads the primary's
        format (its chat template without a system prompt: :func:`tokentree_env.models.prompts.prompt_text`)."""
        from tokentree_env.models.prompts import prompt_text

        if not self._chat:
            return prompt, True
        key = (prompt, self.system_prompt, self.shares_primary_tokenizer)
        if key not in self._formats:  # a chat template is rendered once per prompt, not once per node
            if self.shares_primary_tokenizer or not self.system_prompt:
                self._formats[key] = prompt_text(self.tokenizer, prompt)
            else:
                messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": prompt}]
                self._formats[key] = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                                        tokenize=False)
        return self._formats[key], False

    def own_ids(self, context: Context) -> tuple[int, ...]:
        """The context in this model's own tokens and format (never another model's ids): the primary's ids when it
        shares the primary's tokenizer; else its own format of the prompt, then the answer so far."""
        if self.shares_primary_tokenizer:
            ids = context.ids
        elif context.prompt is not None:
            head, special = self.prompt_format(context.prompt)
            ids = self.encode(head + context.answer, special)
        else:
            ids = self.encode(context.text)
        if len(ids) > self.max_positions:
            raise ContextTooLongError(
                f"context of {len(ids)} tokens is longer than the window of model {self.name!r} "
                f"({self.max_positions} positions); lower max_new_tokens or use a shorter prompt")
        return ids

    def encode(self, text: str, special: bool = True) -> tuple[int, ...]:
        """This model's own ids of ``text`` (with its tokenizer's special tokens when ``special``), as its tokenizer's
        plain ``__call__`` gives them (no truncation or padding); through the Rust backend directly when there is one
        (``__call__`` costs ~15x more, on the hot path of every expansion)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return tuple(backend.encode(text, add_special_tokens=special).ids)
        return tuple(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    # -- next-token distributions ------------------------------------------------------------
    def next_logprobs(self, contexts: Sequence[Context]) -> torch.Tensor:
        """Next-token log-probs in the primary's vocabulary for each context, ``(B, V_p)``; token-healed
        where a foreign tokenizer's context ends inside a token it would merge (:class:`TokenHealer`)."""
        rows = [self.own_ids(context) for context in contexts]
        owners = [context.owner for context in contexts]
        floors = [self._prompt_length(c) for c in contexts] if self.every_prefix else None
        out = [state.logprobs for state in self._states(rows, owners, floors)]
        if self._healer is not None:
            pending = [i for i, ids in enumerate(rows) if len(ids) > 2 and self._healer.extendable(ids[-1])]
            prefixes = self._states([rows[i][:-1] for i in pending], [owners[i] for i in pending])
            for i, state in zip(pending, prefixes, strict=True):
                out[i] = self._healer.heal(rows[i][-1], state.top, out[i])
        return torch.stack(out)

    def _prompt_length(self, context: Context) -> int:
        """How many of a context's own ids are its prompt (a deep prefix lookup never reaches below: another prompt's
        cached beginning would make what an episode is charged depend on what others read before it)."""
        if context.prompt is None:
            return len(context.ids) - 1
        if context.prompt not in self._prompt_lengths:
            self._prompt_lengths[context.prompt] = len(self.prompt_ids(context.prompt))
        return self._prompt_lengths[context.prompt]

    def _states(self, rows: Sequence[tuple[int, ...]], owners: Sequence | None = None,
                floors: Sequence[int] | None = None) -> list[CachedState]:
        """The cached state after each row of own ids: a hit costs nothing; the misses are forwarded in one batch
        (rows sharing a cached prefix extend it together; rows with different prefixes, e.g. other prompts in
        lockstep play, are gathered into one padded batch)."""
        results: list[CachedState | None] = [None] * len(rows)
        misses: dict[tuple[int, ...], CachedState | None] = {}
        owner_of: dict[tuple[int, ...], object] = {}  # each miss is charged to the first context that asked for it
        for i, ids in enumerate(rows):
            hit = self.store.get(ids)
            if hit is not None:
                results[i] = hit
            elif ids not in misses:
                misses[ids] = self._cached_prefix(ids, floors[i] if floors is not None else None)
                owner_of[ids] = owners[i] if owners is not None else None
        states = self._forward(list(misses.items()), [owner_of[ids] for ids in misses], self.every_prefix) \
            if misses else {}
        for i, ids in enumerate(rows):
            if results[i] is None:
                results[i] = states[ids]
        return results

    def _cached_prefix(self, ids: tuple[int, ...], floor: int | None = None) -> CachedState | None:
        """The state of the longest cached prefix of ``ids`` a few tokens back (``every_prefix``: down to ``floor``
        tokens, the prompt)."""
        if floor is not None:
            return next((s for k in range(len(ids) - 1, max(floor, 1) - 1, -1) if (s := self.store.get(ids[:k]))), None)
        lookback = 1 if self.shares_primary_tokenizer else PREFIX_LOOKBACK
        for cut in range(1, min(lookback, len(ids) - 1) + 1):
            state = self.store.get(ids[:-cut])
            if state is not None:
                return state
        return None

    @torch.inference_mode()  # cheaper per op than no_grad; cached KV is only read inside it again
    def _forward(self, items: list[tuple[tuple[int, ...], CachedState | None]], owners: Sequence,
                 every: bool = False) -> dict[tuple[int, ...], CachedState]:
        """One batched forward of each row's suffix after its cached prefix (``base``; None: from the start), rows
        with the same ids once. Rows whose prefixes differ (other prompts, other nodes) are gathered into one padded
        batch (:class:`~tokentree_env.teachers.kvstore.PooledBatch`): the gap is masked and positions continue each
        row's own prefix; rows that share one prefix need neither (``batch_across`` off: one batch per prefix).
        Right padding repeats each row's last token: under causal attention it only affects the padded positions, and
        it is not the pad id that some models warn about without a mask. Caches and returns the states; each row's
        tokens are charged to its owner."""
        owners = dict(zip((ids for ids, _ in items), owners, strict=True))
        items = list(dict(items).items())
        rows, bases = [ids for ids, _ in items], [base for _, base in items]
        starts = [len(base.ids) if base else 0 for base in bases]
        lengths = [len(r) - s for r, s in zip(rows, starts, strict=True)]
        width, prefix = max(lengths), max(starts)
        groups: dict = {}
        for ids, base in items:
            groups.setdefault(base.ids if base else None, []).append((ids, base))
        if len(groups) > 1 and (prefix + width > self.max_positions or not self.batch_across):  # one batch per prefix
            with self.store.pinned([base for base in bases if base is not None]):  # no group evicts another's base
                return {k: v for group in groups.values()
                        for k, v in self._forward(group, [owners[ids] for ids, _ in group], every).items()}
        suffix = torch.tensor([list(r[s:]) + [r[-1]] * (width - n) for r, s, n in zip(rows, starts, lengths, strict=True)])
        batch = PooledBatch(self.pool, [base.kv if base else None for base in bases], width)
        device, extra = self.model.device, {}
        if len(groups) > 1:
            at, begin, new = torch.arange(prefix + width), torch.tensor(starts)[:, None], torch.tensor(lengths)[:, None]
            keep = (at < begin) | ((at >= prefix) & (at < prefix + new))  # (B, P + S): prefix and new tokens
            positions = torch.tensor(starts)[:, None] + torch.arange(width)[None, :]  # (B, S)
            extra = {"attention_mask": self._mask(keep, prefix, width).to(device), "position_ids": positions.to(device)}
        out = self.model(input_ids=suffix.to(device), cache=batch.cache(), use_cache=True, **extra)
        return self._finish(rows, lengths, out.logits, batch, [owners[r] for r in rows], every)

    def _mask(self, keep: torch.Tensor, prefix: int, width: int) -> torch.Tensor:
        """The attention mask of a gathered batch (``keep``: ``(B, P + S)``, the positions each row reads). For the
        architectures in :data:`PLAIN_CAUSAL` under ``sdpa``, where the mask is causal and padding only (no sliding
        window or chunk that the batch reaches), the 4D boolean mask transformers would build from ``keep``, built here
        in three ops (transformers' general mask builder costs about a tenth of a small model's forward); else, or when
        nothing is masked (transformers then passes no mask at all), ``keep`` itself, for transformers to build."""
        config = self.model.config.get_text_config()
        windows = [w for w in (getattr(config, "sliding_window", None), getattr(config, "attention_chunk_size", None))
                   if w is not None]
        reaches_window = prefix + width > min(windows, default=prefix + width)
        if (config.model_type not in PLAIN_CAUSAL or config._attn_implementation != "sdpa" or reaches_window
                or getattr(config, "use_bidirectional_attention", False) or bool(keep.all())):
            return keep.long()
        causal = torch.arange(prefix + width)[None, :] <= prefix + torch.arange(width)[:, None]  # (S, P + S)
        return (keep[:, None, :] & causal[None])[:, None]  # (B, 1, S, P + S): True reads

    def _finish(self, rows, lengths, logits_all, batch: PooledBatch, owners,
                every: bool = False) -> dict[tuple[int, ...], CachedState]:
        """Read each row's last real position (``every``: each of its new positions, one state per prefix), map it
        into the primary vocabulary, cache and return the states. Each row is charged the tokens it forwarded, to
        its owner (padding is not counted)."""
        charged: dict = {}
        for n, owner in zip(lengths, owners, strict=True):
            charged[owner] = charged.get(owner, 0) + n
        self.counters.call(charged)
        for owner, n in charged.items():
            self.counters.add(forwarded=n, owner=owner)
        if every:  # one entry per new position: (row, position in the batch, the prefix it ends)
            entries = [(i, j, len(r) - n + j + 1) for i, (r, n) in enumerate(zip(rows, lengths, strict=True))
                       for j in range(n)]
        else:
            entries = [(i, n - 1, len(r)) for i, (r, n) in enumerate(zip(rows, lengths, strict=True))]
        logits = logits_all[torch.tensor([e[0] for e in entries]), torch.tensor([e[1] for e in entries])]  # (E, V_t)
        logits = logits.float().cpu()
        if not torch.isfinite(logits.sum()) and not torch.isfinite(logits).all():  # a sum is 10x cheaper to check
            raise ModelOutputError(f"model {self.name!r} returned NaN/inf logits; check its weights and dtype")
        if self._map is None:  # rows past the tokenizer (a model vocabulary padded for speed) are not tokens
            logprobs = torch.log_softmax(logits[:, : self._primary_size], dim=-1)
        else:
            logprobs = to_primary_logprobs(logits, self._map, self._primary_size)
        top = None
        if self._healer is not None:  # the model's own top tokens, for healing a context that ends here
            top_k = min(HEAL_TOP_K, logits.shape[-1])
            if logits.shape[-1] * logits.element_size() <= OwnLogits.top_nbytes(top_k):  # no larger: top when read
                top = OwnLogits(logits, top_k)
            else:
                own = torch.log_softmax(logits, dim=-1).topk(top_k)
                top = (own.indices, own.values)
        refs = batch.commit(lengths)
        states = {}
        for k, (i, _, length) in enumerate(entries):
            ids, ref = rows[i][:length], refs[i]
            kv = ref if length == len(rows[i]) else KVRef(ref.pool, ref.capacity, ref.row, length)
            states[ids] = CachedState(ids, kv, logprobs, top, k)
        self.store.put_many(list(states.values()), committed=refs)
        return states

    def path_logprobs(self, contexts: Sequence[Context], starts: Sequence[int]) -> list[torch.Tensor]:
        """For each context (in this model's own ids), the next-token log-probs after each of its prefixes from
        ``starts[i]`` tokens to the whole, ``(len - start + 1, V_p)``: what scoring a path token by token needs.
        Cached prefixes cost nothing; the rest of each context is read in one batched forward that caches every
        prefix it passes (a sibling path later reads only what differs). Each row is charged to its context's
        owner. Not token-healed: a caller scoring its own tokenization's path needs none."""
        rows = [self.own_ids(c) for c in contexts]
        owners = {}
        misses: dict[tuple[int, ...], CachedState | None] = {}
        have: dict[tuple[int, ...], torch.Tensor] = {}  # held here: the store may evict while a batch is read
        for ids, start, context in zip(rows, starts, contexts, strict=True):
            found = {k: self.store.get(ids[:k]) for k in range(max(1, start), len(ids) + 1)}
            have |= {ids[:k]: state.logprobs for k, state in found.items() if state is not None}
            needed = [k for k, state in found.items() if state is None]
            if needed and ids not in misses:  # from the longest cached prefix, never below the prompt (start)
                base = next((s for k in range(needed[0] - 1, max(start, 1) - 1, -1) if (s := self.store.get(ids[:k]))),
                            None)
                misses[ids], owners[ids] = base, context.owner
        states = self._forward(list(misses.items()), [owners[ids] for ids in misses], every=True) if misses else {}
        have |= {ids: state.logprobs for ids, state in states.items()}
        return [torch.stack([have[ids[:k]] for k in range(max(1, start), len(ids) + 1)])
                for ids, start in zip(rows, starts, strict=True)]

    # -- reference answers -----------------------------------------------------------------
    def answer(self, prompt: str, *, max_new_tokens: int = 64) -> str:
        """Greedy answer; chat models get the fewest-steps system prompt via their chat template.

        A teacher that shares the primary's tokenizer decodes through its own KV store: the prompt is
        encoded once for the answer and the tree alike, and every node on its reference path is
        already cached when the tree expands it.
        """
        return self.answers([prompt], max_new_tokens=max_new_tokens)[0]

    @torch.no_grad()
    def answers(self, prompts: Sequence[str], *, max_new_tokens: int = 64, batch_size: int = 64,
                owners: Sequence[Hashable] | None = None, warm_cache: bool = True) -> list[str]:
        """Greedy answers of many prompts: batched ``generate`` calls (``batch_size`` prompts, left-padded)
        instead of one per prompt; a teacher sharing the primary's tokenizer decodes through its KV store instead
        (``batch_size`` prompts in lockstep), which warms the cache its trees read (``warm_cache`` off: ``generate``
        too, for a measurement that needs only the answers).

        Each row is charged what it forwarded (its prompt, then one token per further step; padding is
        not counted), to ``owners[i]`` as well when given."""
        owners = list(owners) if owners is not None else [None] * len(prompts)
        if self.shares_primary_tokenizer and not self._chat and warm_cache:
            return cached_greedy(self, list(prompts), owners, max_new_tokens, batch_size)
        rows = [self.prompt_ids(p) for p in prompts]
        for prompt, ids in zip(prompts, rows, strict=True):
            if len(ids) >= self.max_positions:
                raise ContextTooLongError(f"prompt {prompt[:40]!r} of {len(ids)} tokens fills the window of {self.name!r}")
        out: list[str] = []
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            budgets = [min(max_new_tokens, self.max_positions - len(r)) for r in batch]
            if min(budgets) == max_new_tokens:
                news = greedy_ids(self.model, self.tokenizer, batch, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size)
            else:  # near the window: left padding would shorten the rows' budgets, so one at a time
                news = [greedy_ids(self.model, self.tokenizer, [r], max_new_tokens=b)[0]
                        for r, b in zip(batch, budgets, strict=True)]
            for ids, new, budget, owner in zip(batch, news, budgets, owners[start:start + batch_size], strict=True):
                generated = min(len(new) + 1, budget)  # + the EOS, when it came within the budget
                self.counters.add(calls=generated, forwarded=len(ids) + generated - 1, generated=generated,
                                  owner=owner)
            out += [self.tokenizer.decode(new, skip_special_tokens=True) for new in news]
        return out

    @property
    def _chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_ids(self, prompt: str) -> list[int]:
        """The model's own input ids for answering ``prompt``: its own format (:meth:`prompt_format`), as its
        expansions read it."""
        text, special = self.prompt_format(prompt)
        return list(self.encode(text, special))

    def mark_updated(self) -> None:
        super().mark_updated()
        self.store.clear()

    def clear_caches(self) -> None:
        self.store.clear()

    def close(self) -> None:
        self.store.clear()
        self.pool = KVPool(self.n_layers, self.max_positions, self.store.max_bytes)
