"""The ``chain5-skills`` test-bed's gates: nothing simpler than combining the teachers step by step may solve it.

Fixed before any search runs (issue 38), each measured with a 95 % interval on held-out problems (500 by default;
``tokentree zoo report`` runs it, a CI test runs it on 200 with 16 samples):

- each teacher's greedy accuracy: at most 40 %;
- the pooled teachers' pass@K at temperature 1 (K = 64 samples in all, the teachers in turn): at most 50 %;
- step-level majority (at each step every teacher writes its next step from the chain so far; the step most
  teachers write is kept, a tie going to the lowest-numbered teacher among the tied): at most 50 %;
- ensemble greedy under the mixture panel (``agents.evaluate(make_agent("ensemble-greedy"), ...)`` with the
  test-bed's models, in evaluation mode; the env never imports the agents, so the caller passes it in): at most 50 %;
- an oracle that keeps, at each step, a teacher's step that is right: at least 90 % (an answer exists in the tree);
- the judge's ROC AUC on the teachers' right and wrong greedy answers: 0.70-0.90;
- the primary: at most 15 % on the test-bed, at least 0.8 on ``reverse``.

Beside the gates (no targets): "any teacher's greedy answer right", the share of problems with steps of two or
more hard kinds, and per teacher and kind of step (on the oracle's chains, whose prefixes are right) how often
its step is right and how often it is what its wrong rule gives (:func:`tokentree_env.tasks.skills.column_step`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from itertools import combinations

from tokentree_env.stats import auc_interval, roc_auc, wilson
from tokentree_env.zoo.catalog import SKILLS_JUDGE, SKILLS_PRIMARY, SKILLS_TEACHERS, ZOO
from tokentree_env.zoo.testbed import Figure

TASK = "chain5-skills"
STYLE = "explicit"
SKILLS_SAMPLE = 500
POOLED_SAMPLES = 64
MAX_NEW_TOKENS = 48
STEP_TOKENS = 9
"""New tokens a step may take (``"199-99="`` is 7 characters, the last step ``"109."`` 4)."""
GATES: dict[str, tuple[float | None, float | None]] = {
    "teacher_accuracy": (None, 0.40),
    "pooled_pass": (None, 0.50),
    "step_majority": (None, 0.50),
    "ensemble_greedy": (None, 0.50),
    "oracle": (0.90, None),
    "judge_auc": (0.70, 0.90),
    "primary_task": (None, 0.15),
    "primary_reverse": (0.80, None),
}
"""Gate -> (minimum, maximum), declared before any search is measured."""
EnsembleFn = Callable[[list[str], dict], list[float]]
"""``(prompts, env_kwargs) -> hard rewards`` of ensemble greedy, one per prompt (the agents package provides it)."""


def gate(name: str, value: float, interval: tuple[float, float], key: str | None) -> Figure:
    """A figure checked against its gate in :data:`GATES` (no key: a figure without a target)."""
    lo, hi = GATES[key] if key else (None, None)
    parts = ([f">= {lo:.2f}"] if lo is not None else []) + ([f"<= {hi:.2f}"] if hi is not None else [])
    met = None if not parts else ((lo is None or value >= lo) and (hi is None or value <= hi))
    return Figure(name, value, *interval, " and ".join(parts), met)


def share(name: str, hits: Sequence[float], key: str | None = None) -> Figure:
    """A proportion with its Wilson interval, checked against gate ``key``."""
    return gate(name, sum(hits) / max(1, len(hits)), wilson(sum(hits), len(hits)), key)


def env_kwargs(teachers: Sequence[str], primary: str, judge: str | None) -> dict:
    """The env the test-bed's ensemble greedy runs in: its models, its task, room for a whole chain."""
    return {"task": TASK, "teachers": list(teachers), "primary": primary, "judge": judge,
            "max_new_tokens": MAX_NEW_TOKENS}


def next_steps(lm, texts: Sequence[str], boundary: str = r"[=,.]") -> list[str]:
    """Each text's next step under ``lm``: its greedy continuation up to and including the first step boundary
    (the whole continuation when none comes within :data:`STEP_TOKENS`)."""
    from tokentree_env.models.generation import greedy_ids
    from tokentree_env.models.prompts import prompt_ids

    rows = [prompt_ids(lm.tokenizer, t) for t in texts]
    news = greedy_ids(lm.model, lm.tokenizer, rows, max_new_tokens=STEP_TOKENS)
    out = []
    for text in lm.tokenizer.batch_decode(news, skip_special_tokens=True):
        found = re.search(boundary, text)
        out.append(text[:found.end()] if found else text)
    return out


Chooser = Callable[[list[str], object, str], "int | None"]


