"""``python -m benchmarks.learning --check``: can the primary learn the task from verified answers at all?

A learning comparison in which no arm can learn says nothing (the last one read 0 = 0), so this check runs before
any comparison, with its settings fixed here and quoted in benchmarks/README.md before it runs:

- **Data**: the teachers' verified greedy answers (each in its own format, as the env's reference answers) to
  train-split problems, the validation slice excluded; ``answers`` verified answers a round, ``rounds`` rounds,
  the problems in a seeded order. The 3,500 listed train problems give about 3,900 verified answers, so later
  rounds draw fresh train problems (``Task.sample``: never a held-out problem, and here never one of the
  validation slice). A diagnostic variant keeps only answers in one ``style``.
- **Trainer**: the learning benchmark's own (:data:`tokentree_benchmarks.learning_arms.LEARNING_TRAINER`: optimiser, epochs,
  learning rate, EWC, replay of general data), through the loop's own ``TrainingRun.train_round``; the buffer
  accumulates as in the loop.
- **Measure**: the primary's own greedy accuracy on the **validation slice** (:data:`VALIDATION_SLICE`, train
  problems never trained on, used to choose among primaries and settings) after every round, and on the general
  task ``reverse`` (200 held-out problems). The task's held-out split is not read here: it is measured once, for
  the final primary, by :func:`heldout_once`.
- **Pass**: validation accuracy at least ``share`` (60 %) of the best teacher's on the same slice, and ``reverse``
  at least ``general_floor`` (0.9).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

VALIDATION_SLICE = (3500, 4000)
"""The ``chain5`` train problems that choose among primaries and settings: never trained on, never measured as
held-out."""


@dataclass
class CheckConfig:
    """What the learnability check runs (see the module docstring)."""

    task: str = "chain5"
    primary: str = "zoo:chain5-primary"
    rounds: int = 3
    answers: int = 2000
    """Verified answers per round."""
    validation: tuple[int, int] = VALIDATION_SLICE
    share: float = 0.6
    general_floor: float = 0.9
    style: str | None = None
    """Diagnostic: keep only answers in this style (as the task's answer format declares it)."""
    trainer: dict = field(default_factory=dict)
    """``TrainConfig`` settings over the learning benchmark's (:data:`tokentree_benchmarks.learning_arms.LEARNING_TRAINER`)."""
    general_size: int = 200
    max_new_tokens: int = 48
    seed: int = 0
    out: str = "results/learnability"


def _teachers(task: str):
    from tokentree_env.teachers import HFTeacher
    from tokentree_env.zoo.catalog import default_models

    return [HFTeacher(spec) for spec in default_models(task)["teachers"]]


def _accuracy_and_styles(lm, task, problems, max_new_tokens: int) -> tuple[float, dict]:
    """The model's greedy accuracy on ``problems`` and the styles its answers are in."""
    from tokentree_env.models.generation import greedy_ids
    from tokentree_env.models.prompts import prompt_ids

    rows = [prompt_ids(lm.tokenizer, p.prompt) for p in problems]
    answers = [lm.tokenizer.decode(ids, skip_special_tokens=True)
               for ids in greedy_ids(lm.model, lm.tokenizer, rows, max_new_tokens=max_new_tokens)]
    styles = Counter(task.answer_format.style_of(p.prompt, a) or "none" for p, a in zip(problems, answers, strict=True))
    return sum(task.verify(p, a) for p, a in zip(problems, answers, strict=True)) / max(1, len(problems)), dict(styles)


def collect(teachers, task, pool: list, cursor: int, want: int, max_new_tokens: int,
            style: str | None = None) -> tuple[list[dict], int]:
    """Verified greedy answers of the teachers to ``pool[cursor:]``, until ``want`` are collected (optionally only
    those in ``style``); returns them as episode records and the new cursor."""
    records = []
    while len(records) < want and cursor < len(pool):
        chunk = pool[cursor:cursor + 64]
        cursor += len(chunk)
        for teacher in teachers:
            for p, text in zip(chunk, teacher.answers([p.prompt for p in chunk], max_new_tokens=max_new_tokens),
                               strict=True):
                if task.verify(p, text) < 0.5:
                    continue
                if style is not None and task.answer_format.style_of(p.prompt, text) != style:
                    continue
                records.append({"prompt": p.prompt, "completion": text, "hard_reward": 1.0, "episode_return": 1.0,
                                "iteration": 0})
    return records[:want], cursor


def fresh_problems(task, exclude: set[str], rng: random.Random, n: int) -> list:
    """``n`` more train problems drawn from the task (never held out), none of ``exclude``, all distinct."""
    out, seen = [], set(exclude)
    for _ in range(20 * n):
        if len(out) == n:
            break
        problem = task.sample(rng)
        if problem.prompt not in seen:
            seen.add(problem.prompt)
            out.append(problem)
    return out


def check(cfg: CheckConfig, progress=print) -> dict:
    """Run the check; write ``check.json`` and ``check.md`` under ``cfg.out``; return the result."""
    import torch

    from agents.training import TrainConfig, TrainingRun
    from tokentree_env.models import load_model
    from tokentree_env.tasks import load_task

    from .config import machine, quiet_console
    from .learning_arms import LEARNING_TRAINER

    torch.set_num_threads(1)
    started = time.perf_counter()
    task, general = load_task(cfg.task), load_task("reverse")
    train = list(task.problems("train"))
    lo, hi = cfg.validation
    validation = train[lo:hi]
    pool = [p for i, p in enumerate(train) if not lo <= i < hi]
    rng = random.Random(f"learnability:{cfg.seed}")
    rng.shuffle(pool)
    pool += fresh_problems(task, {p.prompt for p in train}, rng, cfg.rounds * cfg.answers * 2)
    general_problems = list(general.problems("heldout"))[: cfg.general_size]
    teachers = _teachers(cfg.task)
    teacher_rows = {}
    for teacher in teachers:
        answers = teacher.answers([p.prompt for p in validation], max_new_tokens=cfg.max_new_tokens)
        teacher_rows[teacher.name] = sum(task.verify(p, a) for p, a in zip(validation, answers, strict=True)) / len(
            validation)
    best = max(teacher_rows.values())
    out = Path(cfg.out)
    trainer = LEARNING_TRAINER | cfg.trainer
    config = TrainConfig(output_dir=str(out / "run"), task=cfg.task, primary=cfg.primary, judge=None,
                         teachers=tuple(t.name for t in teachers), seed=cfg.seed, **trainer)
    run = TrainingRun(config, console=quiet_console())
    lm = load_model(cfg.primary)

    def measure() -> dict:
        acc, styles = _accuracy_and_styles(lm, task, validation, cfg.max_new_tokens)
        general_acc, _ = _accuracy_and_styles(lm, general, general_problems, cfg.max_new_tokens)
        guards = {"validation_task_accuracy": acc, "validation_general_accuracy": general_acc}  # what replay reads
        return {"validation_accuracy": acc, "general_accuracy": general_acc, "styles": styles} | guards

    start = measure()
    run.state["baseline"] = start
    progress(f"start: validation {start['validation_accuracy']:.3f}, reverse {start['general_accuracy']:.3f}, "
             f"best teacher {best:.3f}")
    history, buffer, cursor = [], [], 0
    for round_ in range(cfg.rounds):
        records, cursor = collect(teachers, task, pool, cursor, cfg.answers, cfg.max_new_tokens, cfg.style)
        buffer += records
        trained = time.perf_counter()
        run.train_round(lm, records, buffer if config.accumulate else records, round_)
        metrics = measure() | {"round": round_, "answers": len(records), "mean_hard_reward": 1.0,
                               "train_seconds": time.perf_counter() - trained, "replay": run._last_replay}
        history.append(metrics)
        run.state["history"] = history
        progress(f"round {round_ + 1}: {len(records)} answers, validation {metrics['validation_accuracy']:.3f}, "
                 f"reverse {metrics['general_accuracy']:.3f}")
    final = history[-1]
    passed = final["validation_accuracy"] >= cfg.share * best and final["general_accuracy"] >= cfg.general_floor
    # Round-trip through JSON so the returned record equals the one written (tuples become lists).
    result = {"config": json.loads(json.dumps(asdict(cfg))), "trainer": trainer, "machine": machine(), "teachers": teacher_rows,
              "best_teacher": best, "start": start, "history": history, "passed": passed,
              "parameters": sum(p.numel() for p in lm.model.parameters()), "seconds": time.perf_counter() - started}
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(result, indent=1))
    (out / "check.md").write_text(markdown(result))
    lm.model.save_pretrained(out / "trained-primary")
    lm.tokenizer.save_pretrained(out / "trained-primary")
    progress(verdict(result))
    return result


