"""The search benchmark's report: tables of both modes (judge on and off), the declared comparisons with their
paired tests, the test-bed figures, where along the answers the agents went wrong, a plot, JSON and Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tokentree_env.stats import mcnemar, paired_bootstrap, wilson

STRONG = ("ensemble-greedy", "majority-vote", "best-reference")


def summarise(results: list[dict]) -> dict:
    """Accuracy with its Wilson interval and the mean cost of a row's episodes."""
    n = len(results)
    hits = sum(r["correct"] for r in results)
    lo, hi = wilson(hits, n)
    return {"episodes": n, "accuracy": hits / n if n else float("nan"), "accuracy_low": lo, "accuracy_high": hi,
            "forwarded_tokens": sum(r["forwarded_tokens"] for r in results) / max(1, n),
            "seconds": sum(r["seconds"] for r in results) / max(1, n)}


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
    """A paired comparison of two rows on the same problems."""
    x, y = [r["correct"] for r in a], [r["correct"] for r in b]
    test, boot = mcnemar(x, y), paired_bootstrap(x, y)
    return {**boot, **test, "beats": boot["low"] > 0}


def teacher_accuracies(cfg, kind: str) -> dict:
    """Each teacher's greedy accuracy on the mode's problems, their answers kept for the failure analysis."""
    from agents.bench.search_config import problems
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    task, probs = load_task(cfg.task), problems(cfg, kind)
    out = {}
    for spec in cfg.model_kwargs()["teachers"]:
        answers = HFTeacher(spec).answers([p.prompt for p in probs], max_new_tokens=cfg.max_new_tokens)
        results = [{"prompt": p.prompt, "completion": a, "correct": task.verify(p, a), "forwarded_tokens": 0,
                    "seconds": 0.0} for p, a in zip(probs, answers, strict=True)]
        out[spec] = summarise(results) | {"where_wrong": where_wrong(results)}
    return out


def report(cfg, declared: dict, rows: dict, log, head: dict, out: Path) -> dict:
    """Compute every table, comparison and target; write ``search.json``, ``search.png`` and ``search.md``."""
    from agents.bench.config import machine
    from agents.bench.suite_search import plot
    from tokentree_env.zoo.testbed import testbed_report

    table = {mode: {row.key: summarise(log.results(mode, row)) | {"agent": row.spec, "judge": row.judge,
                                                                  "leaf": row.leaf}
                    for row in rows[mode]} for mode in rows}
    for mode in rows:
        for row in rows[mode]:
            table[mode][row.key]["where_wrong"] = where_wrong(log.results(mode, row))
    b = declared["mcts_budget"]
    teachers_sp = teacher_accuracies(cfg, "self-play")
    best_teacher = max(v["accuracy"] for v in teachers_sp.values())
    selfplay = {}
    for judge in (True, False):
        mcts = next(r for r in rows["self-play"] if r.spec == f"mcts:{b}" and r.judge == judge)
        bon = next(r for r in rows["self-play"] if r.spec.startswith("best-of-verifier") and r.judge == judge)
        m, o = table["self-play"][mcts.key], table["self-play"][bon.key]
        selfplay[f"judge={'on' if judge else 'off'}"] = {
            "mcts": m["accuracy"], "mcts_tokens": m["forwarded_tokens"], "best_of_verifier": o["accuracy"],
            "best_of_tokens": o["forwarded_tokens"], "best_teacher_greedy": best_teacher,
            "vs_best_of": compare(log.results("self-play", mcts), log.results("self-play", bon)),
            "at_least_best_of": m["accuracy"] >= o["accuracy"], "plus_15_over_best_teacher":
                m["accuracy"] >= best_teacher + 0.15}
    evaluation = {}
    for row in rows["evaluation"]:
        if not row.spec.startswith("mcts"):
            continue
        baselines = {s: next(r for r in rows["evaluation"] if r.spec == s and r.judge == row.judge) for s in STRONG}
        evaluation[row.key if "|leaf=" in row.key else f"{row.key}|leaf={row.leaf}"] = {
            s: compare(log.results("evaluation", row), log.results("evaluation", base)) for s, base in baselines.items()}
    testbed = testbed_report(task_name=cfg.task, n=cfg.n, **{k: v for k, v in cfg.model_kwargs().items()
                                                            if k in ("teachers", "judge", "primary")})
    result = {"benchmark": "search", "task": cfg.task, "machine": machine(), "declared": declared, "tables": table,
              "self_play": selfplay, "evaluation_comparisons": evaluation, "teachers_self_play": teachers_sp,
              "value_sources": head, "testbed": testbed}
    result["targets"] = targets(result)
    (out / "search.json").write_text(json.dumps(result, indent=1, default=str))
    points = [v | {"agent": v["agent"] + (f" ({v['leaf']})" if v["leaf"] == "value-head" else "")}
              for v in table["evaluation"].values()]
    plot(points, out / "search.png", title=f"{cfg.task}: accuracy vs forwarded tokens (evaluation mode)")
    (out / "search.md").write_text(markdown(result))
    return result


