"""The search benchmark's report: per mode and budget, every row's accuracy against its compute, paired tests of
the headline MCTS row against each baseline, the problems only MCTS solved, style shares and writer switches,
where along the answers the rows went wrong, tokens per second per row type, the targets, the curves (a plot read
at a glance), JSON and Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tokentree_env.stats import mcnemar, pair_by_problem, paired_bootstrap, wilson

OVER_BUDGET = 0.10
"""A row whose measured mean is this far over its budget is flagged."""


def summarise(results: list[dict], budget_tokens: float | None, styles: list[str]) -> dict:
    """A row's accuracy (Wilson interval), mean cost against its budget, style share and writer switches."""
    n = len(results)
    hits = sum(r["correct"] for r in results)
    lo, hi = wilson(hits, n)
    tokens = sum(r["forwarded_tokens"] for r in results) / max(1, n)
    weighted = sum(r["weighted_tokens"] for r in results) / max(1, n)  # the budgets' unit
    switches = [r["writer_switches"] for r in results if r.get("writer_switches") is not None]
    masses = [r["slate_mass"] for r in results if r.get("slate_mass") is not None]
    seconds = sum({(r.get("chunk_seconds"), r.get("logged_at")): r.get("chunk_seconds", 0.0) for r in results}.values())
    return {"episodes": n, "accuracy": hits / n if n else float("nan"), "accuracy_low": lo, "accuracy_high": hi,
            "forwarded_tokens": tokens, "weighted_tokens": weighted,
            "over_budget": bool(budget_tokens and weighted > (1 + OVER_BUDGET) * budget_tokens),
            "style_share": sum(r.get("style") in styles for r in results) / max(1, n),
            "writer_switches": sum(switches) / len(switches) if switches else None,
            "slate_mass": sum(masses) / len(masses) if masses else None,
            "tokens_per_second": sum(r["forwarded_tokens"] for r in results) / seconds if seconds else None}


def first_wrong_step(prompt: str, completion: str) -> int:
    """Where an answer to a ``+``/``-`` chain first goes wrong: the 1-based index of the first partial result
    it does not reach (in order), 0 when it has every partial result right."""
    numbers = [int(x) for x in re.findall(r"\d+", prompt)]
    ops = re.findall(r"[+-]", prompt)
    partials, value = [], numbers[0]
    for op, term in zip(ops, numbers[1:], strict=True):
        value = value + term if op == "+" else value - term
        partials.append(value)
    found, position = [int(x) for x in re.findall(r"-?\d+", completion)], 0
    for k, partial in enumerate(partials, start=1):
        if partial not in found[position:]:
            return k
        position += found[position:].index(partial) + 1
    return 0


def where_wrong(results: list[dict]) -> dict[str, int]:
    """How many failed answers first went wrong at each partial result (``step k``)."""
    out: dict[str, int] = {}
    for r in results:
        if r["correct"] < 0.5:
            key = f"step {first_wrong_step(r['prompt'], r['completion'])}"
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def compare(a: list[dict], b: list[dict]) -> dict:
    """A paired comparison of two rows on the same problems (paired by problem id): the difference with its
    paired-bootstrap interval, McNemar's test, and how many problems only ``a`` solved."""
    _, x, y = pair_by_problem(a, b)
    test, boot = mcnemar(x, y), paired_bootstrap(x, y)
    return {**boot, **test, "beats": boot["low"] > 0, "problems": len(x)}


def teacher_styles(cfg) -> list[str]:
    """The answer styles the panel's teachers write (the zoo catalogue's; every declared style for other models)."""
    from tokentree_env.tasks import load_task
    from tokentree_env.zoo.catalog import ZOO

    declared = list(load_task(cfg.task).answer_format.styles)
    found = [ZOO[t.removeprefix("zoo:")].style for t in cfg.model_kwargs()["teachers"] if t.removeprefix("zoo:") in ZOO]
    return sorted({s for s in found if s in declared}) or declared


