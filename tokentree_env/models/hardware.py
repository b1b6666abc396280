"""Device and dtype defaults from the hardware: cuda, then mps, then cpu; bf16 where the device supports
it (fp16 on older GPUs), fp32 on the CPU. Every model loader and trainer takes ``device=`` and ``dtype=``
to override them."""

from __future__ import annotations

DTYPES = ("float32", "bfloat16", "float16")


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"mps"`` on Apple silicon, else ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str | None = None):
    """bf16 on a GPU that supports it (fp16 on one that does not), fp16 on mps, fp32 on the CPU."""
    import torch

    device = device or default_device()
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def resolve_dtype(dtype):
    """A torch dtype from a dtype, its name ("bfloat16", "bf16", "float32", ...) or None (the default)."""
    import torch

    from tokentree_env.errors import ConfigError

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    name = aliases.get(str(dtype), str(dtype)).removeprefix("torch.")
    if name not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {DTYPES} (or bf16, fp16, fp32)")
    return getattr(torch, name)
