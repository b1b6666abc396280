"""Learning: does the loop teach the primary, does search beat its no-search control, who forgets?

Three parts, each over several seeds (mean and 95 % t-interval across seeds):

1. **Signals.** ``tokentree train`` on the built-in defaults with each training signal; the primary's
   own held-out accuracy (greedy, no teachers, no search) after every iteration. The SFT run is the
   README's main command exactly, each seed run alone on the machine with self-play on every core,
   as a user runs it (its wall time is the target's); the other signals run a shorter loop (``SIGNAL_LOOP``) because DPO
   pairs, distillation targets and RL generation cost more per episode.
2. **No-search control.** SFT on the teachers' own greedy answers (every answer the verifier
   accepts, as the search run keeps only episodes the verifier accepts), same optimiser settings, and
   in each iteration as much generation time as the matching search run's self-play took, times
   the cores that self-play used (the control decodes on one core): the same core-seconds, spent on
   answers instead of search.
3. **Forgetting.** Two rounds of training on the SFT run's stored self-play episodes (iterations 0
   and 1) with settings prone to forgetting (no accumulation, 8 epochs at 2e-3), under none / EWC /
   SI / replay; general-task accuracy beside task accuracy.

Targets (issue #6): the search-trained primary closes >= 80 % of its gap to the best teacher within
10 minutes; it is at least as good as the control; the no-CL run forgets measurably; EWC or replay
forgets less than no-CL at a matched task gain, beyond the seed-to-seed spread.

Run: ``python -m benchmarks.learning`` (about 52 minutes on 2 cores; ``--quick`` for a look).
Writes ``results/learning/learning.json``, ``learning.png`` and ``learning.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

SIGNAL_LOOP = {"iterations": 3, "prompts_per_iteration": 150}
QUICK_LOOP = {"iterations": 2, "prompts_per_iteration": 60, "eval_size": 100}
TINY_LOOP = {"iterations": 2, "prompts_per_iteration": 3, "eval_size": 10, "max_new_tokens": 20}
CL_VARIANTS = {"none": {}, "ewc": {"ewc": 1000.0}, "si": {"si": 1000.0}, "replay": {"replay": "on"}}
CL_BASE = {"ewc": 0.0, "si": 0.0, "replay": "off", "accumulate": False, "epochs": 8, "learning_rate": 2e-3}


def _quiet() -> None:
    import torch

    from agents.quiet import quiet_libraries

    torch.set_num_threads(1)
    quiet_libraries()


def _silent_console():
    from rich.console import Console

    return Console(quiet=True)


def loop_job(out: str, signal: str, seed: int, overrides: dict) -> dict:
    """One ``tokentree train`` run; returns its state (baseline, per-iteration history) and wall time."""
    _quiet()
    from agents.training import TrainConfig, TrainingRun

    folder = Path(out) / "runs" / f"{signal}-seed{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    config = TrainConfig(output_dir=str(folder), signals=(signal,), seed=seed, **overrides)
    started = time.perf_counter()
    run = TrainingRun(config, console=_silent_console())
    run.run()
    from agents.training.selfplay import default_workers

    return {"kind": "loop", "signal": signal, "seed": seed, "wall_seconds": time.perf_counter() - started,
            "self_play_cores": config.workers or default_workers(),
            "baseline": run.state["baseline"], "history": run.state["history"], "config": asdict(config)}


def control_job(out: str, seed: int, search: dict) -> dict:
    """SFT on the teachers' verified greedy answers, matching the search run's self-play time.

    The control decodes on one core; a search run whose self-play used ``c`` worker processes
    (one core each) is matched by ``c`` times its self-play seconds: the same core-seconds."""
    _quiet()
    import random

    from agents.training import TrainConfig, TrainingRun
    from tokentree_env.models import load_model
    from tokentree_env.models.generation import greedy_complete
    from tokentree_env.tasks import load_task

    config = TrainConfig(**{**search["config"], "output_dir": str(Path(out) / "runs" / f"control-seed{seed}"),
                            "workers": 1})
    cores = search.get("self_play_cores", 1)
    shutil.rmtree(config.output_dir, ignore_errors=True)
    run = TrainingRun(config, console=_silent_console())
    task = load_task(config.task)
    problems = list(task.problems("train"))
    random.Random(f"control:{seed}").shuffle(problems)
    teachers = [load_model(name) for name in config.teachers]
    lm = load_model(config.primary)
    started = time.perf_counter()
    run.state["baseline"] = baseline = run.evaluate(lm)
    history, buffer, cursor = [], [], 0
    for iteration, searched in enumerate(search["history"]):
        records, begin = [], time.perf_counter()
        while time.perf_counter() - begin < cores * searched["self_play_seconds"] and cursor < len(problems):
            chunk = problems[cursor:cursor + 16]
            cursor += len(chunk)
            for teacher in teachers:
                answers = greedy_complete(teacher.model, teacher.tokenizer, [p.prompt for p in chunk],
                                          max_new_tokens=config.max_new_tokens)
                for p, a in zip(chunk, answers, strict=True):
                    ok = float(task.verify(p, a))
                    records.append({"prompt": p.prompt, "completion": a, "hard_reward": ok, "episode_return": ok})
        buffer += records
        run.state["history"] = history
        run.train_round(lm, records, buffer if config.accumulate else records, iteration)
        metrics = run.evaluate(lm) | {"iteration": iteration, "answers": len(records), "prompts": cursor}
        history.append(metrics | {"mean_hard_reward": sum(r["hard_reward"] for r in records) / max(1, len(records))})
    return {"kind": "control", "seed": seed, "wall_seconds": time.perf_counter() - started, "baseline": baseline,
            "history": history}


def forgetting_job(out: str, seed: int, variant: str, overrides: dict | None = None) -> dict:
    """Two rounds on the seed's stored SFT self-play episodes under one continual-learning variant."""
    _quiet()
    from agents.store import EpisodeStore
    from agents.training import TrainConfig, TrainingRun
    from tokentree_env.models import load_model

    episodes = list(EpisodeStore(Path(out) / "runs" / f"sft-seed{seed}" / "episodes.jsonl"))
    folder = Path(out) / "runs" / f"cl-{variant}-seed{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    config = TrainConfig(output_dir=str(folder), seed=seed,
                         **(CL_BASE | CL_VARIANTS[variant] | {"eval_size": (overrides or {}).get("eval_size", 200)}))
    run = TrainingRun(config, console=_silent_console())
    lm = load_model(config.primary)
    run.state["baseline"] = baseline = run.evaluate(lm)
    history = []
    for iteration in (0, 1):
        records = [r for r in episodes if r["iteration"] == iteration]
        run.train_round(lm, records, iteration=iteration)
        history.append(run.evaluate(lm) | {"iteration": iteration})
    return {"kind": "forgetting", "variant": variant, "seed": seed, "baseline": baseline, "history": history}