def report(cfg, declared: dict, rows: dict, log, out: Path, measured_seconds: float = 0.0,
           leaf_sources: dict | None = None, worker_seconds: float | None = None) -> dict:
    """Summaries, comparisons and targets; ``search.json``, ``search.png`` and ``search.md``."""
    from .config import machine

    unit, styles = declared["unit"]["weighted_tokens_per_problem"], teacher_styles(cfg)
    headline = declared["headline"]["mcts"]
    result: dict = {"machine": machine(), "declared": declared, "styles": styles, "modes": {},
                    "measured_seconds": measured_seconds, "worker_seconds": worker_seconds,
                    "workers": getattr(cfg, "workers", 1), "leaf_sources": leaf_sources}
    for mode, mode_rows in rows.items():
        entries = []
        for fam, spec, budget in mode_rows:
            episodes = log.results(mode, spec)
            if not episodes:
                continue
            entries.append({"family": fam, "spec": spec, "budget": budget,
                            **summarise(episodes, budget * unit if budget else None, styles),
                            "where_wrong": where_wrong(episodes)})
        comparisons = []
        for mcts in (e for e in entries if e["family"] in (headline, "mcts-steps")):
            ours = log.results(mode, mcts["spec"])
            for other in entries:
                if other["family"] == mcts["family"] or (other["budget"] not in (None, mcts["budget"])):
                    continue
                theirs = log.results(mode, other["spec"])
                comparisons.append({"budget": mcts["budget"], "searcher": mcts["family"], "mcts": mcts["spec"],
                                    "baseline": other["spec"], "family": other["family"], **compare(ours, theirs)})
        result["modes"][mode] = {"rows": entries, "comparisons": comparisons}
    result["targets"] = targets(declared, result)
    result["tokens_per_second"] = _throughput(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(result, indent=1, default=str))
    plot(result, unit, out / "search.png")
    (out / "search.md").write_text(markdown(result))
    return result


def targets(declared: dict, result: dict) -> dict:
    """The declared targets, for the headline MCTS row and for step-level MCTS: in self-play, above the best sampling
    baseline at the two budgets where that baseline's pilot accuracy is below 0.90 (step-level MCTS also at least
    AB-MCTS there); in evaluation (judge on), above the teachers' samples' majority at equal tokens, the majority
    vote and the best reference at the headline budget (paired intervals above 0); step-level MCTS's answers in one
    style (95 %)."""
    from .search_config import SAMPLERS

    out = {}
    searchers = (declared["headline"]["mcts"], "mcts-steps")
    self_play = result["modes"].get("self-play", {}).get("comparisons", [])
    evaluation = result["modes"].get("evaluation-judge-on", {}).get("comparisons", [])
    b_eval = declared["headline"]["evaluation_budget"]
    for searcher in searchers:
        for b in declared["self_play_target_budgets"]:
            rivals = [c for c in self_play if c["searcher"] == searcher and c["budget"] == b and c["family"] in SAMPLERS]
            best = min(rivals, key=lambda c: c["difference"], default=None)  # the strongest sampler: smallest margin
            out[f"self-play {b:g}R: {searcher} beats the best sampling baseline"] = _met(best)
            if searcher == "mcts-steps":
                ab = next((c for c in self_play if c["searcher"] == searcher and c["budget"] == b
                           and c["family"] == "ab-mcts"), None)
                out[f"self-play {b:g}R: mcts-steps at least AB-MCTS"] = _met(ab, at_least=True)
        for family in ("teacher-samples-majority", "majority-vote", "best-reference"):
            found = next((c for c in evaluation if c["searcher"] == searcher and c["family"] == family
                          and c["budget"] == b_eval), None)
            out[f"evaluation {b_eval:g}R: {searcher} beats {family}"] = _met(found)
    out |= combine_targets(declared, self_play, evaluation)
    steps = [e for mode in result["modes"].values() for e in mode["rows"] if e["family"] == "mcts-steps"]
    if steps:
        share = min(e["style_share"] for e in steps)
        out["mcts-steps: at least 95 % of answers in one style"] = {"met": share >= 0.95, "baseline": "every row",
                                                                   "difference": share, "low": share, "high": share}
    return out


def combine_targets(declared: dict, self_play: list[dict], evaluation: list[dict], margin: float = 0.15) -> dict:
    """The targets of a test-bed where teachers must combine (measured wherever the step-wise greedy row is):
    self-play MCTS above judge-guided step-wise greedy at 2R and 4R (beyond the paired interval), and at least
    ``margin`` above the teachers' own samples there (the point estimate at least ``margin``, the interval above 0);
    in evaluation, MCTS above the judge picking among the teachers' samples at the headline budget."""
    headline, b_eval = declared["headline"]["mcts"], declared["headline"]["evaluation_budget"]

    def find(comparisons, family, budget):
        return next((c for c in comparisons if c["searcher"] == headline and c["family"] == family
                     and c["budget"] in (budget, None)), None)

    if not any(c["family"] == "stepwise-greedy" for c in self_play + evaluation):
        return {}
    out = {}
    for b in (2.0, 4.0):
        out[f"self-play {b:g}R: {headline} beats step-wise greedy (the verifier picking)"] = _met(
            find(self_play, "stepwise-greedy", b))
        samples = _met(find(self_play, "teacher-samples", b))
        if samples is not None:
            samples["met"] = samples["difference"] >= margin and samples["low"] > 0
        out[f"self-play {b:g}R: {headline} at least {margin * 100:.0f} points above the teachers' samples "
            "(the difference; its interval above 0)"] = samples
    out[f"evaluation {b_eval:g}R: {headline} beats the judge picking among the teachers' samples"] = _met(
        find(evaluation, "teacher-samples", b_eval))
    return out


