"""Greedy answers decoded through a teacher's own KV store, many prompts in lockstep.

For a teacher that shares the primary's tokenizer: every node on its reference path is then cached when the tree
expands it, and a round of prompts costs one batched forward per step instead of one per prompt and step.
"""

from __future__ import annotations

from tokentree_env.errors import ContextTooLongError
from tokentree_env.teachers.base import Context


def lockstep_width(teacher, positions: int, batch_size: int) -> int:
    """How many prompts decode together: ``batch_size``, fewer where that many chains of ``positions`` would not fit
    the teacher's cache (a chain evicted mid-answer would be read again from its prompt)."""
    config = teacher.model.config.get_text_config()
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    row = 2 * teacher.n_layers * heads * dim * teacher.model.dtype.itemsize * teacher.pool.capacity_for(positions)
    return max(1, min(batch_size, teacher.store.max_bytes // (2 * row)))


def cached_greedy(teacher, prompts: list[str], owners: list, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers of ``prompts``, decoded through ``teacher``'s KV store in lockstep (:func:`lockstep_width`
    prompts at a time, one batched forward per step). Each prompt's owner (or, where it names none, the owner the
    teacher's counters are charging) is charged its row's forwarded tokens, a call for each step its row was
    forwarded in, and its generated tokens: what decoding it alone would charge it. The totals count the batched
    calls."""
    counters = teacher.counters
    owners = [owner if owner is not None else counters.owner for owner in owners]
    rows = [tuple(teacher.prompt_ids(p)) for p in prompts]
    budgets = [min(max_new_tokens, teacher.max_positions - len(ids)) for ids in rows]
    for ids, budget in zip(rows, budgets, strict=True):
        if budget <= 0:
            raise ContextTooLongError(f"prompt of {len(ids)} tokens fills the window of {teacher.name!r}")
    width = lockstep_width(teacher, max(map(len, rows), default=1) + max_new_tokens, batch_size)
    outs: list[list[int]] = [[] for _ in prompts]
    for start in range(0, len(prompts), width):
        live = list(range(start, min(start + width, len(prompts))))
        while live:
            forwarded = {rows[i]: owners[i] for i in reversed(live) if teacher.store.get(rows[i]) is None}
            with counters.detached():  # the batch's call counts once in the totals; each row's owner below
                logprobs = teacher.next_logprobs([Context(rows[i], "", owner=owners[i]) for i in live])
            for owner in forwarded.values():
                counters.add(calls=1, owner=owner, shared=True)
            still = []
            for i, row in zip(live, logprobs, strict=True):
                token = int(row.argmax())
                counters.add(generated=1, owner=owners[i])
                if token != teacher.tokenizer.eos_token_id:
                    outs[i].append(token)
                    rows[i] = (*rows[i], token)
                    if len(outs[i]) < budgets[i]:
                        still.append(i)
            live = still
    return [teacher.tokenizer.decode(out, skip_special_tokens=True) for out in outs]