def best_teacher_accuracy(teachers, task: str, n: int) -> tuple[str, float]:
    """The best teacher's greedy held-out accuracy (the ceiling the primary's gap is measured to)."""
    _quiet()
    from tokentree_env.models import load_model
    from tokentree_env.zoo.report import task_accuracy

    scores = {name: task_accuracy(load_model(name), task, n) for name in teachers}
    best = max(scores, key=scores.get)
    return best, scores[best]


def interval(values: list[float]) -> dict:
    """Mean and the half-width of a 95 % t-interval over seeds."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci95": float("nan"), "n": n, "values": values}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "ci95": float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)), "n": n, "values": values}


def summarize(results: list[dict], ceiling: float, ceiling_name: str) -> dict:
    """Per-signal curves, control, forgetting table and the issue's targets, from the raw runs."""
    loops = [r for r in results if r["kind"] == "loop"]
    summary: dict = {"best_teacher": ceiling_name, "best_teacher_accuracy": ceiling, "signals": {}, "forgetting": {}}
    for signal in sorted({r["signal"] for r in loops}):
        runs = [r for r in loops if r["signal"] == signal]
        curve = [interval([r["baseline"]["task_accuracy"] for r in runs])]
        curve += [interval([r["history"][i]["task_accuracy"] for r in runs]) for i in range(len(runs[0]["history"]))]
        closed = [(r["history"][-1]["task_accuracy"] - r["baseline"]["task_accuracy"])
                  / max(1e-9, ceiling - r["baseline"]["task_accuracy"]) for r in runs]
        forgetting = [r["baseline"]["general_accuracy"] - r["history"][-1]["general_accuracy"] for r in runs]
        summary["signals"][signal] = {"task_accuracy": curve, "gap_closed": interval(closed),
                                      "forgetting": interval(forgetting),
                                      "wall_seconds": interval([r["wall_seconds"] for r in runs])}
    controls = [r for r in results if r["kind"] == "control"]
    if controls:
        summary["control"] = {
            "task_accuracy": [interval([r["baseline"]["task_accuracy"] for r in controls])]
            + [interval([r["history"][i]["task_accuracy"] for r in controls]) for i in range(len(controls[0]["history"]))],
            "forgetting": interval([r["baseline"]["general_accuracy"] - r["history"][-1]["general_accuracy"]
                                    for r in controls]),
            "answers": interval([float(sum(h["answers"] for h in r["history"])) for r in controls])}
    cl = [r for r in results if r["kind"] == "forgetting"]
    summary["forgetting"] |= {
        v: {"task_gain": interval([r["history"][-1]["task_accuracy"] - r["baseline"]["task_accuracy"]
                                   for r in cl if r["variant"] == v]),
            "forgetting": interval([r["baseline"]["general_accuracy"] - r["history"][-1]["general_accuracy"]
                                    for r in cl if r["variant"] == v])}
        for v in CL_VARIANTS if any(r["variant"] == v for r in cl)}
    summary["targets"] = targets(summary)
    return summary


