"""Per-episode compute accounting (DESIGN §10, ``docs/design.md``): an episode is charged every forward
of every model between its ``reset`` and its end, plus what ``prepare`` spent on its prompt if it is the
prompt's first episode; work done for other prompts in between (a ``prepare`` mid-episode) is not
charged to it. Knows nothing of the env: it reads the models' counters through a callable."""

from __future__ import annotations

from collections.abc import Callable

from tokentree_env.errors import EnvStateError
from tokentree_env.teachers.base import COST_FIELDS


class CostWindow:
    """The running cost of the current episode, read from ``totals()`` (work summed over the models) and, per
    model, from ``by_model()``."""

    def __init__(self, totals: Callable[[], dict[str, int]],
                 by_model: Callable[[], dict[str, dict[str, int]]] | None = None) -> None:
        self.totals, self.by_model = totals, by_model
        self._start: dict[str, int] | None = None
        self._start_models: dict[str, dict[str, int]] = {}
        self._extra = dict.fromkeys(COST_FIELDS, 0)
        self._final: dict[str, int] | None = None
        self._owed_models: dict[str, int] = {}
        self.final_by_model: dict[str, int] = {}
        """The last closed episode's forwarded tokens per model (its window and the preparation it owed)."""

    def open(self, owed: dict[str, dict[str, int]]) -> None:
        """Start an episode's window; ``owed`` is the preparation work its prompt still owes, per model."""
        self._start, self._final = self.totals(), None
        self._extra = {f: sum(entry[f] for entry in owed.values()) for f in COST_FIELDS}
        self._owed_models = {name: entry["forwarded_tokens"] for name, entry in owed.items()}
        self._start_models = self.by_model() if self.by_model else {}

    def close(self) -> dict[str, int]:
        """End the window; the episode's cost is frozen and returned."""
        self._final = self.current()
        if self.by_model:
            now = self.by_model()
            self.final_by_model = {name: now[name]["forwarded_tokens"] - self._start_models.get(name, {}).get(
                "forwarded_tokens", 0) + self._owed_models.get(name, 0) for name in now}
        return dict(self._final)

    def exclude(self, work: Callable[[], object]) -> object:
        """Run ``work`` (e.g. preparing other prompts) without charging it to an open episode."""
        before = self.totals()
        result = work()
        if self._start is not None and self._final is None:
            after = self.totals()
            self._start = {f: self._start[f] + after[f] - before[f] for f in COST_FIELDS}
        return result

    def current(self) -> dict[str, int]:
        """The open (or last) episode's work so far."""
        if self._final is not None:
            return dict(self._final)
        if self._start is None:
            raise EnvStateError("episode_costs() called before reset()")
        now = self.totals()
        return {f: now[f] - self._start[f] + self._extra[f] for f in COST_FIELDS}
