"""``python -m benchmarks.search_kinds --task chain5-skills``: where each search goes wrong on a test-bed whose steps
are of declared kinds (:mod:`tokentree_env.tasks.skills`), read from the search benchmark's stored episodes.

Per row of the search benchmark, in each mode:

- **first error by kind**: for every wrong answer, the kind of the step (plain, carry, borrow, hundred) whose
  partial result it first fails to reach (the step :func:`~tokentree_benchmarks.search_report.first_wrong_step`
  names);
- **writer changes by kind, read by rule**: at each step an answer writes (``P op T = R``, from the partial result
  it wrote before), the teachers whose own rule (their catalogue ``bugs``, :func:`~tokentree_env.tasks.skills.column_step`)
  gives the written ``R``. Where no teacher's rule gives both this step and the one before, the writer must have
  changed there. It is a lower bound (a change between two teachers that agree on both steps does not show), and it
  needs no record of who wrote what: sampled answers are read the same way as searched ones.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path

from tokentree_env.tasks.skills import STEP_KINDS, chain_kinds, column_step

from .search_report import first_wrong_step


def rule_writers(prompt: str, completion: str, bugs: dict[str, Sequence[str]]) -> list[tuple[str, set[str]]]:
    """Per step the answer writes: the problem's kind of that step (worked right) and the teachers whose rule, from
    the partial result the answer wrote before, gives the result it wrote (empty where none does). Stops at the
    first step it cannot read."""
    from tokentree_env.tasks.builtin import parse_chain

    terms, ops = parse_chain(prompt)
    written = [int(x) for x in re.findall(r"=\s*(\d+)", completion)]
    out, previous = [], terms[0]
    for kind, op, term, result in zip(chain_kinds(terms, ops), ops, terms[1:], written, strict=False):
        if op == "-" and previous < term:
            break  # a step below zero: no teacher's rule is defined there
        out.append((kind, {name for name, b in bugs.items() if column_step(previous, op, term, b) == result}))
        previous = result
    return out


def kinds_of_row(results: list[dict], bugs: dict[str, Sequence[str]]) -> dict:
    """One row's first errors by kind and its writer changes by kind (see the module docstring)."""
    from tokentree_env.tasks.builtin import parse_chain

    first = dict.fromkeys(STEP_KINDS, 0)
    steps, changes = dict.fromkeys(STEP_KINDS, 0), dict.fromkeys(STEP_KINDS, 0)
    for r in results:
        if r["correct"] < 0.5:
            k = first_wrong_step(r["prompt"], r["completion"])
            kinds = chain_kinds(*parse_chain(r["prompt"]))
            if 1 <= k <= len(kinds):
                first[kinds[k - 1]] = first.get(kinds[k - 1], 0) + 1
        read = rule_writers(r["prompt"], r["completion"], bugs)
        for (_, before), (kind, now) in itertools.pairwise(read):
            steps[kind] = steps.get(kind, 0) + 1
            changes[kind] = changes.get(kind, 0) + (bool(before) and bool(now) and not before & now)
    return {"answers": len(results), "wrong": sum(r["correct"] < 0.5 for r in results), "first_error": first,
            "steps": steps, "writer_changes": changes}


def report(out: str | Path, teachers: Sequence[str]) -> dict:
    """Every row of a stored search run (``out``/``episodes.jsonl``, the pilot left out), by mode and spec."""
    from tokentree_env.zoo.skills_testbed import bugs_of

    bugs = {t: bugs_of(t) for t in teachers}
    rows: dict[str, dict[str, list[dict]]] = {}
    for line in Path(out, "episodes.jsonl").read_text().splitlines():
        r = json.loads(line)
        if not r["mode"].startswith("pilot"):
            rows.setdefault(r["mode"], {}).setdefault(r["spec"], []).append(r)
    return {"teachers": {t: list(b) for t, b in bugs.items()},
            "modes": {mode: {spec: kinds_of_row(results, bugs) for spec, results in sorted(specs.items())}
                      for mode, specs in rows.items()}}


def markdown(result: dict) -> str:
    head = " / ".join(STEP_KINDS)
    lines = ["Teachers' wrong rules: " + "; ".join(f"{t}: {', '.join(b) or 'none'}" for t, b in result["teachers"].items())]
    for mode, rows in result["modes"].items():
        lines += ["", f"### {mode}", "",
                  (f"| row | wrong / answers | first error at a step of kind ({head}) | writer changes, read by rule, "
                   f"at steps of kind ({head}) |"), "|---|---|---|---|"]
        for spec, k in rows.items():
            first = " / ".join(str(k["first_error"][kind]) for kind in STEP_KINDS)
            change = " / ".join(f"{k['writer_changes'][kind]}/{k['steps'][kind]}" for kind in STEP_KINDS)
            lines.append(f"| {spec} | {k['wrong']} / {k['answers']} | {first} | {change} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_kinds", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="chain5-skills")
    parser.add_argument("--out", default=None, help="the search run's folder (default: results/search-TASK)")
    args = parser.parse_args(argv)
    from tokentree_env.zoo.catalog import default_models

    out = Path(args.out or f"results/search-{args.task}")
    result = report(out, default_models(args.task)["teachers"])
    (out / "kinds.json").write_text(json.dumps(result, indent=1))
    (out / "kinds.md").write_text(text := markdown(result))
    print(text)
    return result


if __name__ == "__main__":
    main()
