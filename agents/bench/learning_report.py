"""The learning benchmark's figure and Markdown table."""

from __future__ import annotations

import math
from pathlib import Path

LABELS = {"search": "search (MCTS self-play, SFT on verified paths)", "sft-greedy-seconds": "SFT on teachers' greedy "
          "answers (same core-seconds)", "rft-seconds": "RFT on teachers' samples (same core-seconds)",
          "sft-greedy-tokens": "SFT on greedy answers (same teacher tokens)",
          "rft-tokens": "RFT on samples (same teacher tokens)"}


def _half(p: dict) -> float:
    return 0.0 if math.isnan(p["high"] - p["mean"]) else p["high"] - p["mean"]


def plot(summary: dict, path: Path) -> None:
    """Held-out accuracy per iteration: the headline arms (mean and 95 % interval over seeds) and the signals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for name, arm in summary.get("arms", {}).items():
        curve = arm["task_accuracy"]
        left.errorbar(range(len(curve)), [p["mean"] for p in curve], yerr=[_half(p) for p in curve], marker="o",
                      capsize=3, label=LABELS.get(name, name), linestyle="-" if name.endswith("seconds") or
                      name == "search" else ":")
    if summary.get("best_teacher") is not None:
        left.axhline(summary["best_teacher"], ls="--", c="grey", label=f"best teacher, greedy ({summary['best_teacher']:.2f})")
    left.set(xlabel="iteration (0 = before training)", ylabel="primary's held-out accuracy (greedy, alone)",
             title=f"{summary['task']}: search vs the no-search controls", ylim=(-0.02, 1.02))
    left.legend(fontsize=6)
    for name, sig in summary.get("signals", {}).items():
        curve = sig["task_accuracy"]
        right.plot(range(len(curve)), [p["mean"] for p in curve], marker="o", label=name)
    right.set(xlabel="iteration", ylabel="held-out accuracy", title="each training signal (guarded, one seed)",
              ylim=(-0.02, 1.02))
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(p: dict) -> str:
    return f"{p['mean']:.3f}" + ("" if math.isnan(p["high"] - p["low"]) else f" [{p['low']:.3f}, {p['high']:.3f}]")


def markdown(summary: dict) -> str:
    """Tables: arms (accuracy before/after, costs), paired differences, credit, hard problems, signals, ablations."""
    lines = []
    if "arms" in summary:
        lines += [f"Best teacher (greedy, held-out): {summary['best_teacher']:.3f}.", "",
                  "| arm | before | after | teacher forwarded tokens | training s | wall s | general task after |",
                  "|---|---|---|---|---|---|---|"]
        for name, a in summary["arms"].items():
            lines.append(f"| {LABELS.get(name, name)} | {_fmt(a['task_accuracy'][0])} | {_fmt(a['task_accuracy'][-1])} "
                         f"| {a['teacher_tokens']['mean']:.0f} | {a['train_seconds']['mean']:.0f} | "
                         f"{a['wall_seconds']['mean']:.0f} | {a['general_accuracy']['mean']:.3f} |")
        lines += ["", "| search minus | per-seed differences | mean [95 % t-interval] | search better |", "|---|---|---|---|"]
        for name, p in summary["paired"].items():
            diffs = ", ".join(f"{d:+.3f}" for d in p["differences"])
            lines.append(f"| {LABELS.get(name, name)} | {diffs} | {_fmt(p)} | {'yes' if p['search_better'] else 'no'} |")
        only = {}
        for c in summary["credit"]:
            only.setdefault(c["iteration"], []).append(c["only_search"])
        lines += ["", "Problems only the search solved (no teacher's greedy answer nor any RFT sample of that "
                  "iteration right), per iteration (one number per seed): "
                  + "; ".join(f"iteration {i}: {', '.join(map(str, v))}" for i, v in sorted(only.items())) + ".", ""]
        hard = summary["hard_problems"]
        lines += [f"Accuracy on the {hard['problems']} held-out problems no teacher's greedy answer solves: "
                  + ", ".join(f"{LABELS.get(k, k).split(' (')[0]} {sum(v) / len(v):.3f}" for k, v in hard["arms"].items())
                  + ".", ""]
        weight = summary["weightage"][0] if summary["weightage"] else []
        lines += ["Weightage factors lowered / raised per iteration (seed 0): "
                  + ", ".join(f"{w.get('lowered', 0)}/{w.get('raised', 0)}" for w in weight) + ".", ""]
    if summary.get("signals"):
        lines += ["| signal (guarded) | before | after | general after | replay on |", "|---|---|---|---|---|"]
        for name, s in summary["signals"].items():
            lines.append(f"| {name} | {s['task_accuracy'][0]['mean']:.3f} | {s['task_accuracy'][-1]['mean']:.3f} | "
                         f"{s['general_accuracy'][-1]:.3f} | {sum(bool(r) for r in s['replay'])}/{len(s['replay'])} |")
        lines.append("")
    if summary.get("ablations"):
        lines += ["| ablation (one seed) | before | after |", "|---|---|---|"]
        lines += [f"| {k} | {v['task_accuracy_before']:.3f} | {v['task_accuracy_after']:.3f} |"
                  for k, v in summary["ablations"].items()]
        lines.append("")
    if "targets" in summary:
        lines += ["| target | met |", "|---|---|"] + [f"| {k} | {'yes' if v else '**NO**'} |"
                                                    for k, v in summary["targets"].items()]
    return "\n".join(lines) + "\n"
