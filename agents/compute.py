"""Compute, counted one way for every arm (DESIGN §12; ``docs/compute.md`` explains the conventions).

- **Phases.** An arm's work is ``generation`` (making its training data: self-play, the teachers' answers or
  samples, the judge's verdicts), ``training`` (the trainer) and ``evaluation`` (measuring the primary). Parity
  between arms is on **generation**; training and evaluation are reported apart.
- **CPU** is process CPU seconds (``time.process_time``: every thread of the process), measured by the process that
  did the work (a self-play worker reports each episode's share, :func:`agents.training.selfplay.with_cpu_seconds`)
  and summed per arm and per round. Parity arms run one at a time, never beside each other (two processes on two
  cores slow each other's CPU seconds down).
- **Tokens** are the forwarded tokens of every model an arm runs: teachers, primary and judge (and a sentence
  embedder, when one runs). A prompt is read once per (problem, model), sampling included: it is forwarded once
  and its cache expanded across the samples (:func:`tokentree_env.models.generation.sample_rows`). Models differ in
  size, so parity is on the **weighted** total: each model's tokens times its parameter count (about its FLOPs per
  token), in **primary-token equivalents** (divided by the primary's parameter count), with the raw counts per
  model beside it. A model whose size is unknown (a server's, unless declared) is listed apart, unweighted.
- **Budgets** stop mid-round: an arm checks its budget after every unit of work (an episode, a batch of answers)
  and stops as soon as it is spent (:class:`Budget`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from tokentree_env.errors import ConfigError, TokenTreeError

PHASES = ("generation", "training", "evaluation")


class BudgetReached(TokenTreeError):
    """A run stopped because its compute budget is spent; everything completed is stored, and ``--resume``
    continues (with a larger budget, or none)."""


def weighted_tokens(tokens: dict[str, int], parameters: dict[str, int | None], reference: int) -> float:
    """``Σ_m tokens_m · parameters_m / reference``: the tokens in primary-token equivalents (models of unknown size
    are left out; :func:`unweighted`)."""
    if reference <= 0:
        raise ConfigError(f"the reference parameter count must be positive, got {reference}")
    return sum(n * parameters[m] for m, n in tokens.items() if parameters.get(m)) / reference


def unweighted(tokens: dict[str, int], parameters: dict[str, int | None]) -> dict[str, int]:
    """The tokens of models whose size is unknown (they cannot be weighted)."""
    return {m: n for m, n in tokens.items() if not parameters.get(m) and n}


@dataclass
class Ledger:
    """One arm's compute: forwarded tokens per model and CPU seconds per phase.

    ``tokens`` counts the generation phase (the data the arm made); ``parameters`` weighs them; ``reference`` is
    the primary's parameter count (the unit of :attr:`weighted`)."""

    tokens: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    parameters: dict[str, int | None] = field(default_factory=dict)
    reference: int = 0

    def add_tokens(self, by_model: dict[str, int]) -> None:
        """Generation tokens forwarded by each model."""
        for model, n in by_model.items():
            self.tokens[model] = self.tokens.get(model, 0) + int(n)

    def add_cpu(self, phase: str, seconds: float) -> None:
        if phase not in PHASES:
            raise ConfigError(f"unknown compute phase {phase!r}; one of {PHASES}")
        self.cpu[phase] = self.cpu.get(phase, 0.0) + float(seconds)

    def add_episodes(self, records: Iterable[dict]) -> None:
        """Episode records' generation work: their per-model forwarded tokens and the CPU seconds they carry."""
        for r in records:
            self.add_tokens(r.get("forwarded_by_model") or {})
            self.add_cpu("generation", r.get("cpu_seconds", 0.0))

    @property
    def weighted(self) -> float:
        """Generation tokens in primary-token equivalents (:func:`weighted_tokens`)."""
        return weighted_tokens(self.tokens, self.parameters, self.reference) if self.reference else float("nan")

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    def to_json(self) -> dict:
        return asdict(self) | {"weighted": self.weighted}

    @classmethod
    def from_json(cls, data: dict) -> Ledger:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def lines(self) -> list[str]:
        """The ledger as a user reads it: tokens per model, the weighted total, CPU seconds per phase."""
        out = ["compute (generation tokens by model; parity is on the weighted total, docs/compute.md):"]
        for model, n in sorted(self.tokens.items(), key=lambda kv: -kv[1]):
            size = self.parameters.get(model)
            out.append(f"  {model}: {n:,} tokens" + (f" x {size / 1e6:.2f}M parameters" if size else
                                                     " (size unknown: not weighted)"))
        out.append(f"  weighted total: {self.weighted:,.0f} primary-token equivalents "
                   f"({self.total_tokens:,} tokens in all)")
        out.append("  CPU seconds: " + ", ".join(f"{p} {self.cpu.get(p, 0.0):.1f}" for p in PHASES))
        return out


@dataclass(frozen=True)
class Budget:
    """A compute budget: CPU seconds (every phase) and/or weighted generation tokens (primary-token equivalents).
    None: no limit."""

    cpu_seconds: float | None = None
    weighted_tokens: float | None = None

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "weighted_tokens"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"Budget.{name} must be positive (or None: no limit), got {value!r}")

    def spent(self, ledger: Ledger) -> str | None:
        """Why the budget is spent (a sentence), or None while it is not."""
        cpu = sum(ledger.cpu.values())
        if self.cpu_seconds is not None and cpu >= self.cpu_seconds:
            return f"{cpu:.1f} of {self.cpu_seconds:g} CPU seconds spent"
        if self.weighted_tokens is not None and ledger.weighted >= self.weighted_tokens:
            return f"{ledger.weighted:,.0f} of {self.weighted_tokens:,.0f} weighted tokens spent"
        return None


class CpuPhase:
    """``with CpuPhase(ledger, "training"):`` adds the block's process CPU seconds to that phase."""

    def __init__(self, ledger: Ledger, phase: str) -> None:
        self.ledger, self.phase, self.started = ledger, phase, 0.0

    def __enter__(self) -> CpuPhase:
        self.started = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.ledger.add_cpu(self.phase, time.process_time() - self.started)


__all__ = ["PHASES", "Budget", "BudgetReached", "CpuPhase", "Ledger", "unweighted", "weighted_tokens"]
