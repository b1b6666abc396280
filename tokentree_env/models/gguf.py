"""Export a Llama with a byte-level BPE tokenizer to an unquantised GGUF, for llama.cpp servers.

The zoo's ``teacher-llama`` (and any Llama whose tokenizer is a byte-level BPE with GPT-2's
pre-tokenizer split) can then be served by llama.cpp (``llama-server`` or ``llama-cpp-python``)
as a remote teacher. llama.cpp's own ``convert_hf_to_gguf.py`` rejects a freshly trained BPE
("pre-tokenizer not recognized"); this writer declares the pre-tokenizer as ``gpt-2``, which is
true for the zoo's BPEs (they keep GPT-2's split), and writes float32 weights. For released models
use llama.cpp's converter.

Needs the ``gguf`` package (``pip install 'tokentree[llama-server]'``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tokentree_env.errors import ConfigError
from tokentree_env.models.loader import LoadedModel, load_model


def _permute(weights, n_head: int):
    """HF's rotary layout of q/k rows -> llama.cpp's (the inverse of the HF conversion's permute)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _tokenizer_json(lm: LoadedModel) -> dict:
    path = Path(lm.path) / "tokenizer.json" if getattr(lm, "path", None) else None
    if path is None or not path.exists():
        raise ConfigError(f"export_gguf needs the model's tokenizer.json next to it; none at {path}")
    return json.loads(path.read_text())


def export_gguf(model: str | LoadedModel, out_path: str | Path) -> Path:
    """Write ``model`` (a Llama with a byte-level BPE tokenizer) as an F32 GGUF at ``out_path``."""
    import gguf

    lm = load_model(model) if isinstance(model, str) else model
    cfg = lm.model.config
    if cfg.model_type != "llama":
        raise ConfigError(f"export_gguf writes Llama models; {lm.name} is {cfg.model_type!r}")
    tok = _tokenizer_json(lm)
    if tok["model"]["type"] != "BPE" or (tok.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
        raise ConfigError(f"export_gguf needs a byte-level BPE tokenizer; {lm.name} has "
                          f"{tok['model']['type']} with pre-tokenizer {tok.get('pre_tokenizer')}")
    vocab = lm.tokenizer.get_vocab()
    size = cfg.vocab_size
    by_id = {i: t for t, i in vocab.items()}
    specials = set(lm.tokenizer.all_special_ids)
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    types = [gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out_path), "llama")
    writer.add_name(lm.name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rope = getattr(cfg, "rope_parameters", None) or {}
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for key, value in (("bos", lm.tokenizer.bos_token_id), ("eos", lm.tokenizer.eos_token_id),
                       ("pad", lm.tokenizer.pad_token_id), ("unk", lm.tokenizer.unk_token_id)):
        if value is not None:
            getattr(writer, f"add_{key}_token_id")(value)
    writer.add_add_bos_token(bool(lm.tokenizer("x")["input_ids"][:1] == [lm.tokenizer.bos_token_id]))
    writer.add_add_eos_token(False)

    state = {k: v.detach().float().numpy() for k, v in lm.model.state_dict().items()}
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        writer.add_tensor("output.weight", state["lm_head.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        writer.add_tensor(f"blk.{i}.attn_norm.weight", state[p + "input_layernorm.weight"])
        writer.add_tensor(f"blk.{i}.attn_q.weight", _permute(state[p + "self_attn.q_proj.weight"], heads))
        writer.add_tensor(f"blk.{i}.attn_k.weight", _permute(state[p + "self_attn.k_proj.weight"], kv_heads))
        writer.add_tensor(f"blk.{i}.attn_v.weight", state[p + "self_attn.v_proj.weight"])
        writer.add_tensor(f"blk.{i}.attn_output.weight", state[p + "self_attn.o_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", state[p + "post_attention_layernorm.weight"])
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", state[p + "mlp.gate_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_up.weight", state[p + "mlp.up_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_down.weight", state[p + "mlp.down_proj.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
