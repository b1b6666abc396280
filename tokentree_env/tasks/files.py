"""User tasks from JSONL files and from ``datasets`` datasets.

A JSONL line is ``{"prompt": str, "answer": str}`` with optional ``"verifier"`` ("exact",
"numeric" or "module:function") and ``"split"`` ("train" or "heldout"). Lines without a
split are assigned by a seeded hash of the prompt (``heldout_fraction`` of them held out).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokentree_env.errors import TaskFormatError
from tokentree_env.tasks.base import SPLITS, Problem, Task, Verifier, resolve_verifier

HELDOUT_FRACTION = 0.2


def _split_of(prompt: str, heldout_fraction: float, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


def _problem_from_row(row: Any, where: str) -> tuple[Problem, str | None]:
    if not isinstance(row, Mapping):
        raise TaskFormatError(f"{where}: expected a JSON object with 'prompt' and 'answer', got {row!r:.80}")
    for key in ("prompt", "answer"):
        if key not in row:
            raise TaskFormatError(f"{where}: missing field {key!r} (got fields {sorted(row)})")
        if not isinstance(row[key], (str, int, float)) or isinstance(row[key], bool):
            raise TaskFormatError(f"{where}: field {key!r} must be a string, got {row[key]!r:.80}")
    split = row.get("split")
    if split is not None and split not in SPLITS:
        raise TaskFormatError(f"{where}: field 'split' must be one of {list(SPLITS)}, got {split!r}")
    verifier = None
    if row.get("verifier") is not None:
        try:
            verifier = resolve_verifier(row["verifier"])
        except Exception as exc:
            raise TaskFormatError(f"{where}: {exc}") from exc
    return Problem(str(row["prompt"]), str(row["answer"]), verifier=verifier), split


def _build(name: str, rows: Iterable[tuple[Problem, str | None]], verifier, heldout_fraction, seed) -> Task:
    splits: dict[str, list[Problem]] = {"train": [], "heldout": []}
    for problem, split in rows:
        splits[split or _split_of(problem.prompt, heldout_fraction, seed)].append(problem)
    return Task(name, splits, resolve_verifier(verifier), description=f"user task {name}")


def load_jsonl_task(
    path: str | Path,
    *,
    verifier: str | Verifier | None = "exact",
    heldout_fraction: float = HELDOUT_FRACTION,
    seed: int = 0,
) -> Task:
    """Load a task from a JSONL file; a malformed line raises :class:`TaskFormatError`
    naming the file and the line number."""
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"task file {str(path)!r} does not exist")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskFormatError(f"{where}: not valid JSON ({exc.msg}): {line.strip()[:80]!r}") from exc
            rows.append(_problem_from_row(row, where))
    if not rows:
        raise TaskFormatError(f"task file {str(path)!r} has no problems")
    return _build(path.stem, rows, verifier, heldout_fraction, seed)


def task_from_dataset(
    dataset,
    *,
    name: str = "dataset",
    prompt_field: str = "prompt",
    answer_field: str = "answer",
    verifier: str | Verifier | None = "exact",
    heldout_fraction: float = HELDOUT_FRACTION,
    seed: int = 0,
) -> Task:
    """Build a task from a ``datasets.Dataset`` (or any iterable of mappings).

    A ``datasets.DatasetDict`` with "train" and "test"/"heldout"/"validation" splits keeps them.
    """
    def rows_of(ds, split=None):
        for i, row in enumerate(ds):
            mapped = {"prompt": row.get(prompt_field), "answer": row.get(answer_field)}
            mapped = {k: v for k, v in mapped.items() if v is not None}
            problem, _ = _problem_from_row(mapped, f"{name}[{split or ''}{i}]")
            yield problem, split

    if isinstance(dataset, Mapping):
        held = next((k for k in ("heldout", "test", "validation") if k in dataset), None)
        if "train" not in dataset or held is None:
            raise TaskFormatError(f"dataset dict {name!r} needs 'train' and 'test' splits, got {list(dataset)}")
        rows = [*rows_of(dataset["train"], "train"), *(
            (p, "heldout") for p, _ in rows_of(dataset[held], held))]
    else:
        rows = list(rows_of(dataset))
    return _build(name, rows, verifier, heldout_fraction, seed)