def verdict(result: dict) -> str:
    """The one line that says pass or fail, with its numbers."""
    cfg, final = result["config"], result["history"][-1]
    need = cfg["share"] * result["best_teacher"]
    return (f"learnability check {'PASSED' if result['passed'] else 'FAILED'}: validation accuracy "
            f"{result['start']['validation_accuracy']:.3f} -> {final['validation_accuracy']:.3f} (needs >= {need:.3f}, "
            f"{cfg['share']:.0%} of the best teacher's {result['best_teacher']:.3f}); reverse "
            f"{final['general_accuracy']:.3f} (needs >= {cfg['general_floor']}); {result['seconds'] / 60:.1f} min")


def markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [f"Learnability check: `{cfg['primary']}` ({result['parameters']:,} parameters) on `{cfg['task']}`, "
             f"{cfg['rounds']} rounds x {cfg['answers']} verified teacher answers"
             + (f" in the {cfg['style']} style only" if cfg["style"] else "") + f"; trainer {result['trainer']}.", "",
             "| round | answers | validation accuracy | reverse | replay | styles of the primary's answers |",
             "|---|---|---|---|---|---|",
             (f"| start | - | {result['start']['validation_accuracy']:.3f} | {result['start']['general_accuracy']:.3f} | "
              f"- | {result['start']['styles']} |")]
    lines += [f"| {h['round'] + 1} | {h['answers']} | {h['validation_accuracy']:.3f} | {h['general_accuracy']:.3f} | "
              f"{'on' if h['replay'] else 'off'} | {h['styles']} |" for h in result["history"]]
    lines += ["", "Teachers on the validation slice: " + ", ".join(f"{k} {v:.3f}" for k, v in result["teachers"].items()),
              "", verdict(result)]
    return "\n".join(lines) + "\n"


def heldout_once(primary: str, task_name: str = "chain5", n: int = 200, max_new_tokens: int = 48) -> dict:
    """The held-out accuracy of a primary and of each teacher on the first ``n`` held-out problems: measured once,
    for the final primary (the check itself never reads the held-out split)."""
    from tokentree_env.models import load_model
    from tokentree_env.tasks import load_task

    task = load_task(task_name)
    held = list(task.problems("heldout"))[:n]
    acc, styles = _accuracy_and_styles(load_model(primary), task, held, max_new_tokens)
    teachers = {}
    for teacher in _teachers(task_name):
        answers = teacher.answers([p.prompt for p in held], max_new_tokens=max_new_tokens)
        teachers[teacher.name] = sum(task.verify(p, a) for p, a in zip(held, answers, strict=True)) / len(held)
    return {"primary": acc, "styles": styles, "teachers": teachers, "problems": n}
