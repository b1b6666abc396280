"""The training signals: each is one small class, found by name in :data:`SIGNALS`.

A signal turns the episode buffer into rows of its own format, builds general-task **replay** rows in
the same format, and trains the primary with a TRL trainer that carries the round's guards (EWC / SI
penalties in its loss, SI's callback). The loop builds every signal's data before any trains, so
replay targets that read the primary (distillation) see the pre-round model. Rows are never truncated: a row cut
to a length keeps its prompt's beginning and loses its answer, which then teaches nothing (a chat-format prompt
with worked examples is longer than the 128 tokens the SFT and DPO rows were once cut to).

| name | rows | trainer | replay rows |
|---|---|---|---|
| ``sft`` | best verified path per prompt (expert iteration) | ``TreeSFTTrainer`` | general prompt/answer pairs |
| ``dpo`` | sibling paths along successful answers | ``TreeDPOTrainer`` | general answer vs a wrong one |
| ``distill`` | visit (or improved-policy) distribution per node | ``VisitDistillationTrainer`` | the pre-round primary's own next-token distribution |
| ``grpo`` / ``rloo`` | the iteration's prompts, rewarded by the verifier (+ judge) | ``TreeGRPOTrainer`` / ``TreeRLOOTrainer`` | general prompts in the RL batch |
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from agents.training.config import TrainConfig
from agents.training.guards import RoundGuards


@dataclass
class RoundInputs:
    """What one round of training reads: the model, the episodes, the settings and the guards."""

    model: Any
    tokenizer: Any
    records: list[dict]  # this iteration's episodes (RL reads their prompts)
    buffer: list[dict]  # what SFT / DPO / distillation learn from (all episodes so far, by default)
    config: TrainConfig
    guards: RoundGuards
    output_dir: str
    iteration: int = 0
    losses: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # each signal's training CPU seconds this round

    def general_problems(self, n: int) -> list:
        """``n`` general-task problems from its train split, for replay (seeded by run and iteration)."""
        from tokentree_env.tasks import load_task

        rng = random.Random(f"{self.config.seed}:{self.iteration}:replay")
        problems = list(load_task(self.config.general_task).problems("train"))
        return rng.sample(problems, min(n, len(problems)))

    @property
    def replay_size(self) -> int:
        c = self.config
        return c.replay_rows if c.replay_rows is not None else max(1, int(c.replay_fraction * c.prompts_per_iteration))


class Signal(ABC):
    """A training signal: rows from the buffer, replay rows in the same format, and a TRL trainer."""

    name: str = "signal"

    def __init__(self, inputs: RoundInputs) -> None:
        self.inputs = inputs
        self.data = None

    def prepare(self) -> None:
        """Build this round's rows (and replay rows when the guards say so), before any signal trains."""
        from datasets import concatenate_datasets

        r = self.inputs
        data = self.rows()
        if r.guards.replay:  # general rows join even when no task episode succeeded
            data = concatenate_datasets([data, self.replay_rows()]).shuffle(seed=r.config.seed + r.iteration)
        self.data = data

    def train(self) -> None:
        """Train the primary on the prepared rows (nothing to do without rows)."""
        if self.data is None or not len(self.data):
            return
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        started = time.process_time()
        trainer = self.trainer(self.data)
        trainer.remove_callback(PrinterCallback)  # the loop's own progress bar and lines report progress
        trainer.remove_callback(ProgressCallback)
        self.inputs.losses.append(float(trainer.train().training_loss))
        self.inputs.cpu[self.name] = self.inputs.cpu.get(self.name, 0.0) + time.process_time() - started

    @abstractmethod
    def rows(self):
        """The signal's rows from the episodes, a ``datasets.Dataset``."""

    @abstractmethod
    def replay_rows(self):
        """General-task rows in the signal's own format, a ``datasets.Dataset``."""

    @abstractmethod
    def trainer(self, data):
        """A TRL trainer on ``data`` carrying the round's penalties and callbacks."""

    # -- shared arguments -----------------------------------------------------------------------
    def args(self, **extra) -> dict:
        """TRL arguments shared by the trainers, with the signal's own learning rate and epochs; device and
        precision follow the hardware (``use_cpu`` only where there is no accelerator)."""
        from agents.training.hardware import trainer_precision

        c = self.inputs.config
        return {"output_dir": f"{self.inputs.output_dir}/trainer", "report_to": c.report_to,
                "dataloader_num_workers": 0, "per_device_train_batch_size": c.batch_size,
                "num_train_epochs": c.signal_epochs.get(self.name, c.epochs),
                "learning_rate": c.signal_learning_rates.get(self.name, c.learning_rate), "save_strategy": "no",
                "logging_steps": 10, "disable_tqdm": True, "seed": c.seed, **trainer_precision(), **extra}

    def guarded(self) -> dict:
        """The round's penalties and callbacks, and the signal's declared loss weight (``signal_weights``)."""
        return {"penalties": self.inputs.guards.penalties, "callbacks": self.inputs.guards.callbacks,
                "loss_weight": self.inputs.config.signal_weights.get(self.name, 1.0)}