def _met(comparison: dict | None, at_least: bool = False) -> dict | None:
    if comparison is None:
        return None
    met = comparison["difference"] >= 0 if at_least else comparison["beats"]
    return {"met": met, "baseline": comparison["baseline"], "difference": comparison["difference"],
            "low": comparison["low"], "high": comparison["high"]}


def _throughput(result: dict) -> dict:
    by_type: dict[str, list[float]] = {}
    for mode in result["modes"].values():
        for e in mode["rows"]:
            if e["tokens_per_second"]:
                by_type.setdefault(e["family"], []).append(e["tokens_per_second"])
    return {k: sum(v) / len(v) for k, v in sorted(by_type.items())}


FAMILY_COLOURS = {"mcts": "C0", "mcts-gumbel": "C1", "best-of-n": "C2", "majority-of-n": "C3", "teacher-samples": "C4",
                  "teacher-samples-majority": "C5", "beam": "C6", "best-reference": "C7", "majority-vote": "C8",
                  "ensemble-greedy": "C9", "ensemble-greedy-mean": "#888888", "ensemble-greedy-product": "#444444",
                  "mcts-steps": "#000000", "ab-mcts": "#ff00ff", "stepwise-greedy": "#ffb000"}
LABELS = {"mcts": "MCTS (PUCT), rollout leaves", "mcts-gumbel": "MCTS (Gumbel), rollout leaves",
          "best-of-n": "best-of-N sampled from the mixture", "majority-of-n": "majority-of-N sampled from the mixture",
          "teacher-samples": "teachers' own samples (verifier / judge picks)",
          "teacher-samples-majority": "teachers' own samples, majority answer", "beam": "beam search",
          "best-reference": "best of the 3 teachers' greedy answers", "majority-vote": "majority of the 3 greedy answers",
          "ensemble-greedy": "ensemble greedy, mixture panel", "ensemble-greedy-mean": "ensemble greedy, mean panel",
          "ensemble-greedy-product": "ensemble greedy, product panel",
          "mcts-steps": "step-level MCTS (teacher k writes the next step)",
          "ab-mcts": "AB-MCTS-A over the same steps (treequest)",
          "stepwise-greedy": "judge-guided step-wise greedy (the verifier picks in self-play)"}


