"""Small builders shared by tests: hand-made tokenizers and tiny random-weight models."""

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from tokentree_env.zoo.tokenizers import SPECIAL_TOKENS, char_tokenizer, wrap


def char_primary():
    """The zoo's character-level tokenizer (one token per character)."""
    return wrap(char_tokenizer())


def pair_tokenizer(pieces=("12", "13", "35", "+", "=", ".", "1", "2", "3", "5", "7", "4", "0")):
    """A word-level tokenizer whose pieces may span two characters ("12" -> primary "1","2")."""
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *pieces])}
    multi = "|".join(sorted((p for p in pieces if len(p) > 1), key=len, reverse=True))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(f"{multi}|[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return wrap(tok)


def bpe_primary():
    """A byte-level BPE whose merges join digits: "3" then "5" would re-tokenise as "35"."""
    from tokentree_env.zoo.tokenizers import BOS, _bos_processor

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["12+35=47."] * 50 + ["35 35 35"] * 50, trainer)
    tok.post_processor = _bos_processor(tok.token_to_id(BOS))
    return wrap(tok)


def tiny_model(tokenizer, arch="llama", seed=0):
    """A randomly initialised 1-layer model over ``tokenizer``'s vocabulary (for cache tests)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id, "vocab_size": len(tokenizer)}
    if arch == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, **ids)
    elif arch == "llama-gqa":  # grouped-query attention, as SmolLM2 and gemma3 have
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=1, max_position_embeddings=64, **ids)
    else:
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             num_key_value_heads=2, max_position_embeddings=64, **ids)
    return AutoModelForCausalLM.from_config(config).eval()


def loaded(tokenizer, arch="llama", seed=0, name=None):
    from tokentree_env.models import LoadedModel

    return LoadedModel(name or f"tiny-{arch}-{seed}", tiny_model(tokenizer, arch, seed), tokenizer, "")


def text_context(primary, text):
    """A context of ``text`` in the primary tokenizer's ids."""
    from tokentree_env.teachers.base import Context

    return Context(tuple(primary(text)["input_ids"]), text)


def full_recompute(teacher, primary, text):
    """A teacher's next-token log-probs after ``text`` in the primary's vocabulary, read from scratch (no cache)."""
    import torch

    from tokentree_env.teachers.alignment import piece_to_primary_map, to_primary_logprobs

    ids = teacher.tokenizer(text, return_tensors="pt")["input_ids"]
    logits = teacher.model(input_ids=ids).logits[:, -1]
    if teacher.shares_primary_tokenizer:
        return torch.log_softmax(logits, -1)[0]
    return to_primary_logprobs(logits, piece_to_primary_map(teacher.tokenizer, primary), len(primary))[0]
