"""``python -m benchmarks.panel``: ensemble greedy under the three panel rules, on the ``chain5`` test-bed.

Greedy decoding on the panel is the plainest test of how the teachers' log-probs are combined: it searches
nothing, so what it writes is what the panel prefers. Two parts, judge off, evaluation mode:

1. **Tuning** the mixture's fixed share α on a slice of the train split (:data:`TUNING_SLICE`, used for nothing
   else): α in :data:`ALPHAS`, the most accurate wins (ties go to the smaller α). The chosen α is the library's
   default (:data:`tokentree_env.scoring.panel.DEFAULT_ALPHA`); the report says whether they agree.
2. **Measuring** on the first ``n`` held-out problems: each teacher's own greedy answer (its reference answer,
   generated in its own format), and ensemble greedy under "mixture" (the tuned α), "mean" and "product". Each
   row: accuracy (95 % Wilson interval), the paired difference from the best teacher (paired-bootstrap 95 %
   interval, McNemar's p), the share of answers in one of the styles the teachers write (styles as the task
   declares them, :class:`~tokentree_env.tasks.answer_format.AnswerFormat`), the mean writer switches per answer
   (how often the teacher with the largest weight of the mixture changes along the answer, whatever rule decoded
   it: :func:`~tokentree_env.scoring.panel.writers`), and forwarded tokens per problem.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import asdict, dataclass

ALPHAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
TUNING_SLICE = (3000, 3100)
"""The ``chain5`` train problems that tune α (disjoint from the search benchmark's and the validation slice)."""
RULES = ("mixture", "mean", "product")


@dataclass
class PanelBenchConfig:
    """What ``python -m benchmarks.panel`` runs."""

    task: str = "chain5"
    n: int = 200
    """Held-out problems measured."""
    tuning: tuple[int, int] = TUNING_SLICE
    alphas: tuple[float, ...] = ALPHAS
    max_new_tokens: int = 48
    out: str = "results/panel"


def _env(cfg: PanelBenchConfig, panel: dict):
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.zoo.catalog import default_models

    models = default_models(cfg.task)
    return TokenTreeEnv(teachers=list(models["teachers"]), judge=None, task=cfg.task, evaluation=True,
                        max_new_tokens=cfg.max_new_tokens, panel=panel)


def greedy_rows(cfg: PanelBenchConfig, panel: dict, problems: list, progress=None) -> tuple[list[dict], dict]:
    """Ensemble greedy under ``panel`` on ``problems``: one row per problem, and each teacher's greedy answers."""
    from agents.baselines import EnsembleGreedy
    from tokentree_env.scoring.panel import writers as writers_of

    env, agent = _env(cfg, panel), EnsembleGreedy()
    fmt, task = env.task.answer_format, env.task
    rows, teachers = [], {name: [] for name in env.teacher_names}
    for problem in problems:
        result = agent.run_episode(env, options={"prompt": problem.prompt})
        writers = writers_of([step.teacher_logprobs for step in result.records], panel["alpha"])
        rows.append({"prompt": problem.prompt, "completion": result.completion, "correct": result.hard_reward,
                     "style": fmt.style_of(problem.prompt, result.completion), "writers": writers,
                     "forwarded_tokens": result.forwarded_tokens})
        tree = env.trees[problem.prompt]
        for name, path in tree.reference_paths.items():
            text = env.expander.decode(path)
            teachers[name].append({"completion": text, "correct": task.verify(problem, text),
                                   "style": fmt.style_of(problem.prompt, text)})
        if progress is not None:
            progress()
    env.close()
    return rows, teachers


def teacher_styles(teachers: dict) -> list[str]:
    """The styles the panel's teachers write: each teacher's most frequent style over its greedy answers."""
    found = []
    for answers in teachers.values():
        styles = Counter(a["style"] for a in answers if a["style"] is not None)
        if styles:
            found.append(styles.most_common(1)[0][0])
    return sorted(set(found))


def summarise(name: str, rows: list[dict], best: list[float], styles: list[str]) -> dict:
    """A row of the table: accuracy, the paired comparison with the best teacher, style share, writer switches."""
    from tokentree_env.scoring.panel import writer_switches
    from tokentree_env.stats import mcnemar, paired_bootstrap, wilson

    correct = [r["correct"] for r in rows]
    n = len(rows)
    low, high = wilson(sum(correct), n)
    in_style = [r["style"] in styles for r in rows]
    out = {"row": name, "accuracy": sum(correct) / n, "low": low, "high": high,
           "vs_best_teacher": paired_bootstrap(correct, best) | {"p_value": mcnemar(correct, best)["p_value"]},
           "style_share": sum(in_style) / n, "styles": dict(Counter(r["style"] or "none" for r in rows))}
    if "writers" in rows[0]:
        out["writer_switches"] = sum(writer_switches(r["writers"]) for r in rows) / n
        out["forwarded_tokens"] = sum(r["forwarded_tokens"] for r in rows) / n
    return out


def run(cfg: PanelBenchConfig) -> dict:
    """Tune α, measure the three rules and the teachers; write ``panel.json`` and ``panel.md``."""
    from rich.progress import Progress

    from tokentree_env.scoring.panel import DEFAULT_ALPHA
    from tokentree_env.tasks import load_task

    from .config import machine
    from .report import write_outputs

    task = load_task(cfg.task)
    tuning = list(task.problems("train"))[cfg.tuning[0]: cfg.tuning[1]]
    heldout = list(task.problems("heldout"))[: cfg.n]
    started, result = time.time(), {"config": asdict(cfg), "machine": machine()}
    with Progress() as bar:
        job = bar.add_task("tuning α", total=len(tuning) * len(cfg.alphas))
        result["tuning"] = {}
        for alpha in cfg.alphas:
            rows, _ = greedy_rows(cfg, {"rule": "mixture", "alpha": alpha}, tuning, lambda: bar.advance(job))
            result["tuning"][str(alpha)] = sum(r["correct"] for r in rows) / len(rows)
        chosen = max(cfg.alphas, key=lambda a: (result["tuning"][str(a)], -a))
        result["alpha"] = {"chosen": chosen, "library_default": DEFAULT_ALPHA, "agree": chosen == DEFAULT_ALPHA}
        job = bar.add_task("held-out", total=len(heldout) * len(RULES))
        measured = {rule: greedy_rows(cfg, {"rule": rule, "alpha": chosen}, heldout, lambda: bar.advance(job))
                    for rule in RULES}
    teachers = measured["mixture"][1]
    styles = teacher_styles(teachers)
    best_name = max(teachers, key=lambda t: sum(a["correct"] for a in teachers[t]))
    best = [a["correct"] for a in teachers[best_name]]
    result["teacher_styles"] = styles
    result["rows"] = [summarise(f"teacher {name} (greedy)", answers, best, styles) for name, answers in teachers.items()]
    result["rows"] += [summarise(f"ensemble greedy, {rule}" + (f" (α = {chosen})" if rule == "mixture" else ""),
                                 measured[rule][0], best, styles) for rule in RULES]
    mixture = result["rows"][len(teachers)]
    result["best_teacher"] = {"name": best_name, "accuracy": sum(best) / len(best)}
    result["targets"] = {
        "mixture_within_3_points_of_best_teacher": mixture["accuracy"] >= result["best_teacher"]["accuracy"] - 0.03,
        "mixture_95_percent_in_one_style": mixture["style_share"] >= 0.95}
    result["episodes"] = {rule: rows for rule, (rows, _) in measured.items()}
    result["seconds"] = time.time() - started
    write_outputs(cfg.out, "panel", result, markdown(result))
    return result


def markdown(result: dict) -> str:
    """The tuning line and the table, as the benchmarks README quotes them."""
    cfg = result["config"]
    tuning = ", ".join(f"α = {a}: {acc:.3f}" for a, acc in result["tuning"].items())
    alpha = result["alpha"]
    lines = [(f"Tuning on {cfg['tuning'][1] - cfg['tuning'][0]} train problems ({cfg['tuning'][0]}-{cfg['tuning'][1]}), "
              f"ensemble greedy with the mixture, judge off: {tuning}. Chosen: α = {alpha['chosen']} (the library's "
              f"default is {alpha['library_default']}: {'the same' if alpha['agree'] else 'DIFFERENT'})."), "",
             f"{cfg['n']} held-out problems, judge off; styles the teachers write: {', '.join(result['teacher_styles'])}.",
             "", ("| row | accuracy | 95 % CI | minus the best teacher [95 % paired CI], McNemar p | in one style | "
                  "writer switches / answer | forwarded tokens / problem |"), "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        d = r["vs_best_teacher"]
        switches = f"{r['writer_switches']:.2f}" if "writer_switches" in r else "- (one writer)"
        tokens = f"{r['forwarded_tokens']:.0f}" if "forwarded_tokens" in r else "-"
        lines.append(f"| {r['row']} | {r['accuracy']:.3f} | {r['low']:.2f}-{r['high']:.2f} | {d['difference']:+.3f} "
                     f"[{d['low']:+.3f}, {d['high']:+.3f}], p = {d['p_value']:.2g} | {r['style_share']:.3f} | "
                     f"{switches} | {tokens} |")
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {'yes' if v else 'NO'} |" for k, v in result["targets"].items()]
    lines.append(f"\n{result['seconds'] / 60:.1f} minutes on this machine.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import torch

    from agents.quiet import quiet_libraries

    parser = argparse.ArgumentParser(prog="python -m benchmarks.panel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=PanelBenchConfig.n, help="held-out problems measured")
    parser.add_argument("--tuning", type=int, nargs=2, default=TUNING_SLICE, help="train-split slice that tunes α")
    parser.add_argument("--out", default=PanelBenchConfig.out)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    quiet_libraries()
    run(PanelBenchConfig(n=args.n, tuning=tuple(args.tuning), out=args.out))


if __name__ == "__main__":
    main()
