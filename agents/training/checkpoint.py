"""Checkpoints of a training run: the primary, the trees and the run state, written so that a crash (or
Ctrl-C) at any moment leaves either the previous checkpoint or the new one, never half of one.

``checkpoints/iter-N/primary`` is a ``save_pretrained`` folder usable as ``--primary``; under LoRA it
holds the adapter (PEFT format) with the tokenizer, and loading it loads the base named in its
``adapter_config.json`` plus the adapter. ``checkpoints/iter-N/trees`` holds the trees with their
weightage; ``state.json`` (atomic) says how many iterations are complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tokentree_env.tree.tree import save_json_atomic


def checkpoint_dir(run_dir: Path, iteration: int) -> Path:
    return run_dir / "checkpoints" / f"iter-{iteration}"


def primary_path(run_dir: Path, completed: int, default: str) -> str:
    """The primary to continue from: the last checkpoint's, or ``default`` before the first."""
    return str(checkpoint_dir(run_dir, completed - 1) / "primary") if completed else default


def trees_path(run_dir: Path, completed: int) -> Path | None:
    """The last checkpoint's tree folder, if there is one."""
    trees = checkpoint_dir(run_dir, completed - 1) / "trees"
    return trees if completed and trees.exists() else None


def save_checkpoint(run_dir: Path, iteration: int, lm, env, state: dict) -> None:
    """Primary and trees into a temporary folder, renamed into place; then the state file, atomically."""
    final = checkpoint_dir(run_dir, iteration)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.model.save_pretrained(tmp / "primary")  # a PEFT model saves its adapter
    lm.tokenizer.save_pretrained(tmp / "primary")
    env.save_trees(tmp / "trees")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    save_state(run_dir, state)


def load_primary(spec: str, lora: bool):
    """The primary as the loop trains it: ``spec`` (a model spec or a checkpoint; a LoRA checkpoint loads base and
    adapter), wrapped in a fresh LoRA adapter when ``lora`` is on and it has none yet."""
    from tokentree_env.models import load_model

    lm = load_model(spec, trainable=lora)
    if lora and not hasattr(lm.model, "peft_config"):
        from peft import LoraConfig, get_peft_model

        lm.model = get_peft_model(lm.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                       task_type="CAUSAL_LM"))
        lm.model.eval()
    return lm


def save_state(run_dir: Path, state: dict) -> None:
    save_json_atomic(state, run_dir / "state.json")


def load_state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())
