"""Saving, loading and merging an env's token trees (mixed into the env): what a checkpoint, a self-play worker
and a Ray actor exchange."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class TreePersistence:
    """The trees' persistence of :class:`~tokentree_env.env.TokenTreeEnv` (its tree store, observer and rollouts)."""

    def save_trees(self, folder: str | Path, prompts: Sequence[str] | None = None) -> None:
        """Save every tree (or those of ``prompts``) with its weightage and base, one JSON file per prompt."""
        self.store.save(folder, prompts)

    def load_trees(self, source: str | Path | Sequence[dict], *, merge: bool = True,
                   prompts: Sequence[str] | None = None) -> int:
        """Load trees from a folder of :meth:`save_trees` or a list of :meth:`export_trees` (other workers'),
        merging each one's own updates exactly (``merge=False`` replaces); with ``prompts``, only a folder's files
        of theirs. Other models' trees raise ``TreeMismatchError``. Returns how many were read."""
        self.observer.clear()
        self.rollouts.forget()
        self.writer_rollouts.forget()
        return self.store.read(source, merge=merge, prompts=prompts)

    def export_trees(self, prompts: Sequence[str] | None = None) -> list[dict]:
        """Every tree (or those of ``prompts``) as plain data, for :meth:`load_trees` through an object store."""
        return self.store.export(prompts)

    merge_trees = load_trees