def stepwise(lms: Sequence, problems: Sequence, choose: Chooser, max_steps: int = 8) -> list[dict]:
    """Build one chain per problem, step by step: every model writes its next step from the chain so far and
    ``choose(steps, problem, prefix)`` keeps one (its index) or stops (None). Returns per problem the chain, the
    steps each model offered at each step, and the kept indices."""
    rows = [{"prefix": "", "offered": [], "kept": [], "done": False} for _ in problems]
    for _ in range(max_steps):
        live = [i for i, r in enumerate(rows) if not r["done"]]
        if not live:
            break
        texts = [problems[i].prompt + rows[i]["prefix"] for i in live]
        per_model = [next_steps(lm, texts) for lm in lms]
        for j, i in enumerate(live):
            steps, row = [m[j] for m in per_model], rows[i]
            pick = choose(steps, problems[i], row["prefix"])
            row["offered"].append(steps)
            row["kept"].append(pick)
            if pick is None or not steps[pick]:
                row["done"] = True
                continue
            row["prefix"] += steps[pick]
            row["done"] = row["prefix"].endswith(".")
    return rows


def majority_choice(steps: list[str], problem, prefix: str) -> int:
    """The step most models write; a tie goes to the lowest-numbered model among the tied."""
    counts = Counter(steps)
    top = max(counts.values())
    return next(i for i, s in enumerate(steps) if counts[s] == top)


def oracle_choice(steps: list[str], problem, prefix: str) -> int | None:
    """A model whose step continues the reference chain (the first such), or None when no model's does."""
    reference = problem.solutions[STYLE]
    return next((i for i, s in enumerate(steps) if s and reference.startswith(prefix + s)), None)


def bugs_of(spec: str) -> tuple[str, ...]:
    """The catalogue's bugs of a zoo model given as ``zoo:NAME`` or as a folder named ``NAME`` (or ``NAME@STEP``, a
    training snapshot); none for any other model."""
    from pathlib import Path

    name = Path(spec.removeprefix("zoo:")).name.split("@")[0]
    return ZOO[name].bugs if name in ZOO else ()


def kind_table(rows: list[dict], problems: Sequence, names: Sequence[str]) -> dict:
    """Per model and kind of step, on the oracle's chains (every prefix right): steps seen, the share right and the
    share equal to what the model's wrong rule gives (its catalogue ``bugs``; the right result where none bites)."""
    from tokentree_env.tasks.builtin import parse_chain
    from tokentree_env.tasks.skills import chain_kinds, chain_partials, column_step

    counts: dict = {name: {} for name in names}
    for row, problem in zip(rows, problems, strict=True):
        terms, ops = parse_chain(problem.prompt)
        kinds, partials = chain_kinds(terms, ops), chain_partials(terms, ops)
        for j in range(1, min(len(row["offered"]), len(ops) + 1)):  # step j states the j-th partial result
            for name, step in zip(names, row["offered"][j], strict=True):
                rule = column_step(partials[j - 1], ops[j - 1], terms[j], bugs_of(name))
                said = re.match(r"\d+", step)
                cell = counts[name].setdefault(kinds[j - 1], Counter())
                cell["steps"] += 1
                cell["right"] += bool(said) and int(said.group()) == partials[j]
                cell["rule"] += bool(said) and int(said.group()) == rule
    return {name: {kind: {"steps": c["steps"], "right": c["right"] / c["steps"], "rule": c["rule"] / c["steps"]}
                   for kind, c in sorted(cells.items())} for name, cells in counts.items()}


def _pooled(teachers: Sequence[str], prompts: list[str], total: int, seed: int) -> list[list[str]]:
    """``total`` temperature-1 samples per prompt from the teachers in turn (the first ones get one more when
    ``total`` does not divide evenly)."""
    from tokentree_env.zoo.testbed import _samples

    pooled: list[list[str]] = [[] for _ in prompts]
    for i, spec in enumerate(teachers):
        n = total // len(teachers) + (i < total % len(teachers))
        if n:
            for row, samples in zip(pooled, _samples(spec, prompts, n, seed + i), strict=True):
                row += samples
    return pooled


