"""Task suite: prompts, reference answers and verifiers (built-in, JSONL, ``datasets``)."""

from __future__ import annotations

from pathlib import Path

from tokentree_env.errors import ConfigError
from tokentree_env.tasks.answer_format import AnswerFormat
from tokentree_env.tasks.base import (
    Problem,
    Split,
    Task,
    Verifier,
    exact_verifier,
    extract_final_answer,
    final_number,
    majority_index,
    numeric_verifier,
    resolve_verifier,
)
from tokentree_env.tasks.builtin import BUILTIN_TASKS, DEFAULT_TASK, GeneratedTask, builtin_task
from tokentree_env.tasks.files import load_jsonl_task, task_from_dataset


def load_task(spec: str | Task = DEFAULT_TASK, *, verifier: str | Verifier | None = None) -> Task:
    """A task from a built-in name ("chain3", "chain5", "add2", "reverse", "arith-words", "arith2-words",
    "probe-words"), a ``.jsonl`` path, or a Task. ``verifier`` (a task file's only): "exact", "numeric", a function
    or "module:function"."""
    if isinstance(spec, Task):
        if verifier is not None:
            raise ConfigError(f"verifier={verifier!r} is for a task file; a Task object carries its own verifier")
        return spec
    if spec.endswith(".jsonl") or Path(spec).is_file():
        return load_jsonl_task(spec, verifier=verifier if verifier is not None else "exact")
    if verifier is not None:
        raise ConfigError(f"the built-in task {spec!r} has its own verifier; verifier= is for a task file")
    return builtin_task(spec)


__all__ = [
    "BUILTIN_TASKS",
    "DEFAULT_TASK",
    "AnswerFormat",
    "GeneratedTask",
    "Problem",
    "Split",
    "Task",
    "Verifier",
    "builtin_task",
    "exact_verifier",
    "extract_final_answer",
    "final_number",
    "load_jsonl_task",
    "load_task",
    "majority_index",
    "numeric_verifier",
    "resolve_verifier",
    "task_from_dataset",
]
