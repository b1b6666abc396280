"""``python -m benchmarks.real_models --learning``: SmolLM2 trained past its start on the real stack.

Fixed before the run (:class:`RealLearningConfig`):

- SmolLM2-135M-Instruct is the primary, trained as a LoRA adapter; Gemma 3 270M and SmolLM2 are the teachers;
  ``arith-words``; the judge is the protocol chosen on train answers (``--judge``) if its held-out ROC AUC reached
  0.65, else off (the default: no real judge reached it; benchmarks/README.md).
- Self-play: MCTS with the verifier scoring the leaves (train prompts), 2 simulations per step, 3 iterations of
  32 prompts; SFT on the verified paths through the one route for training text (the primary's chat template),
  with EWC and auto-replay.
- Evaluation, batched, in the primary's own format: the start and the end on the 200 held-out problems, the
  iterations between on a fixed 50-problem slice.
- Beside it, the learning benchmark's RFT control (verified temperature-1 samples pooled from both teachers) at the
  search run's weighted forwarded tokens of every model (teachers, primary, judge; :mod:`agents.compute`), same
  trainer. (Last round's run counted the teachers' tokens only; its numbers in benchmarks/README.md are marked so.)

Reported: the primary's start and end on the 200 problems with a paired-bootstrap 95 % interval and McNemar's p,
its gain over the RFT control with its interval, peak memory and wall time (target: at most 60 minutes).
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SMOL, GEMMA = "pkg:smollm2-135m-instruct", "pkg:gemma3-270m"


@dataclass
class RealLearningConfig:
    """The real learning run's settings (fixed before it runs)."""

    judge: str | None = None
    loop: dict = field(default_factory=lambda: {
        "iterations": 3, "prompts_per_iteration": 32, "repeats": 1, "simulations": 2, "lora": True,
        "max_new_tokens": 16, "eval_size": 200, "eval_between": 50, "epochs": 4, "learning_rate": 2e-4,
        "validation_size": 50, "selfplay_batch": 4})
    workers: int = 2
    seed: int = 0


def run(out: str = "results/real-models/learning", cfg: RealLearningConfig | None = None) -> dict:
    """The search run and its RFT control (each resumed if stopped); the paired report."""
    from tokentree_env.stats import mcnemar, paired_bootstrap

    from .learning_arms import LearningConfig, control_arm, search_arm

    cfg = cfg or RealLearningConfig()
    started = time.perf_counter()
    Path(out, "runs").mkdir(parents=True, exist_ok=True)
    learning = LearningConfig(task="arith-words", seeds=1, out=out, loop=dict(cfg.loop), workers=cfg.workers,
                              models={"teachers": (GEMMA, SMOL), "primary": SMOL, "judge": cfg.judge})
    search = search_arm(learning, cfg.seed)
    control = control_arm(learning, cfg.seed, "rft", search, by="tokens")
    start, end = search["baseline"]["task_correct"], search["history"][-1]["task_correct"]
    rft = control["history"][-1]["task_correct"]
    result = {"config": asdict(cfg), "wall_seconds": time.perf_counter() - started,
              "peak_memory_gb": _peak_gb(), "search": _curve(search), "rft": _curve(control),
              "gain": paired_bootstrap(end, start) | {"p_value": mcnemar(end, start)["p_value"]},
              "over_rft": paired_bootstrap(end, rft) | {"p_value": mcnemar(end, rft)["p_value"]},
              "weighted_tokens": {"search": search["weighted_tokens"],
                                  "rft": [h["weighted_tokens"] for h in control["history"]]},
              "self_play_solved": [len(s) for s in search["solved"]]}
    result["learned"] = result["gain"]["low"] > 0
    return result


def _curve(run: dict) -> list[dict]:
    return [{"task_accuracy": h["task_accuracy"], "problems": len(h["task_correct"]),
             "general_accuracy": h["general_accuracy"]} for h in [run["baseline"], *run["history"]]]


def _peak_gb() -> float:
    """Peak resident memory of this process and its finished children, in GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 2**20  # kB -> GB


def markdown(result: dict) -> str:
    s, r = result["search"], result["rft"]
    g, o = result["gain"], result["over_rft"]
    lines = [f"| run | start ({s[0]['problems']}) | " + " | ".join(f"iteration {i} ({c['problems']})"
                                                              for i, c in enumerate(s[1:], 1))
             + " | `reverse` at the start | at the end |", "|---|" + "---|" * (len(s) + 2)]
    for name, curve in (("search (MCTS self-play, SFT)", s), ("RFT control (same weighted tokens)", r)):
        lines.append(f"| {name} | " + " | ".join(f"{c['task_accuracy']:.3f}" for c in curve)
                     + f" | {curve[0]['general_accuracy']:.3f} | {curve[-1]['general_accuracy']:.3f} |")
    lines += ["", (f"End minus start on the {s[0]['problems']} held-out problems: {g['difference']:+.3f} [{g['low']:+.3f}, "
              f"{g['high']:+.3f}] (paired bootstrap 95 %), McNemar p = {g['p_value']:.2g}: "
              f"{'learned' if result['learned'] else 'no gain beyond the noise'}. Against the RFT control: "
              f"{o['difference']:+.3f} [{o['low']:+.3f}, {o['high']:+.3f}], p = {o['p_value']:.2g}. Self-play solved "
              f"{result['self_play_solved']} per iteration; {result['wall_seconds'] / 60:.1f} minutes, peak memory "
              f"{result['peak_memory_gb']:.1f} GB.")]
    return "\n".join(lines) + "\n"
