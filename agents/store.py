"""The episode store: append-only JSONL, durable, readable back as a ``datasets.Dataset``.

Each record is one line, written with a single ``write``, flushed and fsynced before ``append``
returns: a process killed at any point loses at most the record it was writing. A torn last line
(no trailing newline, or not valid JSON) is dropped with a warning on read, and cut off before the
next append, so it is never parsed into a wrong record nor glued to the next one. A bad line
anywhere else is corruption and raises :class:`EpisodeStoreError`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from tokentree_env.errors import TokenTreeError


class EpisodeStoreError(TokenTreeError, ValueError):
    """A line in the middle of an episode store is not a valid record (the file was corrupted)."""


class EpisodeStore:
    """Append-only JSONL store of episode records (dicts or dataclasses such as ``EpisodeResult``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repaired = False

    def _repair_torn_tail(self) -> None:
        """Cut a torn last line (left by a crash mid-write) before appending after it."""
        if self._repaired or not self.path.exists():
            self._repaired = True
            return
        with self.path.open("rb+") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size == 0:
                return
            fh.seek(max(0, size - 1))
            if fh.read(1) != b"\n":
                data = self.path.read_bytes()
                keep = data.rfind(b"\n") + 1
                warnings.warn(f"{self.path}: dropping a torn last record ({size - keep} bytes) left by a crash",
                              stacklevel=3)
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
        self._repaired = True

    def append(self, record: Any) -> None:
        """Write one record durably (flush + fsync) at the end of the store."""
        if is_dataclass(record):
            record = asdict(record)
        line = json.dumps(record, separators=(",", ":")) + "\n"
        self._repair_torn_tail()
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # text after the last newline is a torn record
        for lineno, raw in enumerate(complete, start=1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except json.JSONDecodeError as exc:
                if lineno == len(complete) and not tail:
                    warnings.warn(f"{self.path}:{lineno}: dropping an unreadable last record", stacklevel=2)
                    return
                raise EpisodeStoreError(f"{self.path}:{lineno}: not a valid record ({exc.msg}); the store is "
                                        "corrupted before its end") from exc
        if tail.strip():
            warnings.warn(f"{self.path}: dropping a torn last record ({len(tail)} bytes, no newline)", stacklevel=2)

    def records(self) -> list[dict]:
        """Every complete record, in order."""
        return list(self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def to_dataset(self):
        """The records as a ``datasets.Dataset`` (nested fields kept as Arrow structs and lists)."""
        from datasets import Dataset

        return Dataset.from_list(self.records())
