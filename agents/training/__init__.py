"""Training the primary with TRL from the episode store, with EWC / SI / replay, in a resumable loop."""

from agents.training.continual import EWC, SIAccumulator, SynapticIntelligence, fisher_diagonal
from agents.training.datasets import distillation_dataset, dpo_dataset, general_dataset, sft_dataset
from agents.training.loop import SIGNALS, TrainConfig, TrainingRun
from agents.training.rewards import judge_reward, panel_logprob_reward, verifier_reward
from agents.training.selfplay import SelfPlayWorkerError
from agents.training.trainers import (
    TreeDPOTrainer,
    TreeSFTTrainer,
    VisitDistillationTrainer,
    visit_distillation_loss,
)

__all__ = [
    "EWC", "SIGNALS", "SIAccumulator", "SelfPlayWorkerError", "SynapticIntelligence", "TrainConfig", "TrainingRun", "TreeDPOTrainer",
    "TreeSFTTrainer", "VisitDistillationTrainer", "distillation_dataset", "dpo_dataset", "fisher_diagonal",
    "general_dataset", "judge_reward", "panel_logprob_reward", "sft_dataset", "verifier_reward",
    "visit_distillation_loss",
]
