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
    tokens (stored episodes of a resumed round count), plus the CPU of work in flight when it stopped
    (:meth:`close`), which no episode carries."""

    cpu_seconds: float | None = None
    weighted: float | None = None
    parameters: dict = field(default_factory=dict)
    reference: int = 0
    spent_cpu: float = 0.0
    spent_weighted: float = 0.0
    _charged_since: float = field(default_factory=time.process_time, repr=False)
    _charged: float = 0.0

    @property
    def active(self) -> bool:
        return self.cpu_seconds is not None or self.weighted is not None

    def add(self, records: list[dict], *, played_here: bool = True) -> str | None:
        """Count episodes' generation work (``played_here``: played in this process since the round began); why the
        round must stop now, or None (:meth:`spent`)."""
        for r in records:
            self.spent_cpu += r.get("cpu_seconds", 0.0)
            if played_here:
                self._charged += r.get("cpu_seconds", 0.0)
            if self.reference:
                self.spent_weighted += weighted_tokens(r.get("forwarded_by_model") or {}, self.parameters,
                                                       self.reference)
        return self.spent()

    def spent(self) -> str | None:
        """Why the round must stop now, or None."""
        if self.cpu_seconds is not None and self.spent_cpu >= self.cpu_seconds:
            return f"{self.spent_cpu:.1f} of {self.cpu_seconds:.1f} CPU seconds"
        if self.weighted is not None and self.spent_weighted >= self.weighted:
            return f"{self.spent_weighted:,.0f} of {self.weighted:,.0f} weighted tokens"
        return None

    def close(self, env, prompts) -> tuple[float, dict[str, int]]:
        """What the round's self-play spent that no episode carries, generation compute too, charged apart (nothing
        without a budget): the CPU seconds of the work in flight when the budget stopped it (a lockstep batch), and
        the forwarded tokens per model of ``prompts`` prepared (their teachers' answers) but never played."""
        if not self.active:
            return 0.0, {}
        owed: dict[str, int] = {}
        for prompt in prompts:
            for model, cost in env.claim_preparation(prompt).items():
                owed[model] = owed.get(model, 0) + cost["forwarded_tokens"]
        return max(0.0, time.process_time() - self._charged_since - self._charged), owed
