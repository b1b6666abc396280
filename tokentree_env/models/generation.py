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
    of ``n`` id lists up to (not including) EOS. The draws come from a forked random stream seeded by ``seed``: the
    caller's torch random stream is left exactly where it was."""
    eos, out = tokenizer.eos_token_id, []
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        per_batch = max(1, batch_size // n)
        for start in range(0, len(rows), per_batch):
            ids, mask = left_padded_ids(rows[start:start + per_batch], _pad_id(tokenizer))
            gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0,
                                 top_p=1.0, num_return_sequences=n, pad_token_id=_fill_id(tokenizer), eos_token_id=eos)
            news = [new[:new.index(eos)] if eos in new else new for new in gen[:, ids.shape[1]:].tolist()]
            out += [news[i * n:(i + 1) * n] for i in range(len(news) // n)]
    return out
