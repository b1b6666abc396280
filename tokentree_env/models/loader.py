"""Load any causal LM by hub id, local path or ``zoo:NAME`` — offline-friendly, with typed errors."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tokentree_env.errors import ModelNotFoundError
from tokentree_env.models.packaged import GGUF_PREFIX, PKG_PREFIX, gguf_folder

ZOO_PREFIX = "zoo:"


@dataclass
class LoadedModel:
    """A model in eval mode with its tokenizer; ``name`` is the spec it was loaded from."""

    name: str
    model: object  # transformers.PreTrainedModel
    tokenizer: object  # transformers.PreTrainedTokenizerBase
    path: str

    @property
    def max_positions(self) -> int:
        """The model's context window in its own tokens."""
        cfg = self.model.config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 0) or 2**31)


def zoo_dir() -> Path:
    """The folder holding the zoo's committed models (package data of ``tokentree_env``)."""
    return Path(str(resources.files("tokentree_env.zoo") / "models"))


def zoo_names() -> list[str]:
    """The zoo models shipped with the package (the folders of :func:`zoo_dir`)."""
    return sorted(p.name for p in zoo_dir().iterdir() if p.is_dir())


def resolve_model_path(spec: str) -> str:
    """Map ``zoo:NAME`` to its folder; return local paths and hub ids unchanged.

    Raises :class:`ModelNotFoundError` for an unknown zoo name (with a suggestion) or a
    zoo model whose files are missing.
    """
    if not isinstance(spec, str) or not spec:
        raise ModelNotFoundError(f"a model is named by a non-empty string, got {spec!r}")
    if not spec.startswith(ZOO_PREFIX):
        return spec
    name = spec[len(ZOO_PREFIX):]
    names = zoo_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean 'zoo:{close[0]}'?" if close else ""
        raise ModelNotFoundError(f"no zoo model {spec!r}; the zoo has {names}.{hint}")
    path = zoo_dir() / name
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"zoo model {spec!r} has no files at {path}; rebuild the zoo with `tokentree zoo train`"
        )
    return str(path)


def load_model(spec: str, *, dtype=None, device: str | None = None, trainable: bool = False) -> LoadedModel:
    """Load a causal LM and its tokenizer, in eval mode, on ``device`` in ``dtype`` (defaults: the
    hardware's, :mod:`tokentree_env.models.hardware`; fp32 on the CPU).

    ``spec`` is a Hugging Face hub id (served from the local cache when offline), a local
    folder in ``save_pretrained`` format, ``zoo:NAME`` for a built-in zoo model, ``gguf:PATH`` for a local
    GGUF file, or ``pkg:NAME`` for a real model installed with pip (:mod:`tokentree_env.models.packaged`;
    both dequantised once and cached). A folder holding a PEFT adapter (a LoRA checkpoint of the training
    loop) loads the base model its ``adapter_config.json`` names, then the adapter (``trainable=True`` keeps
    the adapter trainable).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    from tokentree_env.models.hardware import default_device, default_dtype, resolve_dtype

    device = device or default_device()
    dtype = resolve_dtype(dtype) or default_dtype(device)
    if spec.startswith((GGUF_PREFIX, PKG_PREFIX)):
        lm = load_model(str(gguf_folder(spec)), dtype=dtype, device=device, trainable=trainable)
        lm.name = spec
        return lm
    path = resolve_model_path(spec)
    if (Path(path) / "adapter_config.json").is_file():
        return _load_adapter(spec, path, dtype=dtype, device=device, trainable=trainable)
    is_local = Path(path).is_dir()
    if not is_local and (Path(path).exists() or path.startswith((".", "/", "~"))):
        raise ModelNotFoundError(f"model path {path!r} is not a folder in save_pretrained format")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a bar per tiny model load is noise; restored below
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32).to(device)
        # zoo tokenizers are plain fast tokenizers; AutoTokenizer would swap some (e.g. qwen2) for
        # a class that replaces the pre-tokenizer.
        tok_cls = PreTrainedTokenizerFast if spec.startswith(ZOO_PREFIX) else AutoTokenizer
        tokenizer = tok_cls.from_pretrained(path)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "the machine is offline (HF_HUB_OFFLINE=1) and it is not in the local cache" if offline \
            else "it is neither a local folder nor a reachable hub id"
        raise ModelNotFoundError(
            f"cannot load model {spec!r}: {why}. Use a local path, a cached hub id, or a zoo model "
            f"('zoo:teacher-llama', ...). Cause: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, path=path)


def _load_adapter(spec: str, path: str, *, dtype, device: str, trainable: bool) -> LoadedModel:
    """A base model with a PEFT adapter on top (the adapter folder's tokenizer is used)."""
    import json

    from peft import PeftModel

    base_spec = json.loads((Path(path) / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = load_model(base_spec, dtype=dtype, device=device)
    model = PeftModel.from_pretrained(base.model, path, is_trainable=trainable)
    model.eval()
    tokenizer = type(base.tokenizer).from_pretrained(path)  # the base's tokenizer class, saved beside the adapter
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, path=path)
