"""The zoo's accuracy report: every model on a fixed held-out sample, against its targets.

Teachers and the primary are scored by greedy decoding on each built-in task. The judge is
scored as a completeness detector (ROC AUC of P(EOS | context) on finished vs unfinished
contexts) and as a yes/no verifier (accuracy on correct vs corrupted answers).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokentree_env.judge.judge import worked_verdicts
from tokentree_env.models.generation import greedy_complete, next_token_logprobs
from tokentree_env.models.loader import LoadedModel, load_model
from tokentree_env.stats import roc_auc
from tokentree_env.tasks.builtin import BUILTIN_TASKS, builtin_task
from tokentree_env.zoo.catalog import ZOO

REPORT_SAMPLE = 200
REPORT_SEED = 123


@dataclass
class MetricRow:
    """One model's value on one metric, and whether it meets its target (None: no target)."""

    model: str
    metric: str
    value: float
    target: str = ""
    met: bool | None = None


def task_accuracy(lm: LoadedModel, task_name: str, n: int = REPORT_SAMPLE) -> float:
    """Greedy held-out accuracy of a model on the first ``n`` held-out problems of a task."""
    task = builtin_task(task_name)
    problems = list(task.problems("heldout"))[:n]
    # 48 new tokens: a chain5 answer written out in full runs past 24 tokens on a digit-per-token tokenizer
    completions = greedy_complete(lm.model, lm.tokenizer, [p.prompt for p in problems], max_new_tokens=48)
    return sum(task.verify(p, c) for p, c in zip(problems, completions, strict=True)) / len(problems)


def judge_eos_auc(lm: LoadedModel, n: int = REPORT_SAMPLE, seed: int = REPORT_SEED,
                  tasks: Sequence[str] = ("chain3", "add2", "reverse"),
                  styles: Sequence[str] | None = None) -> float:
    """ROC AUC of the judge's P(EOS | context): finished answers vs unfinished prefixes of ``tasks``
    (in the answer ``styles`` it was trained on; default: every style the problems have)."""
    rng = random.Random(seed)
    finished, unfinished = [], []
    for name in tasks:
        for p in list(builtin_task(name).problems("heldout"))[: n // len(tasks) + 1]:
            solution = p.solutions[rng.choice(sorted(styles or p.solutions))]
            finished.append(p.prompt + solution)
            unfinished.append(p.prompt + solution[: rng.randrange(len(solution) - 1)])
    eos = lm.tokenizer.eos_token_id
    p_fin = next_token_logprobs(lm.model, lm.tokenizer, finished)[:, eos].tolist()
    p_unf = next_token_logprobs(lm.model, lm.tokenizer, unfinished)[:, eos].tolist()
    return roc_auc(p_fin, p_unf)


def judge_verdict_accuracy(lm: LoadedModel, n: int = REPORT_SAMPLE, seed: int = REPORT_SEED) -> float:
    """Accuracy of the judge's y/n verdict on held-out answers, half correct, half corrupted."""
    from tokentree_env.zoo.train import corrupt_answer

    rng = random.Random(seed)
    prompts, answers, labels = [], [], []
    for i, p in enumerate(list(builtin_task("chain3").problems("heldout"))[:n]):
        answer = p.solutions[rng.choice(["step", "terse"])]
        correct = i % 2 == 0
        prompts.append(p.prompt)
        answers.append(answer if correct else corrupt_answer(answer, rng))
        labels.append(correct)
    said_yes = [p > 0.5 for p in worked_verdicts(lm, prompts, answers)]
    return sum(s == c for s, c in zip(said_yes, labels, strict=True)) / len(labels)


def judge_check_auc(lm: LoadedModel, task_name: str, n: int = REPORT_SAMPLE, seed: int = REPORT_SEED,
                    styles: Sequence[str] = ("step",)) -> float:
    """ROC AUC of a checker judge's P(yes) on held-out answers, half right, half with one wrong step carried on
    (the test-bed reports its AUC on the teachers' own answers, which is what matters)."""
    from tokentree_env.judge.judge import checked_verdicts
    from tokentree_env.zoo.train import corrupt_chain

    rng = random.Random(seed)
    problems = list(builtin_task(task_name).problems("heldout"))[:n]
    answers = []
    for i, p in enumerate(problems):
        style = styles[i % len(styles)]
        answers.append(p.solutions[style] if i % 2 == 0 else corrupt_chain(p.prompt, style, rng))
    verdicts = checked_verdicts(lm, [p.prompt for p in problems], answers)
    return roc_auc(verdicts[0::2], verdicts[1::2])


def model_tasks(spec) -> list[str]:
    """The built-in tasks a teacher or primary is measured on: those it trained on, and those with targets."""
    named = [t for t in (*spec.mix, *spec.targets, *spec.maxima) if t in BUILTIN_TASKS]
    return sorted(dict.fromkeys(named))


def evaluate_zoo_model(name: str, models_dir: str | Path | None = None, n: int = REPORT_SAMPLE) -> list[MetricRow]:
    """All metrics of one zoo model, each checked against the catalogue's targets."""
    if name not in ZOO:
        from tokentree_env.errors import ConfigError
        raise ConfigError(f"no zoo model {name!r}; the zoo has {sorted(ZOO)}")
    spec = ZOO[name]
    lm = load_model(str(Path(models_dir) / name)) if models_dir else load_model(f"zoo:{name}")
    if spec.role == "judge" and spec.verdict_protocol == "check":
        checked = next(k.removeprefix("check:") for k in spec.mix if k.startswith("check:"))
        values = {"eos_auc": judge_eos_auc(lm, n, tasks=[checked], styles=spec.judge_styles),
                  "check_auc": judge_check_auc(lm, checked, n, styles=spec.judge_styles)}
    elif spec.role == "judge" and spec.eos_tasks:  # a test-bed's checker: completeness on its own task
        values = {"eos_auc": judge_eos_auc(lm, n, tasks=spec.eos_tasks, styles=spec.judge_styles)}
    elif spec.role == "judge":
        values = {"eos_auc": judge_eos_auc(lm, n), "verdict": judge_verdict_accuracy(lm, n)}
    else:
        values = {t: task_accuracy(lm, t, n) for t in model_tasks(spec)}
    rows = []
    for metric, value in values.items():
        lo, hi = spec.targets.get(metric), spec.maxima.get(metric)
        parts = ([f">= {lo:.2f}"] if lo is not None else []) + ([f"<= {hi:.2f}"] if hi is not None else [])
        met = None if not parts else (lo is None or value >= lo) and (hi is None or value <= hi)
        rows.append(MetricRow(name, metric, value, " and ".join(parts), met))
    return rows


def zoo_report(names: Sequence[str] | None = None, models_dir: str | Path | None = None,
               n: int = REPORT_SAMPLE, progress: bool = True) -> list[MetricRow]:
    """Evaluate the named zoo models (all by default) with a progress bar."""
    from rich.progress import track

    rows: list[MetricRow] = []
    for name in track(list(names or ZOO), description="evaluating the zoo", disable=not progress):
        rows += evaluate_zoo_model(name, models_dir, n)
    return rows


def print_report(rows: Sequence[MetricRow]) -> bool:
    """Print the report as a table; return True when every target is met."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Model zoo accuracy (held-out sample of {REPORT_SAMPLE})")
    for col in ("model", "metric", "value", "target", "met"):
        table.add_column(col)
    for r in rows:
        met = "" if r.met is None else ("[green]yes[/]" if r.met else "[red]NO[/]")
        table.add_row(r.model, r.metric, f"{r.value:.3f}", r.target, met)
    Console().print(table)
    return all(r.met is not False for r in rows)