def targets(result: dict) -> dict:
    """The issue's targets: self-play (MCTS >= best-of-N with the verifier at equal tokens, and >= the best
    teacher + 15 points) and evaluation (each declared MCTS row beats the three strong baselines, the paired
    interval excluding 0)."""
    sp = result["self_play"]["judge=on"]
    declared_rows = {k: v for k, v in result["evaluation_comparisons"].items() if "judge=on" in k}
    return {"self_play_at_least_best_of_n": sp["at_least_best_of"],
            "self_play_15_points_over_best_teacher": sp["plus_15_over_best_teacher"],
            "evaluation_beats_all_strong_baselines": {k: all(c["beats"] for c in v.values())
                                                      for k, v in declared_rows.items()}}


def markdown(result: dict) -> str:
    """The benchmark's tables and verdicts in Markdown (the benchmarks README carries them)."""
    d = result["declared"]
    lines = [f"Declared before the run ({d['declared_at']}, on {d['pilot_problems']} train-split pilot problems): "
             f"MCTS budget **{d['mcts_budget']}** simulations per step ({d['budget_rule']}; best reference "
             f"{d['best_reference_tokens']:.0f} tokens); best-of-N at equal tokens: N = {d['best_of_self_play']} "
             f"(self-play), {d['best_of_evaluation']} (evaluation). Leaf sources: "
             + ", ".join(f"{k}: {v}" for k, v in d["leaf_sources"].items()) + ".", ""]
    for mode, title in (("self-play", "Self-play mode (train split; the verifier scores the search's leaves)"),
                        ("evaluation", "Evaluation mode (held-out; no verifier)")):
        lines += [f"**{title}**", "", ("| agent | leaf | judge | accuracy | 95 % CI | forwarded tokens / episode |"
                  " first wrong partial (failures) |"), "|---|---|---|---|---|---|---|"]
        for v in sorted(result["tables"][mode].values(), key=lambda v: (not v["judge"], v["forwarded_tokens"])):
            wrong = ", ".join(f"{k}: {n}" for k, n in v["where_wrong"].items())
            lines.append(f"| {v['agent']} | {v['leaf'] or '-'} | {'on' if v['judge'] else 'off'} | {v['accuracy']:.3f} | "
                         f"{v['accuracy_low']:.2f}-{v['accuracy_high']:.2f} | {v['forwarded_tokens']:.0f} | {wrong} |")
        lines.append("")
    lines += ["Teachers' greedy accuracy on the self-play problems: " + ", ".join(
        f"{k} {v['accuracy']:.3f}" for k, v in result["teachers_self_play"].items()) + ".", ""]
    lines += [("**Paired comparisons (evaluation mode)**: difference in accuracy, 95 % paired-bootstrap interval, "
              "McNemar p"), "", "| MCTS row | vs | difference | 95 % interval | McNemar p | beats |", "|---|---|---|---|---|---|"]
    for row, comps in result["evaluation_comparisons"].items():
        for base, c in comps.items():
            lines.append(f"| {row} | {base} | {c['difference']:+.3f} | {c['low']:+.3f} to {c['high']:+.3f} | "
                         f"{c['p_value']:.3g} | {'yes' if c['beats'] else 'no'} |")
    v = result["value_sources"]["sources"]
    lines += ["", (f"Leaf-value sources on {v['held_out_states']} held-out states ({_episodes_of(v)}): "
              f"rollout AUC {v['rollout']['auc']:.3f} (no training); "
              f"judge AUC {v['judge']['auc']:.3f}; value head AUC {v['value-head']['auc']:.3f}, held-out MSE "
              f"{v['value-head']['mse']:.4f}, trained on {result['value_sources']['training_examples']} states of "
              f"{result['value_sources']['training_problems']} self-play episodes."), ""]
    t = result["targets"]
    lines += ["| target | met |", "|---|---|",
              f"| self-play: MCTS >= best-of-N with the verifier at equal tokens | {_yes(t['self_play_at_least_best_of_n'])} |",
              f"| self-play: MCTS >= best teacher + 15 points | {_yes(t['self_play_15_points_over_best_teacher'])} |"]
    lines += [f"| evaluation: {k} beats ensemble greedy, majority vote and best reference | {_yes(ok)} |"
              for k, ok in t["evaluation_beats_all_strong_baselines"].items()]
    return "\n".join(lines) + "\n"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _episodes_of(sources: dict) -> str:
    """Which episodes gave the scored states, and how many were right (older results: greedy, count not kept)."""
    agent = sources.get("held_out_agent", "ensemble-greedy")
    right = sources.get("held_out_right")
    return f"{agent} episodes of {sources['held_out_problems']} held-out problems" + (
        "" if right is None else f", {right} right")
