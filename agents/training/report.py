"""What a training run reports: accuracy before and after, forgetting, and the learning curves (PNG)."""

from __future__ import annotations

from pathlib import Path


def summary(state: dict, run_dir: Path, task: str, general_task: str, signals) -> dict:
    """Held-out accuracy on the task and the general task before and after, forgetting, and the curves
    (also saved as ``learning_curves.png``)."""
    base, hist = state["baseline"], state["history"]
    last = hist[-1] if hist else base
    out = {"task": task, "task_accuracy_before": base["task_accuracy"], "task_accuracy_after": last["task_accuracy"],
           "general_accuracy_before": base["general_accuracy"], "general_accuracy_after": last["general_accuracy"],
           "forgetting": base["general_accuracy"] - last["general_accuracy"], "iterations": len(hist),
           "curves": str(run_dir / "learning_curves.png"), "teachers": state.get("teachers")}
    plot_curves(state, run_dir / "learning_curves.png", task, general_task, signals)
    return out


def plot_curves(state: dict, path: Path, task: str, general_task: str, signals) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base, hist = state["baseline"], state["history"]
    xs = list(range(len(hist) + 1))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [base["task_accuracy"]] + [h["task_accuracy"] for h in hist], marker="o",
            label=f"{task} (task) held-out accuracy")
    ax.plot(xs, [base["general_accuracy"]] + [h["general_accuracy"] for h in hist], marker="s",
            label=f"{general_task} (general) held-out accuracy")
    best = (state.get("teachers") or {}).get("best")
    if best is not None:
        ax.axhline(best, color="grey", linestyle="--", label=f"best teacher, greedy ({best:.2f})")
    ax.set_xlabel("iteration (0 = before training)")
    ax.set_ylabel("primary's greedy accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    ax.set_title(f"TokenTree: training the primary ({'+'.join(signals)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