def targets(summary: dict) -> dict:
    """The issue's targets, each as measured / met."""
    out = {}
    sft = summary["signals"].get("sft")
    if sft:
        out["gap_closed_>=0.80_within_10_min"] = {
            "gap_closed": sft["gap_closed"]["mean"], "wall_seconds": sft["wall_seconds"]["mean"],
            "met": sft["gap_closed"]["mean"] >= 0.80 and sft["wall_seconds"]["mean"] <= 600}
        if "control" in summary:
            s, c = sft["task_accuracy"][-1], summary["control"]["task_accuracy"][-1]
            out["search_at_least_control"] = {"search": s["mean"], "control": c["mean"], "met": s["mean"] >= c["mean"]}
    f = summary["forgetting"]
    if "none" in f:
        none = f["none"]["forgetting"]
        out["no_cl_forgets"] = {"forgetting": none["mean"], "ci95": none["ci95"],
                                "met": none["mean"] - none["ci95"] > 0}
        for guard in ("ewc", "replay", "si"):
            if guard in f:
                g = f[guard]
                beyond_spread = g["forgetting"]["mean"] + g["forgetting"]["ci95"] < none["mean"] - none["ci95"]
                matched = g["task_gain"]["mean"] >= f["none"]["task_gain"]["mean"] - f["none"]["task_gain"]["ci95"]
                out[f"{guard}_forgets_less_at_matched_gain"] = {
                    "forgetting": g["forgetting"]["mean"], "task_gain": g["task_gain"]["mean"],
                    "none_task_gain": f["none"]["task_gain"]["mean"], "met": bool(beyond_spread and matched)}
    return out


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    curves = {f"search + {k}": v["task_accuracy"] for k, v in summary["signals"].items()}
    if "control" in summary:
        curves["no-search control (SFT on teacher answers)"] = summary["control"]["task_accuracy"]
    for label, curve in curves.items():
        xs = range(len(curve))
        means = [p["mean"] for p in curve]
        errs = [0 if math.isnan(p["ci95"]) else p["ci95"] for p in curve]
        left.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=label)
    left.axhline(summary["best_teacher_accuracy"], ls="--", c="grey", label=f"best teacher ({summary['best_teacher']})")
    left.set(xlabel="iteration (0 = before training)", ylabel="primary's held-out accuracy (greedy, alone)",
             ylim=(-0.02, 1.02), title="task accuracy per training signal")
    left.legend(fontsize=7)
    variants = list(summary["forgetting"])
    for i, v in enumerate(variants):
        row = summary["forgetting"][v]
        right.bar(i - 0.2, row["forgetting"]["mean"], 0.4, yerr=_err(row["forgetting"]), capsize=3, color="C3",
                  label="forgetting (general acc drop)" if i == 0 else None)
        right.bar(i + 0.2, row["task_gain"]["mean"], 0.4, yerr=_err(row["task_gain"]), capsize=3, color="C2",
                  label="task gain" if i == 0 else None)
    right.set_xticks(range(len(variants)), variants)
    right.set(title="forgetting vs task gain (2 rounds, prone settings)", ylabel="accuracy change")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _err(p: dict) -> float:
    return 0.0 if math.isnan(p["ci95"]) else p["ci95"]


