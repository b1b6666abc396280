"""The learning benchmark's figure and Markdown table."""

from __future__ import annotations

import math
from pathlib import Path

LABELS = {"search": "search self-play, SFT on verified paths", "sft-greedy-cpu": "SFT on teachers' greedy answers "
          "(same CPU seconds)", "rft-cpu": "RFT on teachers' pooled samples (same CPU seconds)",
          "sft-greedy-tokens": "SFT on teachers' greedy answers (same weighted tokens)",
          "rft-tokens": "RFT on teachers' pooled samples (same weighted tokens)"}
COLOURS = {"search": "tab:red", "sft-greedy-cpu": "tab:blue", "rft-cpu": "tab:green", "sft-greedy-tokens": "tab:cyan",
           "rft-tokens": "tab:olive"}
"""One colour per arm (a budget row of a control is its own arm)."""
SIGNAL_COLOURS = ("tab:purple", "tab:brown", "tab:pink", "tab:gray", "black", "gold")
"""The signals' colours: none of an arm's, so no colour means two things in one figure."""


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
        xs, ys = range(len(curve)), [p["mean"] for p in curve]
        style = ":" if name.endswith("tokens") else "-"
        left.plot(xs, ys, style, marker="o", color=COLOURS.get(name, "k"), label=LABELS.get(name, name))
        left.fill_between(xs, [y - _half(p) for y, p in zip(ys, curve, strict=True)],
                          [y + _half(p) for y, p in zip(ys, curve, strict=True)], color=COLOURS.get(name, "k"),
                          alpha=0.12)
    if summary.get("best_teacher") is not None:
        left.axhline(summary["best_teacher"], ls="--", c="grey", label=f"best teacher, greedy ({summary['best_teacher']:.3f})")
    left.set(xlabel="iteration (0 = before training)", ylabel="primary's held-out accuracy (greedy, alone)",
             title=f"{summary['task']}: search vs the no-search controls", ylim=(-0.02, 1.02))
    left.legend(fontsize=6)
    for i, (name, sig) in enumerate(summary.get("signals", {}).items()):
        curve = sig["task_accuracy"]
        right.plot(range(len(curve)), [p["mean"] for p in curve], marker="o",
                   color=SIGNAL_COLOURS[i % len(SIGNAL_COLOURS)], label=name)
    right.set(xlabel="iteration", ylabel="held-out accuracy", title="each training signal (guarded, one seed)",
              ylim=(-0.02, 1.02))
    for axis in (left, right):
        axis.xaxis.get_major_locator().set_params(integer=True)
    if summary.get("signals"):
        right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(p: dict) -> str:
    return f"{p['mean']:.3f}" + ("" if math.isnan(p["high"] - p["low"]) else f" [{p['low']:.3f}, {p['high']:.3f}]")


def _solved_text(run: dict) -> str:
    return ", ".join(f"{n}/{e}" for n, e in run.get("self_play_solved", [])) or "-"


def _weightage_text(per_iteration: list[dict]) -> str:
    return ", ".join(f"{w.get('lowered', 0)}/{w.get('raised', 0)}" for w in per_iteration)


def markdown(summary: dict) -> str:
    """Tables: arms (accuracy before/after, costs), paired differences, credit, hard problems, signals, ablations."""
    lines = []
    if "arms" in summary:
        lines += [f"Best teacher (greedy, held-out): {summary['best_teacher']:.3f}.", "",
                  ("| arm | before | per iteration (mean [95 % t-interval over seeds]) | generation CPU s | teacher "
                  "weighted tokens (every model) | training s | wall s | `reverse` after |"), "|---|---|---|---|---|---|---|---|"]
        for name, a in summary["arms"].items():
            curve = " -> ".join(_fmt(p) for p in a["task_accuracy"][1:])
            lines.append(f"| {LABELS.get(name, name)} | {_fmt(a['task_accuracy'][0])} | {curve} | "
                         f"{a['generation_cpu_seconds']['mean']:.0f} | {a['weighted_tokens']['mean']:.0f} | "
                         f"{a['train_seconds']['mean']:.0f} | {a['wall_seconds']['mean']:.0f} | "
                         f"{a['general_accuracy']['mean']:.3f} |")
        lines += ["", ("| search minus | per-seed differences | paired bootstrap over problems x seeds [95 %] | "
                  "t-interval over seeds | search better |"), "|---|---|---|---|---|"]
        for name, p in summary["paired"].items():
            diffs = ", ".join(f"{d:+.3f}" for d in p["differences"])
            b = p["bootstrap"]
            lines.append(f"| {LABELS.get(name, name)} | {diffs} | {b['difference']:+.3f} [{b['low']:+.3f}, "
                         f"{b['high']:+.3f}] | {_fmt(p['t_interval'])} | {'yes' if p['search_better'] else 'no'} |")
        ks = sorted({int(k) for a in summary["arms"].values() for k in a["pass_at_k"]})
        if ks:
            lines += ["", "| arm | " + " | ".join(f"pass@{k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
            for name, a in summary["arms"].items():
                lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(
                    f"{a['pass_at_k'][str(k)]['mean']:.3f}" if str(k) in a["pass_at_k"] else "-" for k in ks) + " |")
        lines += ["", "Distinct right solutions per solved problem in each arm's data, per iteration (seed 0): "
                  + "; ".join(f"{LABELS.get(n, n).split(' (')[0]}: "
                              + ", ".join(f"{d:.2f}" for d in (a["distinct_right"][0] or []) if d is not None)
                              for n, a in summary["arms"].items()) + "."]
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
                  + _weightage_text(weight) + ".", ""]
    if summary.get("signals"):
        lines += ["| signal (guarded) | before | after | general after | replay on | self-play solved per iteration |",
                  "|---|---|---|---|---|---|"]
        for name, s in summary["signals"].items():
            lines.append(f"| {name} | {s['task_accuracy'][0]['mean']:.3f} | {s['task_accuracy'][-1]['mean']:.3f} | "
                         f"{s['general_accuracy'][-1]:.3f} | {sum(bool(r) for r in s['replay'])}/{len(s['replay'])} | "
                         f"{_solved_text(s)} |")
        lines.append("")
    if summary.get("ablations"):
        lines += ["| ablation (one seed) | before | after | self-play solved per iteration | weightage lowered / raised |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['task_accuracy_before']:.3f} | {v['task_accuracy_after']:.3f} | {_solved_text(v)} | "
                  f"{_weightage_text(v['weightage'])} |"
                  for k, v in summary["ablations"].items()]
        lines.append("")
    if "targets" in summary:
        lines += ["| target | met |", "|---|---|"] + [f"| {k} | {'yes' if v else '**NO**'} |"
                                                    for k, v in summary["targets"].items()]
    return "\n".join(lines) + "\n"
