"""Vocabulary alignment: a teacher's next-token distribution mapped into the primary's vocabulary.

The canonical token space is the primary's tokenizer (DESIGN §1). A teacher with another
tokenizer proposes *text pieces*; each piece maps to the **first primary token of the piece
tokenised on its own** (with the primary tokenizer's usual leading-space handling).
Probabilities of pieces landing on the same primary token are summed; the teacher's EOS maps
to the primary's EOS; pieces that are special tokens, empty, or partial UTF-8 bytes map
nowhere.

Scoring a primary token under a foreign teacher uses that summed mass. When no piece maps to
the token its probability is 0; scores are then floored at :data:`UNMAPPED_LOGPROB`.
"""

from __future__ import annotations

import math

import torch

UNMAPPED = -1
UNMAPPED_LOGPROB = math.log(1e-9)
"""Floor of a log-probability (about -20.7): used for a primary token that no piece of a
foreign teacher maps to, so rewards and features stay finite."""


def same_tokenizer(a, b) -> bool:
    """True when two tokenizers have the same vocabulary and special tokens (fast path)."""
    if a is b:
        return True
    return (a.get_vocab() == b.get_vocab() and a.bos_token_id == b.bos_token_id
            and a.eos_token_id == b.eos_token_id)


def piece_to_primary_map(teacher_tokenizer, primary_tokenizer) -> torch.Tensor:
    """For every teacher token id, the primary token id it maps to (or ``UNMAPPED``), ``(V_t,)``."""
    size = max(len(teacher_tokenizer), max(teacher_tokenizer.get_vocab().values()) + 1)
    mapping = torch.full((size,), UNMAPPED, dtype=torch.long)
    specials = set(teacher_tokenizer.all_special_ids)
    for tid in range(size):
        if tid in specials:
            continue
        piece = teacher_tokenizer.decode([tid])
        if not piece or "\ufffd" in piece:
            continue
        ids = primary_tokenizer(piece, add_special_tokens=False)["input_ids"]
        if ids and ids[0] not in primary_tokenizer.all_special_ids:
            mapping[tid] = ids[0]
    if teacher_tokenizer.eos_token_id is not None:
        mapping[teacher_tokenizer.eos_token_id] = primary_tokenizer.eos_token_id
    return mapping


def to_primary_logprobs(teacher_logits: torch.Tensor, mapping: torch.Tensor, primary_size: int) -> torch.Tensor:
    """Teacher logits ``(B, V_t)`` -> log-probabilities over the primary vocabulary ``(B, V_p)``.

    Mass of pieces on the same primary token is summed; unreachable tokens get ``-inf``.
    """
    probs = torch.softmax(teacher_logits.float(), dim=-1)[:, : mapping.numel()]  # (B, V_t)
    valid = mapping >= 0
    out = torch.zeros(probs.shape[0], primary_size, dtype=probs.dtype)  # (B, V_p)
    out.index_add_(1, mapping[valid], probs[:, valid])
    return out.log()
