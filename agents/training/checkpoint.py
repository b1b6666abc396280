"""Checkpoints of a training run: the primary, the trees and the run state, written so that a crash (or
Ctrl-C) at any moment leaves either the previous checkpoint or the new one, never half of one.

``checkpoints/iter-N/primary`` is a ``save_pretrained`` folder usable as ``--primary``; under LoRA it
holds the adapter (PEFT format) with the tokenizer, and loading it loads the base named in its
``adapter_config.json`` plus the adapter. ``checkpoints/iter-N/trees`` holds the trees with their
weightage; ``state.json`` (atomic) says how many iterations are complete.
"""

from __future__ import annotations

import json
import os
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
    """Primary and trees (``env``'s; None: a run without trees) into a temporary folder, flushed to disk (every file,
    then the folders), renamed into place and the rename flushed; only then the state file, atomically. So after a
    power loss ``state.json`` never names a checkpoint whose files are not on the disk."""
    final = checkpoint_dir(run_dir, iteration)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.model.save_pretrained(tmp / "primary")  # a PEFT model saves its adapter
    lm.tokenizer.save_pretrained(tmp / "primary")
    if env is not None:
        env.save_trees(tmp / "trees")
    fsync_tree(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    fsync_path(final.parent)  # the rename itself
    save_state(run_dir, state)


def fsync_path(path: Path) -> None:
    """Flush one file's or folder's entry to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root``, then every folder (deepest first), to the disk."""
    folders = [root]
    for path in sorted(root.rglob("*")):
        (folders.append if path.is_dir() else fsync_path)(path)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_path(folder)


def load_primary(spec: str, lora: bool, seed: int = 0):
    """The primary as the loop trains it: ``spec`` (a model spec or a checkpoint; a LoRA checkpoint loads base and
    adapter), wrapped in a fresh LoRA adapter when ``lora`` is on and it has none yet, its initial weights drawn
    from ``seed`` (the caller's torch random stream untouched)."""
    import torch

    from tokentree_env.models import load_model

    lm = load_model(spec, trainable=lora)
    if lora and not hasattr(lm.model, "peft_config"):
        from peft import LoraConfig, get_peft_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            lm.model = get_peft_model(lm.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                           task_type="CAUSAL_LM"))
        lm.model.eval()
    return lm


def save_state(run_dir: Path, state: dict) -> None:
    save_json_atomic(state, run_dir / "state.json")


def load_state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())
