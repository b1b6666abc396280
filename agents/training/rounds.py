"""A round's generation budget: self-play stops mid-round once the iteration's episodes have spent it
(``TrainConfig.round_cpu_seconds`` / ``round_weighted_tokens``), so that every arm of a comparison gets the same
generation compute per round, counted as :mod:`agents.compute` counts it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from agents.compute import weighted_tokens


@dataclass
class RoundBudget:
    """What one iteration's self-play may spend, and what it has spent: its episodes' CPU seconds and weighted
    tokens (stored episodes of a resumed round count). At a stop, :meth:`close` charges what no stored episode
    carries: the CPU and tokens of the episodes in flight (a lockstep batch) and of prompts prepared (their teachers'
    answers) but never played, read from the env's own counters."""

    cpu_seconds: float | None = None
    weighted: float | None = None
    parameters: dict = field(default_factory=dict)
    reference: int = 0
    env: object = field(default=None, repr=False)
    spent_cpu: float = 0.0
    spent_weighted: float = 0.0
    stopped: str | None = None
    """Why the round stopped (None: it played its prompts)."""
    unstored: dict = field(default_factory=dict)
    """What :meth:`close` charged: ``cpu_seconds`` and ``forwarded_by_model``."""
    _charged_since: float = field(default_factory=time.process_time, repr=False)
    _charged: float = 0.0
    _start: dict = field(default_factory=dict, repr=False)
    _stored: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.env is not None and self.active:  # the env's counters now: the round's work is what they add
            self._start = {m: c["forwarded_tokens"] for m, c in self.env.costs().items()}

    @property
    def active(self) -> bool:
        return self.cpu_seconds is not None or self.weighted is not None

    def add(self, records: list[dict], *, played_here: bool = True) -> str | None:
        """Count episodes' generation work (``played_here``: played in this process since the round began); why the
        round must stop now, or None (:meth:`spent`)."""
        for r in records:
            self.spent_cpu += r.get("cpu_seconds", 0.0)
            by_model = r.get("forwarded_by_model") or {}
            if played_here:
                self._charged += r.get("cpu_seconds", 0.0)
                for model, n in by_model.items():
                    self._stored[model] = self._stored.get(model, 0) + n
            if self.reference:
                self.spent_weighted += weighted_tokens(by_model, self.parameters, self.reference)
        self.stopped = self.spent()
        return self.stopped

    def spent(self) -> str | None:
        """Why the round must stop now, or None."""
        if self.cpu_seconds is not None and self.spent_cpu >= self.cpu_seconds:
            return f"{self.spent_cpu:.1f} of {self.cpu_seconds:.1f} CPU seconds"
        if self.weighted is not None and self.spent_weighted >= self.weighted:
            return f"{self.spent_weighted:,.0f} of {self.weighted:,.0f} weighted tokens"
        return None

    def close(self, prompts) -> tuple[float, dict[str, int]]:
        """What the round's self-play spent that no stored episode carries (nothing without a budget): the CPU
        seconds and the forwarded tokens per model of the work in flight at the stop and of ``prompts`` prepared but
        never played (their preparation is settled here, so a later episode on them owes none of it)."""
        if not self.active or self.env is None:
            self.unstored = {"cpu_seconds": 0.0, "forwarded_by_model": {}}
            return 0.0, {}
        for prompt in prompts:
            self.env.claim_preparation(prompt)  # charged below, through the counters
        now = {m: c["forwarded_tokens"] for m, c in self.env.costs().items()}
        owed = {m: n - self._start.get(m, 0) - self._stored.get(m, 0) for m, n in now.items()}
        cpu, owed = max(0.0, time.process_time() - self._charged_since - self._charged), {m: n for m, n in owed.items()
                                                                                          if n > 0}
        self.unstored = {"cpu_seconds": cpu, "forwarded_by_model": owed}
        return cpu, owed
