"""The coverage comparison's report (:mod:`tokentree_benchmarks.coverage`): per-round tables, paired statistics,
the targets, and one plot: coverage and held-out pass@1 against generation CPU seconds, one colour per arm."""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import coverage_why

EARLIER_GREEDY_SFT = 0.528
"""``chain5``: SFT on the teachers' greedy answers to fresh prompts, without a pool (the earlier learning comparison,
measured under the old charges): the coverage issue's reference line."""
COLOURS = {"search": "tab:red", "search-sft": "tab:orange", "greedy": "tab:blue", "sampling": "tab:green",
           "student": "tab:purple"}
LABELS = {"search": "(1) coverage-first search, SFT + distill + DPO", "search-sft": "(1b) the same search, SFT only",
          "greedy": "(2) teachers' verified greedy answers, SFT", "sampling": "(3) coverage-first sampling",
          "student": "(4) search with the student in the panel"}


def report(cfg, runs: list[dict], out: Path) -> dict:
    """Write ``coverage.json``, ``coverage.md`` and ``coverage.png``; return the summary."""
    from agents.training import TrainConfig
    from agents.training.pool import pool
    from tokentree_env.stats import seeds_paired, t_interval
    from tokentree_env.tasks import load_task

    size = len(pool(load_task(cfg.task), cfg.train_kwargs().get("validation_size", TrainConfig.validation_size),
                    cfg.task))
    declared = Path(cfg.out, "declared.json")
    budget = json.loads(declared.read_text())["budget"] if declared.exists() else None
    by_arm: dict[str, list[dict]] = {}
    for r in runs:
        by_arm.setdefault(r["arm"], []).append(r)
    arms = {}
    for arm, rs in by_arm.items():
        rounds = len(rs[0]["history"])
        covered = [[len(set().union(*(set(x["covered"]) for x in r["rounds"][:i + 1]))) for i in range(rounds)]
                   for r in rs]
        new = [[c[i] - (c[i - 1] if i else 0) for i in range(rounds)] for c in covered]
        arms[arm] = {
            "coverage": [t_interval([c[i] for c in covered]) for i in range(rounds)],
            "pass1": [t_interval([r["baseline"]["task_accuracy"] for r in rs])]
                     + [t_interval([r["history"][i]["task_accuracy"] for r in rs]) for i in range(rounds)],
            "reverse": [t_interval([r["history"][i]["general_accuracy"] for r in rs]) for i in range(rounds)],
            "cpu": [t_interval([r["rounds"][i]["cpu_seconds"] for r in rs]) for i in range(rounds)],
            "weighted": [t_interval([r["rounds"][i]["weighted_tokens"] for r in rs]) for i in range(rounds)],
            "cpu_per_new": [t_interval([r["rounds"][i]["cpu_seconds"] / n[i] for r, n in zip(rs, new, strict=True)
                                        if n[i]]) for i in range(rounds)],
            "weighted_per_new": [t_interval([r["rounds"][i]["weighted_tokens"] / n[i]
                                             for r, n in zip(rs, new, strict=True) if n[i]]) for i in range(rounds)],
            "rows": [t_interval([len(r["rounds"][i]["played"]) for r in rs]) for i in range(rounds)],
            "cpu_share": [t_interval([r["rounds"][i]["cpu_seconds"] / budget["cpu_seconds_per_round"] for r in rs])
                          for i in range(rounds)] if budget else None,
            "token_share": [t_interval([r["rounds"][i]["weighted_tokens"] / budget["weighted_tokens_per_round"]
                                        for r in rs]) for i in range(rounds)] if budget else None,
            "train_cpu": [t_interval([r["history"][i].get("train_cpu_seconds", float("nan")) for r in rs])
                          for i in range(rounds)],
            "signal_cpu": {k: t_interval([sum(h.get("signal_cpu_seconds", {}).get(k, 0.0) for h in r["history"])
                                          for r in rs])
                           for k in sorted({k for r in rs for h in r["history"] for k in h.get("signal_cpu_seconds", {})})},
            "final_coverage": {r["seed"]: c[-1] for r, c in zip(rs, covered, strict=True)},
            "stopped": [[h.get("round_stopped") for h in r["history"]] for r in rs],
            "pass_at_k": {k: t_interval([r["pass_at_k"][k] for r in rs if "pass_at_k" in r])
                          for k in (rs[0].get("pass_at_k") or {})},
            "final": {r["seed"]: dict(enumerate(r["history"][-1]["task_correct"])) for r in rs}}
    only = _only_one_arm(by_arm)
    coverage_diff = {f"{a} - {b}": t_interval([arms[a]["final_coverage"][s] - arms[b]["final_coverage"][s]
                                                for s in sorted(set(arms[a]["final_coverage"]) & set(arms[b]["final_coverage"]))])
                     for a, b in (("search", "greedy"), ("search", "sampling"), ("student", "search"))
                     if a in arms and b in arms}
    paired = {f"{a} - {b}": seeds_paired(arms[a]["final"], arms[b]["final"])
              for a, b in (("search", "greedy"), ("search", "sampling"), ("student", "search"),
                           ("search-sft", "greedy")) if a in arms and b in arms}
    best_teacher = next((r["teachers"]["best"] for r in runs if r.get("teachers")), None)
    best_search = max((a for a in ("search", "search-sft", "student") if a in arms),
                      key=lambda a: arms[a]["pass1"][-1]["mean"], default=None)
    targets = {"search_above_sampling_at_equal_compute": paired.get("search - sampling", {}).get("above"),
               "search_above_greedy": paired.get("search - greedy", {}).get("above"),
               "student_above_search": paired.get("student - search", {}).get("above"),
               "best_search_student_0.20_above_best_teacher": None if best_search is None or best_teacher is None
               else arms[best_search]["pass1"][-1]["mean"] >= best_teacher + 0.20}
    measured = {"search_above_sampling_at_equal_compute": _said(paired.get("search - sampling")),
                "search_above_greedy": _said(paired.get("search - greedy")),
                "student_above_search": _said(paired.get("student - search")),
                "best_search_student_0.20_above_best_teacher": None if best_search is None or best_teacher is None
                else f"{best_search} {arms[best_search]['pass1'][-1]['mean']:.3f} against the best teacher's "
                     f"{best_teacher:.3f} + 0.20"}
    summary = {"task": cfg.task, "pool": size, "budget": budget,
               "arms": {a: {k: v for k, v in d.items() if k not in ("final", "final_coverage")} for a, d in arms.items()},
               "only_one_arm": only, "paired": paired, "coverage_difference": coverage_diff,
               "best_teacher": best_teacher, "targets": targets, "measured": measured,
               "sources": coverage_why.sources(Path(cfg.out), runs)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "coverage.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "coverage.md").write_text(markdown(summary))
    plot(summary, by_arm, out / "coverage.png")
    return summary


def _said(p: dict | None) -> str | None:
    """A paired difference in words: the difference, its two intervals, and what they show."""
    if p is None:
        return None
    t = "n/a (1 seed)" if p["t"].get("n", 2) < 2 else f"[{p['t']['low']:+.3f}, {p['t']['high']:+.3f}]"
    shown = "above" if p["above"] else "below" if p["below"] else "no difference shown"
    return (f"{p['difference']:+.3f} (bootstrap [{p['bootstrap']['low']:+.3f}, {p['bootstrap']['high']:+.3f}], "
            f"t over seeds {t}): {shown}")


def _only_one_arm(by_arm: dict[str, list[dict]]) -> dict:
    """Per arm, the problems (summed over seeds) that it alone covered by the end, among the prompts every arm of
    that seed played (a budget that stops an arm early leaves it prompts the others played); seeds every arm
    finished only."""
    seeds = sorted({r["seed"] for rs in by_arm.values() for r in rs})
    out = dict.fromkeys(by_arm, 0)
    for seed in seeds:
        mine = {a: [r for r in rs if r["seed"] == seed] for a, rs in by_arm.items()}
        if not all(mine.values()):  # a seed some arm has not finished: nothing to compare yet
            continue
        mine = {a: rs[0] for a, rs in mine.items()}
        common = set.intersection(*(set().union(*(set(x["played"]) for x in r["rounds"])) for r in mine.values()))
        sets = {a: common & set().union(*(set(x["covered"]) for x in r["rounds"])) for a, r in mine.items()}
        for a, covered in sets.items():
            out[a] += len(covered - set().union(*(s for b, s in sets.items() if b != a)))
    return out


def _fmt(p: dict, digits: int = 3) -> str:
    """Mean ± the t-interval's half-width over seeds (the mean alone for one seed)."""
    if p["mean"] != p["mean"]:
        return "-"
    one = p.get("n", 2) < 2 or math.isnan(p["high"] - p["low"])
    half = "" if one else f" ± {(p['high'] - p['low']) / 2:.{digits}f}"
    return f"{p['mean']:.{digits}f}{half}"


def _pct(p: dict | None) -> str:
    return "-" if p is None else f"{100 * p['mean']:.0f} %"


def markdown(summary: dict) -> str:
    budget = summary.get("budget")
    head = (f"Budget per round (a cap): {budget['cpu_seconds_per_round']:.1f} process CPU s, "
            f"{budget['weighted_tokens_per_round']:,.0f} weighted tokens; an arm that needs less spends less.\n"
            if budget else "")
    lines = [f"# Coverage comparison on `{summary['task']}` (pool: {summary['pool']} problems)", "", head,
             ("| arm | round | prompts played | coverage (problems) | greedy held-out accuracy | reverse | generation CPU s "
              "(of the budget) | weighted tokens (of the budget) | CPU s / weighted tokens per newly covered | "
              "training CPU s | stopped by |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm, d in summary["arms"].items():
        for i, cov in enumerate(d["coverage"]):
            stops = sorted({(s[i] or "its prompts").split(" of ")[-1] for s in d["stopped"]})
            cpu_share = _pct(d["cpu_share"][i]) if d.get("cpu_share") else "-"
            token_share = _pct(d["token_share"][i]) if d.get("token_share") else "-"
            lines.append(f"| {LABELS.get(arm, arm)} | {i} | {_fmt(d['rows'][i], 1)} | {_fmt(cov, 1)} | "
                         f"{_fmt(d['pass1'][i + 1])} | {_fmt(d['reverse'][i])} | {_fmt(d['cpu'][i], 1)} ({cpu_share}) | "
                         f"{_fmt(d['weighted'][i], 0)} ({token_share}) | {_fmt(d['cpu_per_new'][i], 2)} / "
                         f"{_fmt(d['weighted_per_new'][i], 0)} | {_fmt(d['train_cpu'][i], 0)} | {'; '.join(stops)} |")
    lines += ["", "Training CPU seconds per signal, summed over the rounds: "
              + "; ".join(f"{a}: " + ", ".join(f"{k} {_fmt(v, 0)}" for k, v in d["signal_cpu"].items())
                          for a, d in summary["arms"].items()),
              "", "Problems only one arm covered, among the prompts every arm of a seed played (summed over seeds): "
              + ", ".join(f"{a} {n}" for a, n in summary["only_one_arm"].items()), "",
              "| final coverage | difference (problems) | t-interval over seeds |", "|---|---|---|"]
    for name, t in summary.get("coverage_difference", {}).items():
        interval = "n/a (1 seed)" if t.get("n", 2) < 2 else f"[{t['low']:+.0f}, {t['high']:+.0f}]"
        lines.append(f"| {name} | {t['mean']:+.0f} | {interval} |")
    lines += ["", ("| paired (final greedy held-out accuracy) | difference | bootstrap 95 % | t-interval over seeds | "
                   "shown |"), "|---|---|---|---|---|"]
    for name, p in summary["paired"].items():
        t = "n/a (1 seed)" if p["t"].get("n", 2) < 2 else f"[{p['t']['low']:+.3f}, {p['t']['high']:+.3f}]"
        lines.append(f"| {name} | {p['difference']:+.3f} | [{p['bootstrap']['low']:+.3f}, "
                     f"{p['bootstrap']['high']:+.3f}] | {t} | {'above' if p['above'] else 'below' if p['below'] else 'no'} |")
    ks = sorted({k for d in summary["arms"].values() for k in d["pass_at_k"]}, key=int)
    if ks:
        lines += ["", "| pass@k at the end (temperature 1) | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks)]
        lines += [f"| {LABELS.get(a, a)} | " + " | ".join(_fmt(d["pass_at_k"][k]) if k in d["pass_at_k"] else "-"
                                                      for k in ks) + " |" for a, d in summary["arms"].items()]
    lines += ["", "Where each arm's data came from (its stored episodes, all seeds and rounds):", ""]
    lines += coverage_why.markdown(summary.get("sources", {}))
    lines += ["", "Targets:"] + [f"- {k}: {'met' if v else 'not met' if v is not None else 'n/a'}"
                                 + (f"; {summary['measured'][k]}" if summary.get("measured", {}).get(k) else "")
                                 for k, v in summary["targets"].items()]
    return "\n".join(lines) + "\n"


def plot(summary: dict, by_arm: dict[str, list[dict]], path: Path) -> None:
    """Coverage and held-out pass@1 against cumulative generation CPU seconds; seed bands (min to max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for arm, rs in by_arm.items():
        colour, label = COLOURS.get(arm, "k"), LABELS.get(arm, arm)
        cpu = np.mean([np.cumsum([x["cpu_seconds"] for x in r["rounds"]]) for r in rs], axis=0)
        cov = np.array([[len(set().union(*(set(x["covered"]) for x in r["rounds"][:i + 1])))
                         for i in range(len(r["rounds"]))] for r in rs])
        acc = np.array([[h["task_accuracy"] for h in r["history"]] for r in rs])
        for axis, ys in ((left, cov), (right, acc)):
            axis.plot(cpu, ys.mean(axis=0), marker="o", color=colour, label=label)
            axis.fill_between(cpu, ys.min(axis=0), ys.max(axis=0), color=colour, alpha=0.15)
    if summary.get("best_teacher") is not None:
        right.axhline(summary["best_teacher"], ls="--", c="grey", label=f"best teacher, greedy "
                      f"({summary['best_teacher']:.3f})")
    if summary["task"] == "chain5":  # the reference line, from the earlier learning comparison
        right.axhline(EARLIER_GREEDY_SFT, ls=":", c="black", label=f"earlier: SFT on greedy answers to fresh prompts, "
                      f"no pool ({EARLIER_GREEDY_SFT}, old charges)")
    left.set(xlabel="generation CPU seconds (cumulative, mean over seeds)", ylabel="pool problems with a verified answer",
             title=f"{summary['task']}: coverage of the pool")
    right.set(xlabel="generation CPU seconds (cumulative, mean over seeds)",
              ylabel="primary's held-out pass@1 (greedy, alone)", title="what the primary learnt", ylim=(-0.02, 1.02))
    for axis in (left, right):
        axis.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
