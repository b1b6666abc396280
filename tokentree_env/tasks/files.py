"""User tasks from JSONL files and from ``datasets`` datasets.

A JSONL line is ``{"prompt": str, "answer": str}`` with optional ``"verifier"`` ("exact" or "numeric") and
``"split"`` ("train" or "heldout"). Lines without a split are assigned by a seeded hash of the prompt
(``heldout_fraction`` of them held out). An optional first line ``{"task": {...}}`` declares how answers are laid
out: answer styles and step boundaries (:class:`~tokentree_env.tasks.answer_format.AnswerFormat`), as data.

A file is data: nothing in it names code to run. A verifier that is code (``"package.module:function"``) is
chosen in Python (``load_jsonl_task(path, verifier=...)``) or on the command line (``--verifier``), never by a row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokentree_env.errors import ConfigError, TaskFormatError
from tokentree_env.tasks.answer_format import AnswerFormat
from tokentree_env.tasks.base import (
    SPLITS,
    Problem,
    Task,
    Verifier,
    exact_verifier,
    numeric_verifier,
    resolve_verifier,
)

ROW_VERIFIERS = {"exact": exact_verifier, "numeric": numeric_verifier}
"""The verifiers a row may name: built-in ones only (a row never names code to import)."""

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
    name = row.get("verifier")
    if name is not None and name not in ROW_VERIFIERS:
        raise TaskFormatError(f"{where}: a row's 'verifier' is one of {sorted(ROW_VERIFIERS)}, got {name!r}. A task "
                              "file is data and never names code to import: choose a verifier function in Python "
                              "(load_jsonl_task(path, verifier=fn)) or on the command line (--verifier module:function)")
    return Problem(str(row["prompt"]), str(row["answer"]), verifier=ROW_VERIFIERS.get(name)), split


def _build(name: str, rows: Iterable[tuple[Problem, str | None]], verifier, heldout_fraction, seed,
           answer_format: AnswerFormat | None = None) -> Task:
    splits: dict[str, list[Problem]] = {"train": [], "heldout": []}
    for problem, split in rows:
        splits[split or _split_of(problem.prompt, heldout_fraction, seed)].append(problem)
    return Task(name, splits, resolve_verifier(verifier), description=f"user task {name}",
                answer_format=answer_format or AnswerFormat())


def load_jsonl_task(
    path: str | Path,
    *,
    verifier: str | Verifier | None = "exact",
    heldout_fraction: float = HELDOUT_FRACTION,
    seed: int = 0,
) -> Task:
    """Load a task from a JSONL file; a malformed line raises :class:`TaskFormatError`
    naming the file and the line number. ``verifier``: "exact", "numeric", a function, or "module:function"
    (imported: code is chosen here, never by the file)."""
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"task file {str(path)!r} does not exist")
    rows, answer_format = [], None
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskFormatError(f"{where}: not valid JSON ({exc.msg}): {line.strip()[:80]!r}") from exc
            if not rows and answer_format is None and isinstance(row, Mapping) and set(row) == {"task"}:
                answer_format = _answer_format(row["task"], where)
                continue
            rows.append(_problem_from_row(row, where))
    if not rows:
        raise TaskFormatError(f"task file {str(path)!r} has no problems")
    return _build(path.stem, rows, verifier, heldout_fraction, seed, answer_format)


def _answer_format(data, where: str) -> AnswerFormat:
    """The header line's answer styles and step boundaries."""
    if not isinstance(data, Mapping):
        raise TaskFormatError(f"{where}: the header's 'task' must be an object (styles, operands, step_boundaries)")
    try:
        return AnswerFormat.from_data(data, f"{where}: ")
    except (ConfigError, TypeError) as exc:
        raise TaskFormatError(f"{where}: {exc}") from exc


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
