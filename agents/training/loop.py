"""The outer loop: self-play search -> train the primary -> evaluate -> checkpoint, resumable.

Each iteration: MCTS plays the iteration's train-split prompts with the current primary (episodes
appended to the durable store, weightage updated by the env); the primary trains on them through
TRL with the chosen signal(s), guarded by EWC / SI / replay; its accuracy is measured on its own
(plain greedy decoding, no teachers, no search) on the held-out split of the task and of the
general task; then the primary (``save_pretrained``), the trees and the run state are checkpointed.

``resume=True`` continues a killed run: completed iterations are not repeated; in a partial
iteration the stored episodes are kept, re-played through the env to restore the trees' weightage
exactly as the uninterrupted run had it, and play goes on from the next prompt.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from agents.store import EpisodeStore
from agents.training.continual import EWC, SIAccumulator, SynapticIntelligence
from agents.training.datasets import distillation_dataset, dpo_dataset, general_dataset, sft_dataset
from agents.training.selfplay import SelfPlayJob, SelfPlayPool, default_workers, play_episodes
from tokentree_env.errors import ConfigError
from tokentree_env.tree.tree import save_json_atomic
from tokentree_env.zoo.catalog import DEFAULT_JUDGE, DEFAULT_PRIMARY, DEFAULT_TEACHERS

SIGNALS = ("sft", "dpo", "distill", "grpo", "rloo")
SIGNAL_LEARNING_RATES = {"dpo": 5e-5, "distill": 2e-4, "grpo": 1e-4, "rloo": 1e-4}
SIGNAL_EPOCHS = {"dpo": 1, "distill": 2, "grpo": 1, "rloo": 1}
REPLAY = ("auto", "on", "off")


@dataclass
class TrainConfig:
    """Settings of ``tokentree train``."""

    output_dir: str = "runs/tokentree"
    iterations: int = 6
    prompts_per_iteration: int = 600
    seed: int = 0
    # models and tasks
    teachers: tuple[str, ...] = DEFAULT_TEACHERS
    primary: str = DEFAULT_PRIMARY
    judge: str | None = DEFAULT_JUDGE
    task: str = "chain3"
    general_task: str = "reverse"
    # self-play search
    simulations: int = 2
    dirichlet_fraction: float = 0.25
    max_new_tokens: int = 32
    workers: int = 1
    """Self-play processes: 1 = in the loop's own process, 0 = one per available core (at most 8;
    ``tokentree train``'s default). The episodes are the same either way (each prompt's depends only
    on its tree and seed). Workers are spawned processes: a script that runs the loop with them
    needs the usual ``if __name__ == "__main__":`` guard, as for PyTorch's DataLoader workers."""
    # training
    signals: tuple[str, ...] = ("sft",)
    accumulate: bool = True  # train on every stored episode of the run so far (expert-iteration buffer)
    epochs: int = 8
    learning_rate: float = 2e-3
    signal_learning_rates: dict[str, float] = field(default_factory=lambda: dict(SIGNAL_LEARNING_RATES))
    """Per-signal learning rate and epochs where they differ from ``learning_rate`` / ``epochs`` (SFT's):
    at SFT's 2e-3 x 8 epochs DPO, distillation and GRPO collapse both tasks (measured)."""
    signal_epochs: dict[str, int] = field(default_factory=lambda: dict(SIGNAL_EPOCHS))
    batch_size: int = 16
    lora: bool = False
    report_to: str = "none"
    # continual learning
    ewc: float = 1000.0  # strength on importance normalised to mean 1; 0 = off
    si: float = 0.0
    replay: str = "auto"
    replay_fraction: float = 0.5
    replay_tolerance: float = 0.05
    # evaluation
    eval_size: int = 200

    def __post_init__(self) -> None:
        self.signals = tuple(self.signals)
        self.teachers = tuple(self.teachers)
        bad = [s for s in self.signals if s not in SIGNALS]
        if bad or not self.signals:
            raise ConfigError(f"TrainConfig.signals must be some of {SIGNALS}, got {list(self.signals)}")
        if self.replay not in REPLAY:
            raise ConfigError(f"TrainConfig.replay must be one of {REPLAY}, got {self.replay!r}")
        if self.iterations < 1 or self.prompts_per_iteration < 1:
            raise ConfigError("TrainConfig.iterations and prompts_per_iteration must be >= 1")
        if self.workers < 0:
            raise ConfigError(f"TrainConfig.workers must be >= 0 (0 = one per core), got {self.workers}")


