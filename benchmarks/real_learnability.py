"""``python -m benchmarks.real_learnability``: can the real learning run's trainer teach SmolLM2 its task at all?

A learning comparison in which no arm can learn says nothing, so this runs before the real learning run
(:mod:`tokentree_benchmarks.real_learning`), with its settings fixed here:

- **Data**: the task's own worked answers (``Problem.solutions[style]``, default ``"step"``: " 9 + 1 = 10 eggs.",
  the form of the prompt's worked examples) to ``answers`` train problems a round, never the run's validation
  problems nor the ones measured here; accumulated as in the loop. The best data there is: if it teaches nothing,
  no arm's data will.
- **Trainer**: the run's own, built as its arms build it (:func:`~tokentree_benchmarks.real_learning.learning_config`:
  LoRA SmolLM2 in its chat format, the loop's epochs and learning rate, EWC, replay of the probe's train items),
  through the loop's ``TrainingRun.train_round``.
- **Measure**: greedy accuracy at the run's answer length on ``validation`` train problems that are never trained on
  (measured after every round) and the probe's held-out items; the task's held-out split once, at the end.
- **Pass**: the last round's validation accuracy above the start's, with the paired bootstrap's 95 % interval over
  the validation problems above 0.

Writes ``check.json`` and ``check.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass
class RealCheckConfig:
    """What the check runs (see the module docstring)."""

    answers: int = 100
    """Worked answers a round: about what the run's controls get from the teachers in a round."""
    rounds: int = 3
    validation: int = 200
    style: str = "step"
    seed: int = 0
    out: str = "results/real-models/learnability"


def check(cfg: RealCheckConfig | None = None, progress=print) -> dict:
    """Run the check; write ``check.json`` and ``check.md`` under ``cfg.out``; return the result."""
    import torch

    from agents.training import TrainingRun
    from agents.training.checkpoint import load_primary
    from agents.training.measure import greedy_results
    from tokentree_env.stats import paired_bootstrap
    from tokentree_env.tasks import load_task

    from .config import machine, quiet_console
    from .learning_arms import arm_config
    from .real_learning import RealLearningConfig, learning_config

    cfg = cfg or RealCheckConfig()
    torch.set_num_threads(1)
    started, real = time.perf_counter(), RealLearningConfig()
    learning = learning_config(real)
    out = Path(cfg.out)
    config = arm_config(replace(learning, workers=1), out / "run", cfg.seed, real.search)
    run = TrainingRun(config, console=quiet_console())
    task, probe = load_task(config.task), load_task(config.general_task)
    excluded = {p.prompt for p in run.validation_problems(config.task)}
    pool = [p for p in task.problems("train") if p.prompt not in excluded]
    random.Random(f"real-learnability:{cfg.seed}").shuffle(pool)
    validation, pool = pool[:cfg.validation], pool[cfg.validation:]
    if len(pool) < cfg.rounds * cfg.answers:
        raise ValueError(f"{config.task} has {len(pool)} train problems left for training, fewer than rounds x answers "
                         f"({cfg.rounds} x {cfg.answers}); ask for fewer")
    lm = load_primary(config.primary, config.lora, seed=cfg.seed)
    tokens = config.max_new_tokens

    def measure() -> dict:
        correct = greedy_results(lm, task, validation, max_new_tokens=tokens)
        general = greedy_results(lm, probe, probe.problems("heldout")[:config.eval_size], max_new_tokens=tokens)
        return {"validation_correct": correct, "validation_accuracy": sum(correct) / len(correct),
                "probe_accuracy": sum(general) / len(general)}

    start = measure()
    run.state["baseline"] = {"validation_task_accuracy": start["validation_accuracy"],
                             "validation_general_accuracy": start["probe_accuracy"]}
    progress(f"start: validation {start['validation_accuracy']:.3f}, probe {start['probe_accuracy']:.3f}")
    history, buffer = [], []
    for round_ in range(cfg.rounds):
        records = [{"prompt": p.prompt, "completion": p.solutions[cfg.style], "hard_reward": 1.0, "episode_return": 1.0,
                    "iteration": round_} for p in pool[round_ * cfg.answers:(round_ + 1) * cfg.answers]]
        buffer += records
        trained = time.perf_counter()
        run.train_round(lm, records, buffer if config.accumulate else records, round_)
        history.append(measure() | {"round": round_ + 1, "answers": len(records),
                                    "train_seconds": time.perf_counter() - trained, "replay": run._last_replay})
        progress(f"round {round_ + 1}: {len(buffer)} answers so far, validation "
                 f"{history[-1]['validation_accuracy']:.3f}, probe {history[-1]['probe_accuracy']:.3f}")
    gain = paired_bootstrap(history[-1]["validation_correct"], start["validation_correct"])
    heldout = greedy_results(lm, task, task.problems("heldout")[:config.eval_size], max_new_tokens=tokens)
    result = {"config": asdict(cfg), "trainer": {k: v for k, v in asdict(config).items() if k in TRAINER_KEYS},
              "machine": machine(), "start": start, "history": history, "gain": gain, "passed": gain["low"] > 0,
              "heldout_once": sum(heldout) / len(heldout), "heldout_problems": len(heldout),
              "seconds": time.perf_counter() - started}
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(result, indent=1))
    (out / "check.md").write_text(markdown(result))
    progress(verdict(result))
    return result


TRAINER_KEYS = ("primary", "lora", "epochs", "learning_rate", "batch_size", "ewc", "si", "replay", "replay_fraction",
                "replay_rows", "accumulate", "signals", "general_task", "max_new_tokens", "prompts_per_iteration")
"""The run's trainer settings the check reports."""


def verdict(result: dict) -> str:
    g, final = result["gain"], result["history"][-1]
    return (f"real learnability check {'PASSED' if result['passed'] else 'FAILED'}: validation "
            f"{result['start']['validation_accuracy']:.3f} -> {final['validation_accuracy']:.3f} "
            f"({g['difference']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]), probe "
            f"{result['start']['probe_accuracy']:.3f} -> {final['probe_accuracy']:.3f}; held-out once "
            f"{result['heldout_once']:.3f}; {result['seconds'] / 60:.1f} min")


def markdown(result: dict) -> str:
    c = result["config"]
    lines = [(f"Real learnability check: the run's trainer ({result['trainer']}) on {c['rounds']} rounds x "
              f"{c['answers']} worked answers in the `{c['style']}` form; {c['validation']} validation problems."), "",
             "| round | answers so far | validation accuracy | probe |", "|---|---|---|---|",
             f"| start | - | {result['start']['validation_accuracy']:.3f} | {result['start']['probe_accuracy']:.3f} |"]
    lines += [f"| {h['round']} | {h['round'] * c['answers']} | {h['validation_accuracy']:.3f} | {h['probe_accuracy']:.3f} |"
              for h in result["history"]]
    return "\n".join([*lines, "", verdict(result)]) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from agents.quiet import quiet_libraries

    defaults = RealCheckConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_learnability", description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=defaults.answers, help="worked answers a round")
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--validation", type=int, default=defaults.validation, help="train problems measured, never trained on")
    parser.add_argument("--style", default=defaults.style, help="which of the task's worked answers")
    parser.add_argument("--out", default=defaults.out)
    args = parser.parse_args(argv)
    quiet_libraries()
    return check(RealCheckConfig(answers=args.answers, rounds=args.rounds, validation=args.validation,
                                 style=args.style, out=args.out))


if __name__ == "__main__":
    raise SystemExit(0 if main()["passed"] else 1)
