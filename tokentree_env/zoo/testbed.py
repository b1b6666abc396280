"""The ``chain5`` test-bed report: the numbers that say whether search *can* pay, fixed before any search.

On held-out problems (500 by default), with a 95 % interval for each figure:

- each teacher's greedy accuracy (target 30-70 %), and each pair's overlap of failures;
- "any teacher's greedy answer right" (at most 80 %) and the majority vote over the teachers' final numbers
  (ties broken toward the lowest-numbered teacher);
- **panel coverage**: the union pass@8, 8 temperature-1 samples from each teacher, verified, any right
  (at least 90 %);
- the test-bed primary's own greedy accuracy on ``chain5`` (at most 15 %: a gap to close) and ``reverse`` (at
  least 0.8: what it must not forget);
- the judge's ROC AUC on the teachers' right and wrong greedy final answers (0.70-0.90): a checker, not a
  second solver.

The teachers answer as they do in the env (:meth:`HFTeacher.answers`); samples use each model's own tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

from tokentree_env.stats import auc_interval, roc_auc, wilson
from tokentree_env.zoo.catalog import CHAIN5_JUDGE, CHAIN5_PRIMARY, CHAIN5_TEACHERS

TESTBED_SAMPLE = 500
SAMPLES_PER_TEACHER = 8
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "teacher_accuracy": (0.30, 0.70),
    "any_teacher_right": (None, 0.80),
    "panel_coverage": (0.90, None),
    "primary_chain5": (None, 0.15),
    "primary_reverse": (0.80, None),
    "judge_auc": (0.70, 0.90),
}


@dataclass
class Figure:
    """A measured figure with its 95 % interval, and whether it meets its target (None: no target)."""

    name: str
    value: float
    low: float
    high: float
    target: str = ""
    met: bool | None = None


def _figure(name: str, value: float, interval: tuple[float, float], key: str | None = None) -> Figure:
    lo, hi = TARGETS.get(key or name, (None, None))
    parts = ([f">= {lo:.2f}"] if lo is not None else []) + ([f"<= {hi:.2f}"] if hi is not None else [])
    met = None if not parts else ((lo is None or value >= lo) and (hi is None or value <= hi))
    return Figure(name, value, *interval, " and ".join(parts), met)


def proportion(name: str, hits: Sequence[float], key: str | None = None) -> Figure:
    return _figure(name, sum(hits) / max(1, len(hits)), wilson(sum(hits), len(hits)), key)


def _answers(spec: str, prompts: list[str]) -> list[str]:
    from tokentree_env.teachers import HFTeacher

    return HFTeacher(spec).answers(prompts, max_new_tokens=48)


def _samples(spec: str, prompts: list[str], n: int, seed: int) -> list[list[str]]:
    from tokentree_env.models import load_model
    from tokentree_env.models.generation import sample_ids

    lm = load_model(spec)
    rows = [lm.tokenizer(p)["input_ids"] for p in prompts]
    per_row = sample_ids(lm.model, lm.tokenizer, rows, n=n, max_new_tokens=48, seed=seed)
    return [lm.tokenizer.batch_decode(ids, skip_special_tokens=True) for ids in per_row]


def testbed_report(*, task_name: str = "chain5", teachers: Sequence[str] = CHAIN5_TEACHERS,
                   primary: str = CHAIN5_PRIMARY, judge: str | None = CHAIN5_JUDGE, n: int = TESTBED_SAMPLE,
                   samples: int = SAMPLES_PER_TEACHER, seed: int = 0, progress=None) -> dict:
    """Measure the test-bed on the first ``n`` held-out problems; every figure with its interval and target.

    ``progress(message)`` is called between the steps. Returns a JSON-ready dict: ``figures`` (a list of
    :class:`Figure` dicts), ``overlap`` (per pair of teachers: the share of problems both fail, and the
    Jaccard overlap of their failures) and ``all_met``.
    """
    from tokentree_env.judge import Judge
    from tokentree_env.models import load_model
    from tokentree_env.tasks import load_task, majority_index
    from tokentree_env.zoo.report import task_accuracy

    note = progress or (lambda message: None)
    task = load_task(task_name)
    problems = list(task.problems("heldout"))[:n]
    prompts = [p.prompt for p in problems]
    greedy, right, sampled = {}, {}, {}
    for i, spec in enumerate(teachers):
        note(f"{spec}: greedy answers")
        greedy[spec] = _answers(spec, prompts)
        right[spec] = [task.verify(p, a) for p, a in zip(problems, greedy[spec], strict=True)]
        note(f"{spec}: {samples} samples per problem")
        sampled[spec] = _samples(spec, prompts, samples, seed + i)
    figures = [proportion(f"teacher {spec}", right[spec], "teacher_accuracy") for spec in teachers]
    figures.append(proportion("any teacher right", [max(right[t][k] for t in teachers) for k in range(n)],
                              "any_teacher_right"))
    votes = [greedy[teachers[majority_index([greedy[t][k] for t in teachers])]][k] for k in range(n)]
    figures.append(proportion("majority vote", [task.verify(p, v) for p, v in zip(problems, votes, strict=True)]))
    coverage = [max(task.verify(p, s) for t in teachers for s in sampled[t][k]) for k, p in enumerate(problems)]
    figures.append(proportion(f"panel coverage (union pass@{samples})", coverage, "panel_coverage"))
    note("primary")
    lm = load_model(primary)
    for name in (task_name, "reverse"):
        held = list(load_task(name).problems("heldout"))[:n]
        acc = task_accuracy(lm, name, len(held))
        figures.append(_figure(f"primary on {name}", acc, wilson(acc * len(held), len(held)), f"primary_{name}"))
    if judge is not None:
        note("judge verdicts")
        checker = Judge(judge)
        pos, neg = [], []
        for spec in teachers:
            verdicts = checker.verdicts(prompts, greedy[spec])
            for verdict, ok in zip(verdicts, right[spec], strict=True):
                (pos if ok else neg).append(verdict)
        auc = roc_auc(pos, neg)
        figures.append(_figure(f"judge {judge} ROC AUC ({checker.protocol} protocol)", auc,
                               auc_interval(auc, len(pos), len(neg)), "judge_auc"))
    overlap = {}
    for a, b in combinations(teachers, 2):
        both = sum(1 for x, y in zip(right[a], right[b], strict=True) if not x and not y)
        either = sum(1 for x, y in zip(right[a], right[b], strict=True) if not x or not y)
        overlap[f"{a} & {b}"] = {"both_fail": both / n, "jaccard": both / either if either else 0.0}
    return {"task": task_name, "problems": n, "samples_per_teacher": samples, "teachers": list(teachers),
            "primary": primary, "judge": judge, "figures": [asdict(f) for f in figures], "overlap": overlap,
            "all_met": all(f.met is not False for f in figures)}


def print_testbed(report: dict) -> bool:
    """Print the test-bed table (and the failure overlaps); return whether every target is met."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['task']} test-bed: {report['problems']} held-out problems, 95 % intervals")
    for col in ("measure", "value", "95 % interval", "target", "met"):
        table.add_column(col)
    for f in report["figures"]:
        met = "" if f["met"] is None else ("[green]yes[/]" if f["met"] else "[red]NO[/]")
        table.add_row(f["name"], f"{f['value']:.3f}", f"{f['low']:.3f}-{f['high']:.3f}", f["target"], met)
    Console().print(table)
    overlap = Table(title="pairwise overlap of the teachers' failures")
    for col in ("pair", "both fail", "Jaccard of failures"):
        overlap.add_column(col)
    for pair, o in report["overlap"].items():
        overlap.add_row(pair, f"{o['both_fail']:.3f}", f"{o['jaccard']:.3f}")
    Console().print(overlap)
    return report["all_met"]


def markdown_table(report: dict) -> str:
    """The test-bed table in Markdown (the README carries it)."""
    lines = ["| measure | value | 95 % interval | target | met |", "|---|---|---|---|---|"]
    for f in report["figures"]:
        met = "" if f["met"] is None else ("yes" if f["met"] else "**NO**")
        lines.append(f"| {f['name']} | {f['value']:.3f} | {f['low']:.3f}-{f['high']:.3f} | {f['target']} | {met} |")
    return "\n".join(lines) + "\n"