class TrainingRun:
    """One run of the loop in ``config.output_dir``; :meth:`run` executes or resumes it."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, console: Console | None = None) -> None:
        self.config, self.console = config, console or Console()
        self.dir = Path(config.output_dir)
        self.state_path = self.dir / "state.json"
        if self.state_path.exists() and not resume:
            raise ConfigError(f"{self.dir} already holds a run; pass --resume to continue it or choose another "
                              "--output-dir")
        if resume and not self.state_path.exists():
            raise ConfigError(f"nothing to resume in {self.dir}: no state.json")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = json.loads(self.state_path.read_text()) if resume else {
            "config": asdict(config), "completed": 0, "history": [], "baseline": None}
        self.store = EpisodeStore(self.dir / "episodes.jsonl")
        self.ewc = EWC(config.ewc) if config.ewc > 0 else None
        self.si = SynapticIntelligence(config.si) if config.si > 0 else None
        self._pool: SelfPlayPool | None = None

    @classmethod
    def from_output_dir(cls, output_dir: str | Path, *, console: Console | None = None) -> TrainingRun:
        """Resume the run in ``output_dir`` with the settings it was started with."""
        state_path = Path(output_dir) / "state.json"
        if not state_path.exists():
            raise ConfigError(f"nothing to resume in {output_dir}: no state.json")
        stored = json.loads(state_path.read_text())["config"]
        config = TrainConfig(**{k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__})
        config.output_dir = str(output_dir)
        return cls(config, resume=True, console=console)

    # -- models ---------------------------------------------------------------------------------
    def _primary_path(self) -> str:
        done = self.state["completed"]
        return str(self.dir / "checkpoints" / f"iter-{done - 1}" / "primary") if done else self.config.primary

    def _env_kwargs(self) -> dict:
        c = self.config
        return {"teachers": list(c.teachers), "judge": c.judge, "task": c.task, "split": "train",
                "max_new_tokens": c.max_new_tokens, "expansion_seed": c.seed}

    def _trees_path(self) -> Path | None:
        trees = self.dir / "checkpoints" / f"iter-{self.state['completed'] - 1}" / "trees"
        return trees if self.state["completed"] and trees.exists() else None

    def _make_env(self, primary):
        from tokentree_env.env import TokenTreeEnv

        env = TokenTreeEnv(primary=primary, **self._env_kwargs())
        trees = self._trees_path()
        if trees is not None:
            env.load_trees(trees, merge=False)
        return env

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict:
        from tokentree_env.models import load_model
        from tokentree_env.teachers import HFTeacher

        c = self.config
        lm = load_model(self._primary_path())
        primary = HFTeacher(lm, name="primary")
        primary.version = self.state["completed"]  # training rounds so far: slates say which primary made them
        env = self._make_env(primary)
        if self.state["baseline"] is None:
            self.state["baseline"] = self.evaluate(lm)
            self._save_state()
        workers = c.workers or default_workers()
        self._pool = SelfPlayPool(workers) if workers > 1 else None
        try:
            self._iterate(lm, primary, env)
        finally:
            if self._pool is not None:
                self._pool.close()
        env.close()
        return self.summary()

    def _iterate(self, lm, primary, env) -> None:
        c = self.config
        with Progress(console=self.console) as bar:
            for iteration in range(self.state["completed"], c.iterations):
                started = time.perf_counter()
                records = self._self_play(env, iteration, bar)
                played = time.perf_counter()
                self.train_round(lm, records, self._training_records(records, iteration), iteration)
                primary.mark_updated()
                trained = time.perf_counter()
                metrics = self.evaluate(lm)
                metrics.update(self._episode_metrics(records), iteration=iteration,
                               self_play_seconds=played - started, train_seconds=trained - played,
                               eval_seconds=time.perf_counter() - trained)
                self._checkpoint(lm, env, iteration, metrics)
                self.console.print(f"iteration {iteration}: {c.task} {metrics['task_accuracy']:.3f}, {c.general_task} "
                                   f"{metrics['general_accuracy']:.3f}, self-play solved "
                                   f"{metrics['mean_hard_reward']:.2f}, replay {'on' if metrics['replay'] else 'off'}")

    def _prompts(self, iteration: int) -> list[str]:
        from tokentree_env.tasks import load_task

        train = [p.prompt for p in load_task(self.config.task).problems("train")]
        return random.Random(f"{self.config.seed}:{iteration}").sample(train, self.config.prompts_per_iteration)

    def _self_play(self, env, iteration: int, bar) -> list[dict]:
        """Play the iteration's prompts (on the worker pool when there is one); stored episodes of a
        killed run are re-played, not re-searched. Returns the records in prompt order."""
        c = self.config
        done = {r["prompt_index"]: r for r in self.store if r.get("iteration") == iteration}
        job = bar.add_task(f"iteration {iteration}: self-play", total=c.prompts_per_iteration)
        prompts = self._prompts(iteration)
        records = []
        for index in sorted(done):
            self._replay_episode(env, done[index])
            records.append(done[index])
            bar.advance(job)
        todo = [(index, prompt) for index, prompt in enumerate(prompts) if index not in done]
        for chunk in self._play(env, iteration, todo):
            for record in chunk:
                self.store.append(record)
            records += chunk
            bar.advance(job, len(chunk))
        return sorted(records, key=lambda r: r["prompt_index"])

    def _play(self, env, iteration: int, todo: list[tuple[int, str]]):
        """Episodes of ``todo`` (prompt index, prompt), a chunk of records at a time."""
        c = self.config
        if self._pool is None:
            for record in play_episodes(env, todo, simulations=c.simulations, dirichlet_fraction=c.dirichlet_fraction,
                                        seed=c.seed, iteration=iteration):
                yield [record]
            return
        out = self.dir / "selfplay-trees"
        trees = self._trees_path()
        job = SelfPlayJob(env_kwargs=self._env_kwargs(), primary=self._primary_path(),
                          primary_version=self.state["completed"], trees=str(trees) if trees else None,
                          out=str(out), simulations=c.simulations, dirichlet_fraction=c.dirichlet_fraction,
                          seed=c.seed, iteration=iteration)
        for chunk in self._pool.play(job, todo):
            env.load_trees(out, merge=False, prompts=[r["prompt"] for r in chunk])  # the workers' trees
            yield chunk
        shutil.rmtree(out, ignore_errors=True)

    @staticmethod
    def _replay_episode(env, record: dict) -> None:
        """Play a stored episode's tokens again, so the env applies the same weightage update."""
        obs, _ = env.reset(options={"prompt": record["prompt"]})
        for token in record["tokens"]:
            action = int((obs["candidates"] == token).argmax())
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break

    def _replay_needed(self, records: list[dict]) -> bool:
        """Replay general data this round? ``on``/``off`` force it; ``auto`` replays when the
        iteration's mean hard reward is <= 0 or fell by more than ``replay_tolerance`` from the
        previous iteration's, when the primary's last held-out task accuracy fell by more than the
        tolerance below the baseline, or once any evaluation showed its general accuracy that far
        below the baseline (forgetting). Defined on hard reward and held-out accuracy, not on the
        shaped return, which is nearly always negative."""
        c = self.config
        if c.replay != "auto":
            return c.replay == "on"
        tol = c.replay_tolerance
        mean = sum(r["hard_reward"] for r in records) / max(1, len(records))
        history, base = self.state["history"], self.state["baseline"]
        if mean <= 0.0 or (history and mean < history[-1]["mean_hard_reward"] - tol):
            return True
        if base is None:  # a round driven from outside the loop, before any evaluation
            return False
        last = history[-1] if history else base
        if last["task_accuracy"] < base["task_accuracy"] - tol:
            return True
        # forgetting, once seen, keeps replay on: the task data that caused it stays in the buffer
        return any(h["general_accuracy"] < base["general_accuracy"] - tol for h in history)

    def _training_records(self, records: list[dict], iteration: int) -> list[dict]:
        """This iteration's episodes, or (``accumulate``) every stored episode of iterations so far."""
        if not self.config.accumulate:
            return records
        earlier = [r for r in self.store if r.get("iteration", 0) < iteration]  # stored as workers finished
        return sorted(earlier, key=lambda r: (r.get("iteration", 0), r.get("prompt_index", 0))) + records

    def train_round(self, lm, records: list[dict], buffer: list[dict] | None = None, iteration: int = 0) -> None:
        """One round of training ``lm`` (a :class:`LoadedModel`, updated in place): the configured
        signals on ``buffer`` (default: ``records``; RL samples the prompts of ``records``), guarded
        by EWC / SI / replay; the replay decision looks at this iteration's ``records`` only."""
        buffer = records if buffer is None else buffer
        from datasets import concatenate_datasets

        c = self.config
        tok, model = lm.tokenizer, lm.model
        replay = self._replay_needed(records)
        self._last_replay, self._losses = replay, []
        general = general_dataset(max(1, int(c.replay_fraction * c.prompts_per_iteration)),
                                  seed=c.seed * 7919 + iteration, task=c.general_task)
        penalties = []
        if self.ewc is not None:
            texts = [(r["prompt"], r["completion"]) for r in general_dataset(64, seed=c.seed, task=c.general_task)]
            self.ewc.refresh(model, tok, texts)
            penalties.append(self.ewc)
        if self.si is not None:
            self.si.begin_round(model)
            penalties.append(self.si)
        callbacks = [SIAccumulator(self.si)] if self.si is not None else []
        model.train()
        for signal in c.signals:
            if signal == "sft":
                data = sft_dataset(buffer)
                if replay:  # general data joins the round even when no task episode succeeded
                    data = concatenate_datasets([data, general]).shuffle(seed=c.seed + iteration)
                if len(data):
                    self._sft(model, tok, data, penalties, callbacks)
            elif signal == "dpo":
                data = dpo_dataset(buffer, tok)
                if len(data):
                    self._dpo(model, tok, data, penalties, callbacks)
            elif signal == "distill":
                data = distillation_dataset(buffer)
                if len(data):
                    self._distill(model, tok, data, penalties, callbacks)
            else:
                self._rl(signal, model, tok, records)
        model.eval()
        if self.si is not None:
            self.si.end_round(model)

    def _fit(self, trainer) -> None:
        """Train quietly (the loop's own progress bar and per-iteration line report progress) and
        keep the round's mean training loss for the iteration's metrics."""
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        self._losses.append(float(trainer.train().training_loss))

    def _common_args(self, signal: str = "sft") -> dict:
        """TRL arguments shared by the trainers, with the signal's own learning rate and epochs."""
        c = self.config
        return {"output_dir": str(self.dir / "trainer"), "use_cpu": True, "bf16": False, "report_to": c.report_to,
                "dataloader_num_workers": 0, "per_device_train_batch_size": c.batch_size,
                "num_train_epochs": c.signal_epochs.get(signal, c.epochs),
                "learning_rate": c.signal_learning_rates.get(signal, c.learning_rate), "save_strategy": "no",
                "logging_steps": 10, "disable_tqdm": True, "seed": c.seed}

    def _peft(self):
        if not self.config.lora:
            return None
        from peft import LoraConfig

        return LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")

    def _sft(self, model, tok, data, penalties, callbacks) -> None:
        from trl import SFTConfig

        from agents.training.trainers import TreeSFTTrainer

        self._fit(TreeSFTTrainer(model=model, args=SFTConfig(max_length=128, **self._common_args()),
                                 train_dataset=data, processing_class=tok, penalties=penalties, callbacks=callbacks,
                                 peft_config=self._peft()))

    def _dpo(self, model, tok, data, penalties, callbacks) -> None:
        from trl import DPOConfig

        from agents.training.trainers import TreeDPOTrainer

        self._fit(TreeDPOTrainer(model=model, args=DPOConfig(max_length=128, **self._common_args("dpo")),
                                 train_dataset=data,
                                 processing_class=tok, penalties=penalties, callbacks=callbacks,
                                 peft_config=self._peft()))

    def _distill(self, model, tok, data, penalties, callbacks) -> None:
        from trl import SFTConfig

        from agents.training.trainers import VisitDistillationTrainer

        self._fit(VisitDistillationTrainer(model=model, args=SFTConfig(**self._common_args("distill")),
                                           train_dataset=data, processing_class=tok, penalties=penalties,
                                           callbacks=callbacks))

    def _rl(self, signal: str, model, tok, records: list[dict]) -> None:
        from datasets import Dataset

        from agents.training.rewards import judge_reward, verifier_reward
        from tokentree_env.judge import Judge
        from tokentree_env.tasks import load_task

        c = self.config
        task = load_task(c.task)
        answers = {p.prompt: p.answer for p in task.problems("train")}
        prompts = sorted({r["prompt"] for r in records})
        data = Dataset.from_list([{"prompt": p, "answer": answers[p]} for p in prompts])
        rewards = [verifier_reward(task)]
        if c.judge:
            judge = Judge(c.judge)
            judge.bind(tok)
            rewards.append(judge_reward(judge))
        common = self._common_args(signal) | {"per_device_train_batch_size": 8}
        import trl

        config_cls, trainer_cls = ((trl.GRPOConfig, trl.GRPOTrainer) if signal == "grpo"
                                   else (trl.RLOOConfig, trl.RLOOTrainer))
        args = config_cls(num_generations=4, max_completion_length=c.max_new_tokens, **common)
        self._fit(trainer_cls(model=model, reward_funcs=rewards, args=args, train_dataset=data, processing_class=tok,
                              peft_config=self._peft()))

    # -- measuring and saving -------------------------------------------------------------------
    def evaluate(self, lm) -> dict:
        """The primary on its own (greedy, no teachers, no search) on the held-out splits."""
        from tokentree_env.zoo.report import task_accuracy

        c = self.config
        return {"task_accuracy": task_accuracy(lm, c.task, c.eval_size),
                "general_accuracy": task_accuracy(lm, c.general_task, c.eval_size)}

    def _episode_metrics(self, records: list[dict]) -> dict:
        n = max(1, len(records))
        return {"episodes": len(records), "mean_hard_reward": sum(r["hard_reward"] for r in records) / n,
                "mean_return": sum(r["episode_return"] for r in records) / n,
                "forwarded_tokens": sum(r["forwarded_tokens"] for r in records), "replay": self._last_replay,
                "train_loss": sum(self._losses) / max(1, len(self._losses))}

    def _checkpoint(self, lm, env, iteration: int, metrics: dict) -> None:
        """Primary (save_pretrained) and trees into a temporary folder, renamed into place; then the
        state file, atomically: a crash leaves either the previous checkpoint or this one."""
        final = self.dir / "checkpoints" / f"iter-{iteration}"
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        lm.model.save_pretrained(tmp / "primary")
        lm.tokenizer.save_pretrained(tmp / "primary")
        env.save_trees(tmp / "trees")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        self.state["history"].append(metrics)
        self.state["completed"] = iteration + 1
        self._save_state()

    def _save_state(self) -> None:
        save_json_atomic(self.state, self.state_path)

    def summary(self) -> dict:
        """Accuracy before and after, forgetting, and the learning curves (also saved as a PNG)."""
        base, hist = self.state["baseline"], self.state["history"]
        last = hist[-1] if hist else base
        out = {"task_accuracy_before": base["task_accuracy"], "task_accuracy_after": last["task_accuracy"],
               "general_accuracy_before": base["general_accuracy"], "general_accuracy_after": last["general_accuracy"],
               "forgetting": base["general_accuracy"] - last["general_accuracy"], "iterations": len(hist),
               "curves": str(self.dir / "learning_curves.png")}
        self._plot()
        return out

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        base, hist = self.state["baseline"], self.state["history"]
        xs = list(range(len(hist) + 1))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(xs, [base["task_accuracy"]] + [h["task_accuracy"] for h in hist], marker="o",
                label=f"{self.config.task} (task) held-out accuracy")
        ax.plot(xs, [base["general_accuracy"]] + [h["general_accuracy"] for h in hist], marker="s",
                label=f"{self.config.general_task} (general) held-out accuracy")
        ax.set_xlabel("iteration (0 = before training)")
        ax.set_ylabel("primary's greedy accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
        ax.set_title(f"TokenTree: training the primary ({'+'.join(self.config.signals)})")
        fig.tight_layout()
        fig.savefig(self.dir / "learning_curves.png", dpi=110)
        plt.close(fig)