def markdown(summary: dict) -> str:
    lines = [f"Best teacher: {summary['best_teacher']} {summary['best_teacher_accuracy']:.3f}", "",
             "| run | accuracy before | after | gap closed | forgetting | wall s |", "|---|---|---|---|---|---|"]
    for k, v in summary["signals"].items():
        a, b = v["task_accuracy"][0], v["task_accuracy"][-1]
        lines.append(f"| search + {k} | {_fmt(a)} | {_fmt(b)} | {_fmt(v['gap_closed'])} | {_fmt(v['forgetting'])} "
                     f"| {v['wall_seconds']['mean']:.0f} |")
    if "control" in summary:
        c = summary["control"]
        lines.append(f"| no-search control | {_fmt(c['task_accuracy'][0])} | {_fmt(c['task_accuracy'][-1])} | | "
                     f"{_fmt(c['forgetting'])} | (matched) |")
    lines += ["", "| continual learning | task gain | forgetting |", "|---|---|---|"]
    for k, v in summary["forgetting"].items():
        lines.append(f"| {k} | {_fmt(v['task_gain'])} | {_fmt(v['forgetting'])} |")
    lines += ["", "| target | met | measured |", "|---|---|---|"]
    for k, v in summary["targets"].items():
        measured = ", ".join(f"{a}={b:.3f}" for a, b in v.items() if a != "met" and isinstance(b, float))
        lines.append(f"| {k} | {'yes' if v['met'] else 'NO'} | {measured} |")
    return "\n".join(lines) + "\n"


def _fmt(p: dict) -> str:
    return f"{p['mean']:.3f}" + ("" if math.isnan(p["ci95"]) else f" ± {p['ci95']:.3f}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--signals", nargs="+", default=["sft", "dpo", "distill", "grpo"])
    parser.add_argument("--quick", action="store_true", help="small loops: a first look, not a measurement")
    parser.add_argument("--tiny", action="store_true", help="a smoke run for the tests")
    parser.add_argument("--jobs", type=int, default=2,
                        help="parallel processes (one core each) after the SFT runs, which run alone")
    parser.add_argument("--out", default="results/learning")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from agents.training import TrainConfig

    defaults = TrainConfig()
    main_loop = TINY_LOOP if args.tiny else QUICK_LOOP if args.quick else {}
    other_loop = TINY_LOOP if args.tiny else QUICK_LOOP if args.quick else SIGNAL_LOOP
    seeds = range(args.seeds)
    results: list[dict] = []
    sft_runs = []
    if "sft" in args.signals:  # the README's main command: each seed alone on the machine, all cores, timed
        for s in seeds:
            run = loop_job(str(out), "sft", s, main_loop | {"workers": 1 if args.tiny else 0})
            sft_runs.append(run)
            print(f"sft seed {s}: {run['baseline']['task_accuracy']:.3f} -> {run['history'][-1]['task_accuracy']:.3f} "
                  f"in {run['wall_seconds']:.0f} s", flush=True)
    results += sft_runs
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:  # the rest: one core per job
        ceiling = pool.submit(best_teacher_accuracy, defaults.teachers, defaults.task,
                              main_loop.get("eval_size", defaults.eval_size))
        futures = [pool.submit(loop_job, str(out), sig, s, other_loop) for sig in args.signals if sig != "sft"
                   for s in seeds]
        for run in sft_runs:  # the control and the forgetting part build on the SFT runs
            futures.append(pool.submit(control_job, str(out), run["seed"], run))
            futures += [pool.submit(forgetting_job, str(out), run["seed"], v, main_loop) for v in CL_VARIANTS]
        for future in futures:
            results.append(future.result())
        ceiling_name, ceiling_acc = ceiling.result()
    summary = summarize(results, ceiling_acc, ceiling_name)
    (out / "learning.json").write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    plot(summary, out / "learning.png")
    (out / "learning.md").write_text(markdown(summary))
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
