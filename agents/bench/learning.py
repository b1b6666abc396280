"""``python -m benchmarks.learning --task chain5``: does search teach the primary better than the teachers' own
answers do, at equal data-generation compute? Resumable: each finished arm is saved under ``runs/`` and a rerun
skips it; an unfinished arm resumes with the loop's own ``--resume``.

**Headline** (3 seeds). Every arm gets the same data-generation core-seconds per iteration, and the same trainer,
epochs, learning rate and schedule (``TrainingRun.train_round``); the primary's own greedy held-out accuracy is
measured after every iteration.

- **search**: MCTS self-play (each prompt played ``repeats`` times in a row), the verifier scoring the
  search's leaves (``planner_verifier``), SFT on the verified paths;
- **control (i), sft-greedy**: SFT on the teachers' verified greedy answers, on as many fresh train prompts as
  the budget allows;
- **control (ii), rft**: rejection-sampling fine-tuning: rounds of one temperature-1 sample per prompt from each
  teacher, on the search iteration's own prompts, until the budget is spent (N = the rounds completed);
  verified; SFT on the distinct right answers.

A second pair of control rows cuts their budget to the search's *teacher forwarded tokens* instead of its
core-seconds. Credit: per iteration, the problems only the search solved (no teacher's greedy answer, nor any
RFT sample of that iteration, was right); and every arm's accuracy on the held-out problems no teacher's greedy
answer solves. :mod:`agents.bench.learning_suite` runs it all, with the signals, the ablations and the report.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ARMS = ("search", "sft-greedy", "rft")
LEARNING_TRAINER = {"epochs": 8, "learning_rate": 2e-3, "batch_size": 16, "ewc": 1000.0, "replay": "auto",
                    "accumulate": True}
"""The learning benchmark's trainer: every arm's, and the learnability check's (:mod:`agents.bench.learnability`).
AdamW (TRL's default) on SFT rows, the guards on: EWC and auto-replay of general data."""


@dataclass
class LearningConfig:
    """What the learning benchmark runs."""

    task: str = "chain5"
    seeds: int = 3
    out: str = "results/learning-chain5"
    loop: dict = field(default_factory=lambda: {"iterations": 3, "prompts_per_iteration": 24, "repeats": 2})
    """``TrainConfig`` settings of every arm (iterations, prompts, repeats, ...)."""
    models: dict = field(default_factory=dict)
    """``teachers`` / ``primary`` / ``judge`` (default: the task's zoo test-bed)."""
    workers: int = 2
    """Self-play processes of the search arm (its core-seconds are its self-play seconds times these)."""
    parts: tuple[str, ...] = ("headline", "signals", "ablations")
    signal_loop: dict = field(default_factory=lambda: {"iterations": 2, "prompts_per_iteration": 24, "repeats": 2})

    def train_kwargs(self) -> dict:
        from tokentree_env.zoo.catalog import default_models

        defaults = default_models(self.task) | ({"max_new_tokens": 48} if self.task == "chain5" else {})
        return {"task": self.task, **LEARNING_TRAINER, **defaults, **self.models}


def _quiet() -> None:
    import torch

    from agents.quiet import quiet_libraries

    torch.set_num_threads(1)
    quiet_libraries()


def _console():
    from rich.console import Console

    return Console(quiet=True)


def _saved(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


# -- the search arm -----------------------------------------------------------------------------------
def search_arm(cfg: LearningConfig, seed: int, overrides: dict | None = None, name: str | None = None) -> dict:
    """One training run with MCTS self-play (resumed if it was stopped); its state and costs."""
    _quiet()
    from agents.training import TrainConfig, TrainingRun

    name = name or f"search-seed{seed}"
    done = Path(cfg.out) / "runs" / f"{name}.json"
    if (saved := _saved(done)) is not None:
        return saved
    folder = Path(cfg.out) / "runs" / name
    config = TrainConfig(output_dir=str(folder), seed=seed, workers=cfg.workers, planner_verifier=True,
                         **(cfg.train_kwargs() | cfg.loop | (overrides or {})))
    started = time.perf_counter()
    resume = (folder / "state.json").exists()
    run = TrainingRun.from_output_dir(folder, console=_console()) if resume else TrainingRun(config, console=_console())
    run.run()
    records = list(run.store)
    teachers = set(config.teachers)
    result = {"arm": "search", "name": name, "seed": seed, "wall_seconds": time.perf_counter() - started,
              "config": asdict(config), "baseline": run.state["baseline"], "history": run.state["history"],
              "teachers": run.state.get("teachers"),
              "core_seconds": [h["self_play_seconds"] * max(1, config.workers) for h in run.state["history"]],
              "teacher_tokens": [sum(v for r in records if r["iteration"] == i
                                     for k, v in r.get("forwarded_by_model", {}).items() if k in teachers)
                                 for i in range(len(run.state["history"]))],
              "solved": [[r["prompt"] for r in records if r["iteration"] == i and r["hard_reward"] >= 0.5]
                         for i in range(len(run.state["history"]))],
              "prompts": [sorted({r["prompt"] for r in records if r["iteration"] == i})
                          for i in range(len(run.state["history"]))],
              "final_primary": str(folder / "checkpoints" / f"iter-{config.iterations - 1}" / "primary")}
    done.write_text(json.dumps(result))
    return result


# -- the controls ---------------------------------------------------------------------------------------
class Budget:
    """A data-generation budget: core-seconds, or teacher forwarded tokens."""

    def __init__(self, seconds: float | None = None, tokens: int | None = None) -> None:
        self.seconds, self.tokens, self.spent_tokens, self.start = seconds, tokens, 0, time.perf_counter()

    def left(self) -> bool:
        if self.tokens is not None:
            return self.spent_tokens < self.tokens
        return time.perf_counter() - self.start < self.seconds


def control_arm(cfg: LearningConfig, seed: int, arm: str, search: dict, by: str = "seconds") -> dict:
    """SFT on verified teacher answers (``sft-greedy``) or on verified samples (``rft``), each iteration under the
    search run's budget of that iteration (its core-seconds, or with ``by="tokens"`` its teacher tokens)."""
    _quiet()
    from agents.training import TrainConfig, TrainingRun
    from tokentree_env.models import load_model
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    name = f"{arm}-{by}-seed{seed}"
    done = Path(cfg.out) / "runs" / f"{name}.json"
    if (saved := _saved(done)) is not None:
        return saved
    folder = Path(cfg.out) / "runs" / name
    shutil.rmtree(folder, ignore_errors=True)
    config = TrainConfig(**{**search["config"], "output_dir": str(folder), "workers": 1})
    run = TrainingRun(config, console=_console())
    task = load_task(config.task)
    held = {p.prompt for p in run.validation_problems(config.task)}
    fresh = [p for p in task.problems("train") if p.prompt not in held]
    random.Random(f"control:{seed}").shuffle(fresh)
    by_prompt = {p.prompt: p for p in task.problems("train")}
    teachers = [HFTeacher(spec) for spec in config.teachers]
    lm = load_model(config.primary)
    run.state["baseline"] = baseline = run.evaluate(lm)
    history, buffer, cursor, started, samples = [], [], 0, time.perf_counter(), []
    for iteration in range(len(search["history"])):
        budget = (Budget(tokens=search["teacher_tokens"][iteration]) if by == "tokens"
                  else Budget(seconds=search["core_seconds"][iteration]))
        before = sum(t.counters.forwarded_tokens for t in teachers)
        if arm == "sft-greedy":
            records, cursor = _greedy_records(teachers, task, fresh, cursor, budget, before, config.max_new_tokens)
            rounds = 0
        else:
            prompts = [by_prompt[p] for p in search["prompts"][iteration]]
            records, rounds, drawn = _rft_records(teachers, task, prompts, budget, before, config.max_new_tokens,
                                                  seed * 1000 + iteration)
            samples.append(drawn)
        buffer += records
        trained = time.perf_counter()
        run.train_round(lm, records, buffer if config.accumulate else records, iteration)
        metrics = run.evaluate(lm) | {"iteration": iteration, "answers": len(records), "rft_rounds": rounds,
                                      "teacher_tokens": sum(t.counters.forwarded_tokens for t in teachers) - before,
                                      "train_seconds": time.perf_counter() - trained,
                                      "mean_hard_reward": sum(r["hard_reward"] for r in records) / max(1, len(records))}
        history.append(metrics)
        run.state["history"] = history
    checkpoint = folder / "final-primary"
    lm.model.save_pretrained(checkpoint)
    lm.tokenizer.save_pretrained(checkpoint)
    result = {"arm": arm, "by": by, "name": name, "seed": seed, "wall_seconds": time.perf_counter() - started,
              "baseline": baseline, "history": history, "rft_right": samples, "final_primary": str(checkpoint)}
    done.write_text(json.dumps(result))
    return result


def _greedy_records(teachers, task, fresh, cursor, budget, before, max_new_tokens):
    records = []
    while budget.left() and cursor < len(fresh):
        chunk = fresh[cursor:cursor + 16]
        cursor += len(chunk)
        for teacher in teachers:
            for p, a in zip(chunk, teacher.answers([p.prompt for p in chunk], max_new_tokens=max_new_tokens), strict=True):
                ok = float(task.verify(p, a))
                records.append({"prompt": p.prompt, "completion": a, "hard_reward": ok, "episode_return": ok})
        budget.spent_tokens = sum(t.counters.forwarded_tokens for t in teachers) - before
    return records, cursor


def _rft_records(teachers, task, prompts, budget, before, max_new_tokens, seed):
    """Rounds of one temperature-1 sample per prompt from each teacher until the budget is spent; the distinct
    right answers (and every prompt a sample got right, for the credit count)."""
    from tokentree_env.models.generation import sample_ids

    right: dict[tuple[str, str], dict] = {}
    solved: set[str] = set()
    rounds = 0
    while budget.left() and prompts:
        for i, teacher in enumerate(teachers):
            rows = [teacher.tokenizer(p.prompt)["input_ids"] for p in prompts]
            drawn = sample_ids(teacher.model, teacher.tokenizer, rows, n=1, max_new_tokens=max_new_tokens,
                               seed=seed * 31 + rounds * 7 + i)
            for p, ids, (new,) in zip(prompts, rows, drawn, strict=True):
                teacher.counters.add(calls=len(new) + 1, forwarded=len(ids) + len(new), generated=len(new) + 1)
                text = teacher.tokenizer.decode(new, skip_special_tokens=True)
                if task.verify(p, text) >= 0.5:
                    solved.add(p.prompt)
                    right.setdefault((p.prompt, text), {"prompt": p.prompt, "completion": text, "hard_reward": 1.0,
                                                        "episode_return": 1.0})
        rounds += 1
        budget.spent_tokens = sum(t.counters.forwarded_tokens for t in teachers) - before
    return list(right.values()), rounds, sorted(solved)


# -- the run ---------------------------------------------------------------------------------------------
def headline(cfg: LearningConfig, progress=print) -> list[dict]:
    """Every seed's search run (alone on the machine: its workers take the cores), then its controls two at a
    time (one core each, as their budgets are counted)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    results = []
    for seed in range(cfg.seeds):
        search = search_arm(cfg, seed)
        progress(f"search seed {seed}: {search['baseline']['task_accuracy']:.3f} -> "
                 f"{search['history'][-1]['task_accuracy']:.3f} in {search['wall_seconds']:.0f} s")
        results.append(search)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(control_arm, cfg, s["seed"], arm, s, by) for s in results
                   for arm in ("sft-greedy", "rft") for by in ("seconds", "tokens")]
        for future in futures:
            control = future.result()
            progress(f"{control['name']}: {control['history'][-1]['task_accuracy']:.3f}")
            results.append(control)
    return results
