"""TRL / transformers ``TrainingArguments`` that follow the hardware instead of hard-coding the CPU."""

from __future__ import annotations


def trainer_precision(device: str | None = None) -> dict:
    """``use_cpu`` on a machine without an accelerator; ``bf16`` (or ``fp16``) mixed precision on a GPU that
    supports it; nothing forced otherwise."""
    import torch

    from tokentree_env.models.hardware import default_device

    device = device or default_device()
    if device == "cpu":
        return {"use_cpu": True, "bf16": False, "fp16": False}
    if device.startswith("cuda"):
        bf16 = torch.cuda.is_bf16_supported()
        return {"use_cpu": False, "bf16": bf16, "fp16": not bf16}
    return {"use_cpu": False, "bf16": False, "fp16": False}
