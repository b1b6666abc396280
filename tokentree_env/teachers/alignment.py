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
import re

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


_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def piece_texts(tokenizer) -> list[str]:
    """The text each token id stands for on its own, ``""`` where none (special tokens, partial UTF-8 bytes).

    SentencePiece pieces keep their leading space (``"▁4"`` is ``" 4"``; decoding one piece alone would drop
    it), and a byte-fallback piece ``<0xNN>`` is its byte when that byte is a character by itself (ASCII).
    """
    size = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
    specials = set(tokenizer.all_special_ids)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    sentencepiece = any(t and t.startswith("\u2581") for t in tokens[: min(size, 5000)] if isinstance(t, str))
    texts = []
    for tid, token in enumerate(tokens):
        if tid in specials or token is None:
            texts.append("")
        elif sentencepiece:
            byte = _BYTE_PIECE.fullmatch(token)
            texts.append((chr(int(byte.group(1), 16)) if int(byte.group(1), 16) < 0x80 else "") if byte
                         else token.replace("\u2581", " "))
        else:
            piece = tokenizer.decode([tid])
            texts.append("" if "\ufffd" in piece else piece)
    return texts


def piece_to_primary_map(teacher_tokenizer, primary_tokenizer, texts: list[str] | None = None) -> torch.Tensor:
    """For every teacher token id, the primary token id it maps to (or ``UNMAPPED``), ``(V_t,)``."""
    texts = texts if texts is not None else piece_texts(teacher_tokenizer)
    mapping = torch.full((len(texts),), UNMAPPED, dtype=torch.long)
    primary_specials = set(primary_tokenizer.all_special_ids)
    pieces = sorted({p for p in texts if p})
    encoded = primary_tokenizer(pieces, add_special_tokens=False)["input_ids"] if pieces else []  # one batched call
    first = {p: ids[0] if ids and ids[0] not in primary_specials else UNMAPPED
             for p, ids in zip(pieces, encoded, strict=True)}
    for tid, piece in enumerate(texts):
        if piece:
            mapping[tid] = first[piece]
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


class TokenHealer:
    """Token healing for a teacher whose tokenizer merges across the end of a context.

    A context's text can end inside a token the teacher would write as one (a digit-merging BPE writes "48"
    as one token; read back, "...=4" ends with "4" and the teacher, which never saw that split, gives "8" a
    probability near zero). Healing backs off the last teacher token (its text ``P``, the pending text) and
    reads the teacher's distribution ``q0`` one token earlier: each token whose text extends ``P`` proposes
    the rest of its text; the token that is exactly ``P`` keeps the unhealed next distribution ``q1``.
    Normalised over the tokens consistent with ``P``::

        p(x) ∝ Σ_{t: text(t) = P + r, r != ""} q0(t) [first primary token of r = x] + q0(P) q1(x)

    ``q0`` is read from the ``top`` log-probs kept with the prefix's cached state; when no kept token is
    consistent, the unhealed distribution stands.
    """

    def __init__(self, texts: list[str], primary_tokenizer) -> None:
        self.texts, self.primary = texts, primary_tokenizer
        self._extendable: dict[int, bool] = {}
        self._first: dict[str, int] = {}
        self._specials = set(primary_tokenizer.all_special_ids)

    def extendable(self, token: int) -> bool:
        """Whether some token's text strictly extends this token's text (so a context ending in it may end
        mid-token for this teacher)."""
        if token not in self._extendable:
            pending = self.texts[token] if token < len(self.texts) else ""
            self._extendable[token] = bool(pending) and any(
                len(t) > len(pending) and t.startswith(pending) for t in self.texts)
        return self._extendable[token]

    def _first_primary(self, rest: str) -> int:
        if rest not in self._first:
            ids = self.primary(rest, add_special_tokens=False)["input_ids"]
            self._first[rest] = ids[0] if ids and ids[0] not in self._specials else UNMAPPED
        return self._first[rest]

    def heal(self, last: int, top: tuple[torch.Tensor, torch.Tensor], unhealed: torch.Tensor) -> torch.Tensor:
        """The healed next-token log-probs in the primary vocabulary, ``(V_p,)``; see the class docs."""
        pending = self.texts[last]
        exact, extended = 0.0, {}
        for tid, lp in zip(top[0].tolist(), top[1].tolist(), strict=True):
            text = self.texts[tid] if tid < len(self.texts) else ""
            if not text.startswith(pending) or not pending:
                continue
            if len(text) == len(pending):
                exact += math.exp(lp)
                continue
            target = self._first_primary(text[len(pending):])
            if target != UNMAPPED:
                extended[target] = extended.get(target, 0.0) + math.exp(lp)
        total = exact + sum(extended.values())
        if total <= 0.0:
            return unhealed
        probs = unhealed.double().exp() * (exact / total)
        for target, p in extended.items():
            probs[target] += p / total
        return probs.log().float()