class SFTSignal(Signal):
    """Expert iteration: supervised fine-tuning on the best verified path per prompt."""

    name = "sft"

    def rows(self):
        from agents.training.datasets import sft_dataset

        return sft_dataset(self.inputs.buffer, self.inputs.tokenizer, distinct=self.inputs.config.coverage_first)

    def replay_rows(self):
        from agents.training.datasets import general_dataset

        return general_dataset(self.inputs.general_problems(self.inputs.replay_size), self.inputs.tokenizer)

    def trainer(self, data):
        from trl import SFTConfig

        from agents.training.trainers import TreeSFTTrainer

        r = self.inputs
        return TreeSFTTrainer(model=r.model, args=SFTConfig(max_length=None, completion_only_loss=True, **self.args()),
                              train_dataset=data, processing_class=r.tokenizer, **self.guarded())


class DPOSignal(Signal):
    """Preferences between sibling paths the search completed: the better-valued path over the worse one."""

    name = "dpo"

    def rows(self):
        from agents.training.datasets import dpo_dataset

        return dpo_dataset(self.inputs.buffer, self.inputs.tokenizer)

    def replay_rows(self):
        from agents.training.datasets import general_preferences

        return general_preferences(self.inputs.general_problems(self.inputs.replay_size), self.inputs.tokenizer,
                                   seed=self.inputs.config.seed + self.inputs.iteration)

    def trainer(self, data):
        from trl import DPOConfig

        from agents.training.trainers import TreeDPOTrainer

        r = self.inputs
        return TreeDPOTrainer(model=r.model, args=DPOConfig(max_length=None, **self.args()), train_dataset=data,
                              processing_class=r.tokenizer, **self.guarded())


class DistillSignal(Signal):
    """AlphaZero distillation of the search's visit distribution (or Gumbel's improved policy)."""

    name = "distill"

    def rows(self):
        from agents.training.datasets import distillation_dataset

        c = self.inputs.config
        return distillation_dataset(self.inputs.buffer, target=c.distill_target, min_visits=c.distill_min_visits)

    def replay_rows(self):
        from agents.training.datasets import self_distillation_dataset

        r = self.inputs
        return self_distillation_dataset(r.model, r.tokenizer, r.general_problems(r.replay_size))

    def trainer(self, data):
        from trl import SFTConfig

        from agents.training.trainers import VisitDistillationTrainer

        r = self.inputs
        return VisitDistillationTrainer(model=r.model, args=SFTConfig(max_length=None, **self.args()), train_dataset=data,
                                        processing_class=r.tokenizer, **self.guarded())


class RLSignal(Signal):
    """On-policy RL of the primary on the verifier's reward (and the judge's, when there is one)."""

    def rows(self):
        from datasets import Dataset

        from agents.training.datasets import trl_prompt
        from tokentree_env.tasks import load_task

        r = self.inputs
        answers = {p.prompt: p.answer for p in load_task(r.config.task, verifier=r.config.verifier).problems("train")}
        prompts = sorted({rec["prompt"] for rec in r.records})
        return Dataset.from_list([{"prompt": trl_prompt(r.tokenizer, p), "answer": answers[p], "task": r.config.task}
                                  for p in prompts])

    def replay_rows(self):
        from datasets import Dataset

        from agents.training.datasets import trl_prompt

        r = self.inputs
        n = max(1, len(r.records) // 4)
        return Dataset.from_list([{"prompt": trl_prompt(r.tokenizer, p.prompt), "answer": p.answer,
                                   "task": r.config.general_task} for p in r.general_problems(n)])

    def trainer(self, data):
        import trl

        from agents.training.rewards import judge_reward, task_reward
        from agents.training.trainers import TreeGRPOTrainer, TreeRLOOTrainer
        from tokentree_env.tasks import load_task

        r = self.inputs
        rewards = [task_reward({r.config.task: load_task(r.config.task, verifier=r.config.verifier)})]
        if r.config.judge:
            from tokentree_env.judge import Judge

            judge = Judge(r.config.judge)
            judge.bind(r.tokenizer)
            rewards.append(judge_reward(judge, tasks=(r.config.task,)))
        config_cls, trainer_cls = ((trl.GRPOConfig, TreeGRPOTrainer) if self.name == "grpo"
                                   else (trl.RLOOConfig, TreeRLOOTrainer))
        args = config_cls(num_generations=4, max_completion_length=r.config.max_new_tokens,
                          **self.args(per_device_train_batch_size=8))
        return trainer_cls(model=r.model, reward_funcs=rewards, args=args, train_dataset=data,
                           processing_class=r.tokenizer, **self.guarded())


class GRPOSignal(RLSignal):
    name = "grpo"


class RLOOSignal(RLSignal):
    name = "rloo"


SIGNALS: dict[str, type[Signal]] = {"sft": SFTSignal, "dpo": DPOSignal, "distill": DistillSignal,
                                    "grpo": GRPOSignal, "rloo": RLOOSignal}
"""Training signals by name (``TrainConfig.signals``, ``tokentree train --signals``)."""