def plot(result: dict, unit: float, path: Path) -> None:
    """Accuracy against weighted tokens in multiples of R, with 95 % bands: self-play and evaluation in two panels,
    one colour per agent family, a solid line with the judge on and a dashed one with it off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 7.5), sharey=True)
    panels = {"self-play": axes[0], "evaluation-judge-on": axes[1], "evaluation-judge-off": axes[1]}
    for mode, data in result["modes"].items():
        ax, style = panels[mode], "--" if mode.endswith("judge-off") else "-"
        for fam in dict.fromkeys(e["family"] for e in data["rows"]):
            pts = sorted((e["weighted_tokens"] / unit, e["accuracy"], e["accuracy_low"], e["accuracy_high"])
                         for e in data["rows"] if e["family"] == fam)
            xs, ys, lo, hi = (list(v) for v in zip(*pts, strict=True))
            judge = "" if mode == "self-play" else (", judge off" if mode.endswith("off") else ", judge on")
            ax.plot(xs, ys, style, marker="o", color=FAMILY_COLOURS.get(fam, "k"), label=f"{LABELS.get(fam, fam)}{judge}")
            ax.fill_between(xs, lo, hi, color=FAMILY_COLOURS.get(fam, "k"), alpha=0.12)
    ticks: list[float] = []  # the round budgets first, then any other not within 15 % of one kept (no overlap)
    for t in sorted(result["declared"]["budgets"], key=lambda t: (t != round(t), t)):
        if all(abs(t / k - 1) > 0.15 for k in ticks):
            ticks.append(t)
    for ax, title in zip(axes, ("self-play: train problems, the verifier scores the leaves",
                                "evaluation: held-out problems, no verifier"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [f"{t:g}R" for t in ticks])
        ax.set(xlabel=f"weighted tokens per problem, in R (R = {unit:.0f}: the best reference's; docs/compute.md)",
               title=title, ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # below: no point hidden
    axes[0].set_ylabel("accuracy (95 % interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: dict) -> str:
    """Every mode's table by budget, the comparisons, the targets."""
    declared = result["declared"]
    unit = declared["unit"]["weighted_tokens_per_problem"]
    lines = [f"Declared {declared['declared_at']} on {declared['pilot_problems']} train problems: R = {unit:.0f} "
             f"weighted tokens per problem (best reference, judge on); budgets "
             + ", ".join(f"{b:g}R" for b in declared["budgets"]) + f"; styles the teachers write: "
             f"{', '.join(result['styles'])}. Unit of every budget: weighted tokens per problem (every model's "
             "forwarded tokens times its parameters over the primary's; docs/compute.md), raw tokens beside.", ""]
    for mode, data in result["modes"].items():
        header = ("| row | budget | accuracy | 95 % CI | weighted tokens / problem | raw tokens | in one style | "
                  "writer switches | first wrong step |")
        lines += [f"### {mode}", "", header, "|---|---|---|---|---|---|---|---|---|"]
        for e in sorted(data["rows"], key=lambda e: (e["budget"] or 0, e["family"])):
            flag = " (over budget)" if e["over_budget"] else ""
            switches = "-" if e["writer_switches"] is None else f"{e['writer_switches']:.2f}"
            budget = "-" if e["budget"] is None else f"{e['budget']:g}R"
            lines.append(f"| {e['spec']} | {budget} | {e['accuracy']:.3f} | "
                         f"{e['accuracy_low']:.2f}-{e['accuracy_high']:.2f} | {e['weighted_tokens']:.0f}{flag} | "
                         f"{e['forwarded_tokens']:.0f} | "
                         f"{e['style_share']:.2f} | {switches} | {e['where_wrong']} |")
        masses = [f"{e['spec']} {e['slate_mass']:.3f}" for e in data["rows"] if e.get("slate_mass") is not None]
        if masses:
            lines += ["", "Share of a sampling teacher's probability mass the slate held (steps it sampled): "
                      + ", ".join(masses) + "."]
        if data["comparisons"]:
            compared = "| budget | MCTS | baseline | difference [95 % paired CI] | McNemar p | only MCTS / only baseline |"
            lines += ["", compared, "|---|---|---|---|---|---|"]
            lines += [f"| {c['budget']:g}R | {c['mcts']} | {c['baseline']} | {c['difference']:+.3f} [{c['low']:+.3f}, "
                      f"{c['high']:+.3f}] | {c['p_value']:.2g} | {c['only_a']} / {c['only_b']} |"
                      for c in data["comparisons"]]
        lines.append("")
    lines += ["| target | met | measured |", "|---|---|---|"]
    for name, t in result["targets"].items():
        lines.append(f"| {name} | {'not measured' if t is None else ('yes' if t['met'] else 'NO')} | " + (
            "" if t is None else f"{t['baseline']}: {t['difference']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}]") + " |")
    lines.append("\nTokens per second per row type: " + ", ".join(
        f"{k} {v:.0f}" for k, v in result["tokens_per_second"].items()))
    line = f"\nThis run of the command played for {result['measured_seconds'] / 60:.1f} minutes of wall time"
    if result.get("worker_seconds") is not None:  # a resumed run measured only part of the episodes
        line += (f"; the measured episodes took {result['worker_seconds'] / 60:.1f} minutes of worker time in all "
                 f"({result['workers']} workers, every run of the command)")
    lines.append(line + ".")
    leaves = result.get("leaf_sources")
    if leaves:
        src = leaves["sources"]
        lines.append(f"\nLeaf-value sources under the mixture, ROC AUC on {src['held_out_states']} states of "
                     f"{' and '.join(src['held_out_agents'])} episodes on {src['held_out_problems']} held-out problems "
                     f"each ({src['right_states']} states of right answers): rollout {src['rollout']['auc']:.3f}, "
                     f"judge {src['judge']['auc']:.3f}, value head {src['value-head']['auc']:.3f} (MSE "
                     f"{src['value-head']['mse']:.2f}; fitted on {leaves['training_examples']} self-play states).")
    return "\n".join(lines) + "\n"
