"""Per-episode compute accounting (DESIGN §10, ``docs/design.md``).

Every forward of every model is charged to an **owner**: the contexts of a prompt's tree carry its episode key
(``TokenTree.owner``), and batched work charges each row to its own owner (``CostCounter.ledger``). An episode
is charged what its owner accrued from its start to its end, plus what ``prepare`` spent on its prompt if it is
the prompt's first episode. So episodes played one at a time, in lockstep, or in a vector env over shared models
are charged exactly their own work, and a ``prepare`` of other prompts during an episode is not charged to it.
Knows nothing of the env: it reads the models' counters through a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from tokentree_env.errors import EnvStateError
from tokentree_env.teachers.base import COST_FIELDS, CostCounter


class CostWindow:
    """The running cost of one episode at a time, read from the owner ledgers of ``counters()`` (name -> counter)."""

    def __init__(self, counters: Callable[[], dict[str, CostCounter]]) -> None:
        self.counters = counters
        self._owner: Hashable | None = None
        self._owed: dict[str, dict[str, int]] = {}
        self._final: dict[str, int] | None = None
        self.final_by_model: dict[str, int] = {}
        """The last closed episode's forwarded tokens per model (its own work and the preparation it owed)."""

    def open(self, owner: Hashable, owed: dict[str, dict[str, int]]) -> None:
        """Start an episode charged to ``owner``; ``owed`` is the preparation work its prompt owes, per model."""
        for counter in self.counters().values():
            counter.take(owner)  # nothing from before the episode counts
        self._owner, self._owed, self._final = owner, dict(owed), None

    def by_model(self) -> dict[str, dict[str, int]]:
        """The open episode's work so far, per model."""
        out = {}
        for name, counter in self.counters().items():
            entry = dict(counter.ledger.get(self._owner, dict.fromkeys(COST_FIELDS, 0)))
            for f in COST_FIELDS:
                entry[f] += self._owed.get(name, {}).get(f, 0)
            out[name] = entry
        return out

    def current(self) -> dict[str, int]:
        """The open (or last) episode's work so far, summed over models."""
        if self._final is not None:
            return dict(self._final)
        if self._owner is None:
            raise EnvStateError("episode_costs() called before reset()")
        models = self.by_model()
        return {f: sum(m[f] for m in models.values()) for f in COST_FIELDS}

    def close(self) -> dict[str, int]:
        """End the episode: its cost is frozen, returned, and its owner's ledger entries released."""
        models = self.by_model()
        self.final_by_model = {name: m["forwarded_tokens"] for name, m in models.items()}
        self._final = {f: sum(m[f] for m in models.values()) for f in COST_FIELDS}
        for counter in self.counters().values():
            counter.take(self._owner)
        return dict(self._final)
