"""Load any causal LM by hub id, local path or ``zoo:NAME`` — offline-friendly, with typed errors."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tokentree_env.errors import ModelNotFoundError

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


def resolve_model_path(spec: str) -> str:
    """Map ``zoo:NAME`` to its folder; return local paths and hub ids unchanged.

    Raises :class:`ModelNotFoundError` for an unknown zoo name (with a suggestion) or a
    zoo model whose files are missing.
    """
    if not isinstance(spec, str) or not spec:
        raise ModelNotFoundError(f"a model is named by a non-empty string, got {spec!r}")
    if not spec.startswith(ZOO_PREFIX):
        return spec
    from tokentree_env.zoo.catalog import ZOO

    name = spec[len(ZOO_PREFIX):]
    if name not in ZOO:
        close = difflib.get_close_matches(name, list(ZOO), n=1)
        hint = f" Did you mean 'zoo:{close[0]}'?" if close else ""
        raise ModelNotFoundError(f"no zoo model {spec!r}; the zoo has {sorted(ZOO)}.{hint}")
    path = zoo_dir() / name
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"zoo model {spec!r} has no files at {path}; rebuild the zoo with `tokentree zoo train`"
        )
    return str(path)


def load_model(spec: str, *, dtype=None) -> LoadedModel:
    """Load a causal LM and its tokenizer, in eval mode.

    ``spec`` is a Hugging Face hub id (served from the local cache when offline), a local
    folder in ``save_pretrained`` format, or ``zoo:NAME`` for a built-in zoo model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    path = resolve_model_path(spec)
    is_local = Path(path).is_dir()
    if not is_local and (Path(path).exists() or path.startswith((".", "/", "~"))):
        raise ModelNotFoundError(f"model path {path!r} is not a folder in save_pretrained format")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a bar per tiny model load is noise; restored below
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
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
