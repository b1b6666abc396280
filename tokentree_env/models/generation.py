"""Batched greedy decoding and next-token probabilities with plain transformers calls."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def left_padded(tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (with the tokenizer's special tokens) left-padded into one batch.

    Returns ``(input_ids, attention_mask)``, both ``(B, T)``. The tokenizer is not mutated.
    """
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    width = max(len(e) for e in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)  # (B, T)
    for row, e in enumerate(encoded):
        ids[row, width - len(e):] = torch.tensor(e)
        mask[row, width - len(e):] = 1
    return ids, mask


@torch.no_grad()
def greedy_complete(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 24,
                    batch_size: int = 256) -> list[str]:
    """Greedy completions of ``prompts`` (text after the prompt, up to EOS, specials dropped)."""
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = left_padded(tokenizer, prompts[start:start + batch_size])
        gen = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        out += tokenizer.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)
    return out


@torch.no_grad()
def next_token_logprobs(model, tokenizer, texts: Sequence[str], *, batch_size: int = 256) -> torch.Tensor:
    """Log-probabilities of the next token after each text, ``(B, V)``."""
    rows = []
    for start in range(0, len(texts), batch_size):
        ids, mask = left_padded(tokenizer, texts[start:start + batch_size])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]  # (B, V)
        rows.append(torch.log_softmax(logits.float(), dim=-1))
    return torch.cat(rows)
