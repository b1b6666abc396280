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
from tokentree_env.teachers.kvstore import (
    DEFAULT_CACHE_BYTES,
    CachedState,
    GatherLayer,
    KVStore,
    KVView,
    arena_cache,
    gather_cache,
)

HEAL_TOP_K = 256
"""A foreign teacher's own top next tokens kept per cached state, for token healing (the tail beyond holds
negligible mass)."""
PREFIX_LOOKBACK = 4
"""How many tokens back from the end a foreign-tokenizer teacher looks for a cached prefix."""

FEWEST_STEPS_INSTRUCTION = "Answer in the fewest steps. Give only the answer."


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
        self.system_prompt = system_prompt
        self.shares_primary_tokenizer = True
        self.heal = heal
        self.batch_across = True
        """Forward contexts with different cached prefixes (other prompts) in one padded batch."""
        self.every_prefix = False
        self._prompt_lengths: dict[str, int] = {}
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
        if self.shares_primary_tokenizer or not self.system_prompt:
            return prompt_text(self.tokenizer, prompt), False
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": prompt}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), False

    def own_ids(self, context: Context) -> tuple[int, ...]:
        """The context in this model's own tokens and format (never another model's ids): the primary's ids when it
        shares the primary's tokenizer; else its own format of the prompt, then the answer so far."""
        if self.shares_primary_tokenizer:
            ids = context.ids
        elif context.prompt is not None:
            head, special = self.prompt_format(context.prompt)
            ids = self._encode(head + context.answer, special)
        else:
            ids = self._encode(context.text)
        if len(ids) > self.max_positions:
            raise ContextTooLongError(
                f"context of {len(ids)} tokens is longer than the window of model {self.name!r} "
                f"({self.max_positions} positions); lower max_new_tokens or use a shorter prompt")
        return ids

    def _encode(self, text: str, special: bool = True) -> tuple[int, ...]:
        """Own ids of ``text`` (with the tokenizer's special tokens when ``special``); the Rust backend directly when
        there is one (the Python ``__call__`` costs ~15x more, on the hot path of every expansion)."""
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
        bases = {(base.ids if base else None) for base in misses.values()}
        if len(bases) <= 1 or not self.batch_across:
            states = {}
            for base_ids in bases:
                base = self.store.get(base_ids) if base_ids is not None else None
                group = [ids for ids, b in misses.items() if (b.ids if b else None) == base_ids]
                states |= self._forward(base, group, [owner_of[ids] for ids in group], self.every_prefix)
        else:
            states = self._forward_gather(list(misses.items()), [owner_of[ids] for ids in misses], self.every_prefix)
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
    def _forward(self, base: CachedState | None, rows: list[tuple[int, ...]],
                 owners: Sequence | None = None, every: bool = False) -> dict[tuple[int, ...], CachedState]:
        """One batched forward of each row's suffix after ``base`` (rows with the same ids once); caches and
        returns the states; each row's tokens are charged to its owner."""
        owners = dict(zip(rows, owners or [None] * len(rows), strict=True))
        rows = list(owners)
        start = len(base.ids) if base else 0
        lengths = [len(r) - start for r in rows]
        width = max(lengths)
        # right padding repeats each row's last token: under causal attention it only affects the
        # padded positions, and it is not the pad id that some models warn about without a mask
        suffix = torch.tensor([list(r[start:]) + [r[-1]] * (width - len(r) + start) for r in rows])  # (B, S)
        cache = arena_cache(base.kv if base else None, self.n_layers, self.max_positions)
        out = self.model(input_ids=suffix.to(self.model.device), cache=cache, use_cache=True)
        return self._finish(rows, lengths, out.logits, cache, [owners[r] for r in rows], every)

    @torch.inference_mode()
    def _forward_gather(self, items: list[tuple[tuple[int, ...], CachedState | None]],
                        owners: Sequence, every: bool = False) -> dict[tuple[int, ...], CachedState]:
        """One batched forward of rows whose cached prefixes differ: the prefixes are gathered into one padded KV
        batch (:class:`~tokentree_env.teachers.kvstore.GatherLayer`), the gap is masked, positions continue each
        row's own prefix."""
        rows = [ids for ids, _ in items]
        starts = [len(base.ids) if base else 0 for _, base in items]
        lengths = [len(r) - s for r, s in zip(rows, starts, strict=True)]
        width, prefix = max(lengths), max(starts)
        if prefix + width > self.max_positions:  # the padded batch would not fit the window: one batch per prefix
            groups: dict = {}
            for (ids, base), owner in zip(items, owners, strict=True):
                entry = groups.setdefault(base.ids if base else None, (base, [], []))
                entry[1].append(ids)
                entry[2].append(owner)
            return {k: v for base, group, who in groups.values()
                    for k, v in self._forward(base, group, who, every).items()}
        suffix = torch.tensor([list(r[s:]) + [r[-1]] * (width - n) for r, s, n in zip(rows, starts, lengths, strict=True)])
        mask = torch.zeros(len(rows), prefix + width, dtype=torch.long)  # (B, P + S): each row's prefix and new tokens
        for i, (s, n) in enumerate(zip(starts, lengths, strict=True)):
            mask[i, :s], mask[i, prefix:prefix + n] = 1, 1
        positions = torch.tensor(starts)[:, None] + torch.arange(width)[None, :]  # (B, S)
        cache = gather_cache([base.kv if base else None for _, base in items], self.n_layers, self.max_positions)
        device = self.model.device
        out = self.model(input_ids=suffix.to(device), attention_mask=mask.to(device),
                         position_ids=positions.to(device), cache=cache, use_cache=True)
        return self._finish(rows, lengths, out.logits, cache, owners, every)

    def _finish(self, rows, lengths, logits_all, cache, owners, every: bool = False) -> dict[tuple[int, ...], CachedState]:
        """Read each row's last real position (``every``: each of its new positions, one state per prefix), map it
        into the primary vocabulary, cache and return the states. Each row is charged the tokens it forwarded, to
        its owner (padding is not counted)."""
        self.counters.add(calls=1)
        for n, owner in zip(lengths, owners, strict=True):
            self.counters.add(forwarded=n, owner=owner)
        if every:  # one entry per new position: (row, position in the batch, the prefix it ends)
            entries = [(i, j, len(r) - n + j + 1) for i, (r, n) in enumerate(zip(rows, lengths, strict=True))
                       for j in range(n)]
        else:
            entries = [(i, n - 1, len(r)) for i, (r, n) in enumerate(zip(rows, lengths, strict=True))]
        logits = logits_all[torch.tensor([e[0] for e in entries]), torch.tensor([e[1] for e in entries])]  # (E, V_t)
        logits = logits.float().cpu()
        if not torch.isfinite(logits).all():
            raise ModelOutputError(f"model {self.name!r} returned NaN/inf logits; check its weights and dtype")
        if self._map is None:  # rows past the tokenizer (a model vocabulary padded for speed) are not tokens
            logprobs = torch.log_softmax(logits[:, : self._primary_size], dim=-1)
        else:
            logprobs = to_primary_logprobs(logits, self._map, self._primary_size)
        top = None
        if self._healer is not None:  # the model's own top tokens, for healing a context that ends here
            own = torch.log_softmax(logits, dim=-1).topk(min(HEAL_TOP_K, logits.shape[-1]))
            top = (own.indices, own.values)
        per_layer = [layer.views(lengths) if isinstance(layer, GatherLayer) else layer.views([len(r) for r in rows])
                     for layer in cache.layers]
        states = {}
        for k, (i, _, length) in enumerate(entries):
            ids = rows[i][:length]
            kv = tuple(views[i] if length == len(rows[i]) else KVView(views[i].arena, views[i].row, length)
                       for views in per_layer)
            states[ids] = CachedState(ids, kv, logprobs[k], None if top is None else (top[0][k], top[1][k]))
            self.store.put(states[ids])
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
        if len({base.ids if base else None for base in misses.values()}) <= 1:
            base = next(iter(misses.values()), None)
            states = self._forward(base, list(misses), [owners[ids] for ids in misses], every=True) if misses else {}
        else:
            states = self._forward_gather(list(misses.items()), [owners[ids] for ids in misses], every=True)
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
                owners: Sequence[Hashable] | None = None) -> list[str]:
        """Greedy answers of many prompts: batched ``generate`` calls (``batch_size`` prompts, left-padded)
        instead of one per prompt; a teacher sharing the primary's tokenizer decodes through its KV store
        as in :meth:`answer`, one prompt at a time, which warms the cache its tree expansions read.

        Each row is charged what it forwarded (its prompt, then one token per further step; padding is
        not counted), to ``owners[i]`` as well when given."""
        owners = list(owners) if owners is not None else [None] * len(prompts)
        if self.shares_primary_tokenizer and not self._chat:
            out = []
            for prompt, owner in zip(prompts, owners, strict=True):
                with self.counters.charging(owner):
                    out.append(self._cached_greedy(prompt, max_new_tokens))
            return out
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
        return list(self._encode(text, special))

    def _cached_greedy(self, prompt: str, max_new_tokens: int) -> str:
        ids = self._encode(*self.prompt_format(prompt))
        budget = min(max_new_tokens, self.max_positions - len(ids))
        if budget <= 0:
            raise ContextTooLongError(f"prompt of {len(ids)} tokens fills the window of {self.name!r}")
        out: list[int] = []
        for _ in range(budget):
            token = int(self.next_logprobs([Context(ids, "")])[0].argmax())
            self.counters.add(generated=1)
            if token == self.tokenizer.eos_token_id:
                break
            out.append(token)
            ids = (*ids, token)
        return self.tokenizer.decode(out, skip_special_tokens=True)

    def mark_updated(self) -> None:
        super().mark_updated()
        self.store.clear()

    def clear_caches(self) -> None:
        self.store.clear()

    def close(self) -> None:
        self.store.clear()
