"""Batched greedy decoding and next-token probabilities with plain transformers calls."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def left_padded(tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (with the tokenizer's special tokens) left-padded into one batch.

    Returns ``(input_ids, attention_mask)``, both ``(B, T)``. The tokenizer is not mutated.
    """
    return left_padded_ids([tokenizer(t)["input_ids"] for t in texts], _pad_id(tokenizer))


def left_padded_ids(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids left-padded with ``pad_id`` into ``(input_ids, attention_mask)``, both ``(B, T)``."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for row, r in enumerate(rows):
        if len(r):
            ids[row, width - len(r):] = torch.as_tensor(list(r))
            mask[row, width - len(r):] = 1
    return ids, mask


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _fill_id(tokenizer) -> int:
    """What ``generate`` writes after a row has finished: EOS, not the pad token. Later decoding steps pass no
    attention mask, and a pad token among their ids makes some models (GPT-2) warn that inputs look padded
    without a mask; the rows are cut at their first EOS either way."""
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else _pad_id(tokenizer)


@torch.no_grad()
def greedy_ids(model, tokenizer, rows: Sequence[Sequence[int]], *, max_new_tokens: int,
               batch_size: int = 256) -> list[list[int]]:
    """Greedy continuations of token-id rows, batched and left-padded: each row's new ids up to
    (not including) EOS. One ``generate`` per ``batch_size`` rows instead of one per row."""
    out: list[list[int]] = []
    eos = tokenizer.eos_token_id
    for start in range(0, len(rows), batch_size):
        ids, mask = left_padded_ids(rows[start:start + batch_size], _pad_id(tokenizer))
        gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=_fill_id(tokenizer),
                             eos_token_id=eos)
        for new in gen[:, ids.shape[1]:].tolist():
            out.append(new[:new.index(eos)] if eos in new else new)
    return out


def greedy_complete(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 24,
                    batch_size: int = 256) -> list[str]:
    """Greedy completions of ``prompts`` (text after the prompt, up to EOS, specials dropped)."""
    rows = [tokenizer(p)["input_ids"] for p in prompts]
    news = greedy_ids(model, tokenizer, rows, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return tokenizer.batch_decode(news, skip_special_tokens=True)


@torch.no_grad()
def next_token_logprobs(model, tokenizer, texts: Sequence[str], *, batch_size: int = 256) -> torch.Tensor:
    """Log-probabilities of the next token after each text, ``(B, V)``."""
    rows = []
    for start in range(0, len(texts), batch_size):
        ids, mask = left_padded(tokenizer, texts[start:start + batch_size])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                       position_ids=pos.to(model.device)).logits[:, -1]  # (B, V)
        rows.append(torch.log_softmax(logits.float(), dim=-1).cpu())
    return torch.cat(rows)


@torch.no_grad()
def sample_ids(model, tokenizer, rows: Sequence[Sequence[int]], *, n: int, temperature: float = 1.0,
               max_new_tokens: int, seed: int = 0, batch_size: int = 256) -> list[list[list[int]]]:
    """``n`` sampled continuations of each row at ``temperature`` (batched, left-padded, seeded): per row, a list
    of ``n`` id lists up to (not including) EOS (:func:`sample_rows`, whose counts say what was forwarded)."""
    return sample_rows(model, tokenizer, rows, n=n, temperature=temperature, max_new_tokens=max_new_tokens,
                       seed=seed, batch_size=batch_size)[0]


@torch.no_grad()
def sample_rows(model, tokenizer, rows: Sequence[Sequence[int]], *, n: int, temperature: float = 1.0,
                max_new_tokens: int, seed: int = 0, batch_size: int = 256) -> tuple[list[list[list[int]]], list[int]]:
    """``n`` sampled continuations of each row, **reading each prompt once**: a batch of prompts is forwarded once
    (left-padded), its KV cache expanded across the ``n`` samples, then every sample decodes in one batched loop.
    (``generate(num_return_sequences=n)`` would forward each prompt ``n`` times.)

    Returns, per row, ``n`` id lists up to (not including) EOS, and per row the tokens forwarded for it: its prompt
    once, then each sample's tokens fed back (a sample ending at EOS feeds every token it kept; one cut at
    ``max_new_tokens`` all but its last). The draws come from a generator seeded by ``seed``: the caller's torch
    random stream is untouched. Full-vocabulary sampling (no top-k or top-p)."""
    if n < 1 or max_new_tokens < 1:
        raise ValueError(f"n and max_new_tokens must be >= 1, got n={n}, max_new_tokens={max_new_tokens}")
    eos, device = tokenizer.eos_token_id, model.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out: list[list[list[int]]] = []
    forwarded: list[int] = []
    per_batch = max(1, batch_size // n)
    for start in range(0, len(rows), per_batch):
        chunk = rows[start:start + per_batch]
        ids, mask = left_padded_ids(chunk, _pad_id(tokenizer))  # (B, T)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        prefill = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                        use_cache=True)
        cache = prefill.cache
        cache.batch_repeat_interleave(n)
        logits = prefill.logits[:, -1].float().repeat_interleave(n, dim=0)  # (B·n, V)
        mask = mask.repeat_interleave(n, dim=0)  # (B·n, T)
        position = positions[:, -1].repeat_interleave(n, dim=0) + 1  # (B·n,)
        news: list[list[int]] = [[] for _ in range(len(chunk) * n)]
        fed = [0] * (len(chunk) * n)
        live = torch.ones(len(news), dtype=torch.bool)
        for step in range(max_new_tokens):
            probs = torch.softmax(logits.cpu() / temperature, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B·n,)
            for i in live.nonzero().flatten().tolist():
                if tokens[i].item() == eos:
                    live[i] = False
                else:
                    news[i].append(int(tokens[i]))
            if not live.any() or step == max_new_tokens - 1:
                break
            feed = torch.where(live, tokens, torch.full_like(tokens, _fill_id(tokenizer)))
            for i in live.nonzero().flatten().tolist():
                fed[i] += 1
            mask = torch.cat([mask, live[:, None].long()], dim=1)
            step_out = model(input_ids=feed[:, None].to(device), attention_mask=mask.to(device),
                             position_ids=position[:, None].to(device), cache=cache, use_cache=True)
            cache, logits, position = step_out.cache, step_out.logits[:, -1].float(), position + 1
        for r, row in enumerate(chunk):
            out.append(news[r * n:(r + 1) * n])
            forwarded.append(len(row) + sum(fed[r * n:(r + 1) * n]))
    return out, forwarded
