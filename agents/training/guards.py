"""The guards against forgetting, applied around every training signal (DESIGN §8).

- EWC and SI penalties enter every signal's trainer loss (``PenaltyMixin``); SI's path integral is
  collected by a ``TrainerCallback``. Both act on the **trainable** weights, so under LoRA they anchor
  the adapter (the frozen base cannot move).
- Replay mixes general-task rows into every signal's data, in that signal's own format (see
  :mod:`agents.training.signals`), when :func:`replay_needed` says so.

The auto-replay decision reads only the train split: the iteration's self-play hard reward and the
primary's accuracy on a **validation** split drawn from the train splits of the task and of the general
task; never the held-out split, which only measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.training.config import TrainConfig


@dataclass
class RoundGuards:
    """The guards of one training round: penalties for every loss, callbacks for every trainer, and
    whether general-task rows join every signal's data."""

    penalties: list = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    replay: bool = False


class ForgettingGuards:
    """EWC and SI across the rounds of a run (each off when its strength is 0)."""

    def __init__(self, config: TrainConfig) -> None:
        from agents.training.continual import EWC, SynapticIntelligence

        self.config = config
        self.ewc = EWC(config.ewc) if config.ewc > 0 else None
        self.si = SynapticIntelligence(config.si) if config.si > 0 else None

    def begin(self, model, tokenizer, general_texts: list[tuple[str, str]], replay: bool) -> RoundGuards:
        """Before a round: anchor EWC at the current model with its Fisher on ``general_texts``, start SI's
        path integral, and return the round's guards."""
        from agents.training.continual import SIAccumulator

        guards = RoundGuards(replay=replay)
        if self.ewc is not None:
            self.ewc.refresh(model, tokenizer, general_texts)
            guards.penalties.append(self.ewc)
        if self.si is not None:
            self.si.begin_round(model)
            guards.penalties.append(self.si)
            guards.callbacks.append(SIAccumulator(self.si))
        return guards

    def end(self, model) -> None:
        """After a round: fold SI's path integral into its importance."""
        if self.si is not None:
            self.si.end_round(model)


def replay_needed(config: TrainConfig, mean_hard_reward: float, history: list[dict], baseline: dict | None) -> bool:
    """Replay general data this round? ``on``/``off`` force it. ``auto`` replays when the iteration's mean
    self-play hard reward is <= 0 or fell by more than ``replay_tolerance`` from the previous iteration's,
    when the primary's last **validation** task accuracy fell more than the tolerance below its start, or
    once any validation showed its general accuracy that far below its start (forgetting: the task data
    that caused it stays in the buffer, so replay stays on). Never reads held-out accuracy."""
    if config.replay != "auto":
        return config.replay == "on"
    tol = config.replay_tolerance
    if mean_hard_reward <= 0.0 or (history and mean_hard_reward < history[-1]["mean_hard_reward"] - tol):
        return True
    if baseline is None:  # a round driven from outside the loop, before any validation
        return False
    last = history[-1] if history else baseline
    if last["validation_task_accuracy"] < baseline["validation_task_accuracy"] - tol:
        return True
    return any(h["validation_general_accuracy"] < baseline["validation_general_accuracy"] - tol for h in history)
