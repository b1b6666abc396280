"""Training the primary with TRL from the episode store, with EWC / SI / replay, in a resumable loop.

Names are imported on first use (PEP 562): ``from agents.training import TrainConfig`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "EWC": "agents.training.continual",
    "SIAccumulator": "agents.training.continual",
    "SynapticIntelligence": "agents.training.continual",
    "fisher_diagonal": "agents.training.continual",
    "TrainConfig": "agents.training.config",
    "SIGNAL_NAMES": "agents.training.config",
    "distillation_dataset": "agents.training.datasets",
    "dpo_dataset": "agents.training.datasets",
    "general_dataset": "agents.training.datasets",
    "general_preferences": "agents.training.datasets",
    "self_distillation_dataset": "agents.training.datasets",
    "sft_dataset": "agents.training.datasets",
    "ReplayMismatchError": "agents.training.loop",
    "TrainingRun": "agents.training.loop",
    "judge_reward": "agents.training.rewards",
    "task_reward": "agents.training.rewards",
    "verifier_reward": "agents.training.rewards",
    "SelfPlayWorkerError": "agents.training.selfplay",
    "SIGNALS": "agents.training.signals",
    "Signal": "agents.training.signals",
    "TreeDPOTrainer": "agents.training.trainers",
    "TreeGRPOTrainer": "agents.training.trainers",
    "TreeRLOOTrainer": "agents.training.trainers",
    "TreeSFTTrainer": "agents.training.trainers",
    "VisitDistillationTrainer": "agents.training.trainers",
    "visit_distillation_loss": "agents.training.trainers",
}
__all__ = [
    "EWC",
    "SIGNALS",
    "SIGNAL_NAMES",
    "ReplayMismatchError",
    "SIAccumulator",
    "SelfPlayWorkerError",
    "Signal",
    "SynapticIntelligence",
    "TrainConfig",
    "TrainingRun",
    "TreeDPOTrainer",
    "TreeGRPOTrainer",
    "TreeRLOOTrainer",
    "TreeSFTTrainer",
    "VisitDistillationTrainer",
    "distillation_dataset",
    "dpo_dataset",
    "fisher_diagonal",
    "general_dataset",
    "general_preferences",
    "judge_reward",
    "self_distillation_dataset",
    "sft_dataset",
    "task_reward",
    "verifier_reward",
    "visit_distillation_loss",
]


def __getattr__(name: str):
    """Import a public name on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from agents.training.config import SIGNAL_NAMES, TrainConfig
    from agents.training.continual import EWC, SIAccumulator, SynapticIntelligence, fisher_diagonal
    from agents.training.datasets import (
        distillation_dataset,
        dpo_dataset,
        general_dataset,
        general_preferences,
        self_distillation_dataset,
        sft_dataset,
    )
    from agents.training.loop import ReplayMismatchError, TrainingRun
    from agents.training.rewards import judge_reward, task_reward, verifier_reward
    from agents.training.selfplay import SelfPlayWorkerError
    from agents.training.signals import SIGNALS, Signal
    from agents.training.trainers import (
        TreeDPOTrainer,
        TreeGRPOTrainer,
        TreeRLOOTrainer,
        TreeSFTTrainer,
        VisitDistillationTrainer,
        visit_distillation_loss,
    )
