"""Tokenizers of the built-in model zoo, built with the ``tokenizers`` library.

- ``char``: one token per character (printable ASCII and newline); the primary's tokenizer.
- ``bpe``: byte-level BPE with GPT-2's pre-tokenizer split, trained to 512 entries (329 once digit
  merges are dropped; convertible to GGUF).
- ``bpe-small``: the same kind trained to 320 entries (262 after the drop), so its merges differ.

The BPEs keep digits as single tokens (merges that would join digits are dropped after
training), as many modern tokenizers do: a 2-digit number as one token turns addition into a
lookup table a tiny model cannot learn in the zoo's budget. Letters, spaces and words merge.

Every tokenizer prepends ``<bos>``; ``<eos>`` ends an answer; ``<pad>`` pads batches.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = SPECIAL_TOKENS
CHARS = string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation + " \n"
BPE_SIZES = {"bpe": 512, "bpe-small": 320}
TOKENIZER_KINDS = ("char", *BPE_SIZES)


def _bos_processor(bos_id: int) -> processors.TemplateProcessing:
    return processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])


def char_tokenizer() -> Tokenizer:
    """A character-level tokenizer: each character one token, decoded by concatenation."""
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *CHARS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = _bos_processor(vocab[BOS])
    return tok


def bpe_tokenizer(corpus: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE with GPT-2's regex split, trained on ``corpus``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok = _without_digit_merges(tok)
    tok.post_processor = _bos_processor(tok.token_to_id(BOS))
    return tok


def _without_digit_merges(tok: Tokenizer) -> Tokenizer:
    """Drop every merge (and merged token) that contains a digit; re-number the vocabulary."""
    data = json.loads(tok.to_str())
    model = data["model"]
    keep = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])
            if len(t) == 1 or t in SPECIAL_TOKENS or not any(c.isdigit() for c in t)]
    model["vocab"] = {t: i for i, t in enumerate(keep)}
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    model["merges"] = [m for m in merges if "".join(m) in model["vocab"]]
    for added in data.get("added_tokens", []):
        added["id"] = model["vocab"][added["content"]]
    return Tokenizer.from_str(json.dumps(data))


def build_tokenizer(kind: str, corpus: Iterable[str] = ()) -> Tokenizer:
    """The zoo tokenizer ``kind`` ("char", "bpe" or "bpe-small"); BPEs train on ``corpus``."""
    if kind == "char":
        return char_tokenizer()
    return bpe_tokenizer(corpus, BPE_SIZES[kind])


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A transformers fast tokenizer around ``tok`` with the zoo's special tokens."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