def skills_report(*, teachers: Sequence[str] = SKILLS_TEACHERS, primary: str = SKILLS_PRIMARY,
                  judge: str | None = SKILLS_JUDGE, n: int = SKILLS_SAMPLE, samples: int = POOLED_SAMPLES,
                  ensemble: EnsembleFn | None = None, split: str = "heldout", seed: int = 0, progress=None) -> dict:
    """Measure every gate on the first ``n`` problems of ``split`` ("heldout"; tune on "train" only).

    ``ensemble(prompts, env_kwargs)`` runs ensemble greedy (:func:`agents.evaluation.ensemble_greedy_rewards`);
    without it that gate reads "not measured" and the report is not met. Returns a JSON-ready dict like the
    ``chain5`` test-bed's (``figures``, ``overlap``, ``all_met``) with ``kinds`` (:func:`kind_table`) added.
    """
    from tokentree_env.judge import Judge
    from tokentree_env.models import load_model
    from tokentree_env.models.generation import greedy_complete
    from tokentree_env.tasks import load_task
    from tokentree_env.tasks.builtin import parse_chain
    from tokentree_env.tasks.skills import chain_kinds
    from tokentree_env.teachers import HFTeacher

    note = progress or (lambda message: None)
    task = load_task(TASK)
    problems = list(task.problems(split))[:n]
    prompts = [p.prompt for p in problems]
    greedy, right = {}, {}
    for spec in teachers:
        note(f"{spec}: greedy answers")
        greedy[spec] = HFTeacher(spec).answers(prompts, max_new_tokens=MAX_NEW_TOKENS)
        right[spec] = [task.verify(p, a) for p, a in zip(problems, greedy[spec], strict=True)]
    figures = [share(f"teacher {spec}", right[spec], "teacher_accuracy") for spec in teachers]
    figures.append(share("any teacher's greedy answer right", [max(right[t][k] for t in teachers) for k in range(n)]))
    note(f"{samples} pooled samples per problem")
    pooled = _pooled(teachers, prompts, samples, seed)
    figures.append(share(f"pooled teachers' pass@{samples} (temperature 1)",
                         [max((task.verify(p, s) for s in row), default=0.0) for p, row in zip(problems, pooled,
                                                                                                strict=True)],
                         "pooled_pass"))
    lms = [load_model(spec) for spec in teachers]
    note("step-level majority")
    majority = stepwise(lms, problems, majority_choice)
    figures.append(share("step-level majority", [task.verify(p, r["prefix"]) for p, r in zip(problems, majority,
                                                                                              strict=True)],
                         "step_majority"))
    if ensemble is not None:
        note("ensemble greedy under the mixture panel")
        figures.append(share("ensemble greedy (mixture panel)", ensemble(prompts, env_kwargs(teachers, primary, judge)),
                             "ensemble_greedy"))
    else:
        figures.append(Figure("ensemble greedy (mixture panel): not measured", float("nan"), float("nan"),
                              float("nan"), "<= 0.50", False))
    note("step-wise oracle")
    oracle = stepwise(lms, problems, oracle_choice)
    figures.append(share("oracle: a right teacher's step at every step",
                         [task.verify(p, r["prefix"]) for p, r in zip(problems, oracle, strict=True)], "oracle"))
    if judge is not None:
        note("judge verdicts")
        checker, pos, neg = Judge(judge), [], []
        for spec in teachers:
            for verdict, ok in zip(checker.verdicts(prompts, greedy[spec]), right[spec], strict=True):
                (pos if ok else neg).append(verdict)
        auc = roc_auc(pos, neg) if pos and neg else float("nan")
        figures.append(gate(f"judge {judge} ROC AUC ({checker.protocol} protocol)", auc,
                            auc_interval(auc, len(pos), len(neg)) if pos and neg else (auc, auc), "judge_auc"))
    note("primary")
    lm = load_model(primary)
    for name, key in ((TASK, "primary_task"), ("reverse", "primary_reverse")):
        held = problems if name == TASK else list(load_task(name).problems(split))[:n]
        said = greedy_complete(lm.model, lm.tokenizer, [p.prompt for p in held], max_new_tokens=MAX_NEW_TOKENS)
        figures.append(share(f"primary {primary} on {name}",
                             [load_task(name).verify(p, c) for p, c in zip(held, said, strict=True)], key))
    kinds = [set(chain_kinds(*parse_chain(p.prompt))) - {"plain"} for p in problems]
    figures.append(share("problems with steps of 2+ hard kinds", [len(k) >= 2 for k in kinds]))
    overlap = {}
    for a, b in combinations(teachers, 2):
        both = sum(1 for x, y in zip(right[a], right[b], strict=True) if not x and not y)
        either = sum(1 for x, y in zip(right[a], right[b], strict=True) if not x or not y)
        overlap[f"{a} & {b}"] = {"both_fail": both / max(1, n), "jaccard": both / either if either else 0.0}
    return {"task": TASK, "split": split, "problems": n, "pooled_samples": samples, "teachers": list(teachers),
            "primary": primary, "judge": judge, "figures": [asdict(f) for f in figures], "overlap": overlap,
            "kinds": kind_table(oracle, problems, teachers),
            "all_met": all(f.met is not False for f in figures)}


def print_kinds(report: dict) -> None:
    """Print each teacher's step accuracy and rule-following share per kind of step."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="per kind of step, on right prefixes: share right / share that is the teacher's own rule")
    kinds = sorted({k for cells in report["kinds"].values() for k in cells})
    for col in ("teacher", *kinds):
        table.add_column(col)
    for name, cells in report["kinds"].items():
        table.add_row(name, *(f"{cells[k]['right']:.3f} / {cells[k]['rule']:.3f} ({cells[k]['steps']})"
                              if k in cells else "-" for k in kinds))
    Console().print(table)


def print_skills(report: dict) -> bool:
    """Print the test-bed's gates (:func:`tokentree_env.zoo.testbed.print_testbed`) and the per-kind table; return
    whether every gate is met."""
    from tokentree_env.zoo.testbed import print_testbed

    met = print_testbed(report)
    print_kinds(report)
    return met
