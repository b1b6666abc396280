"""The full loop from Python: self-play search -> train the primary with TRL -> evaluate, resumable.

    python examples/training_loop.py [--iterations 2] [--prompts 40]

``tokentree train`` runs the same loop on the built-in defaults (7 iterations x 600 prompts).
"""

import argparse
from pathlib import Path

from agents.training import TrainConfig, TrainingRun


def main(iterations: int = 2, prompts: int = 40, output_dir: str = "runs/example") -> None:
    config = TrainConfig(output_dir=output_dir, iterations=iterations, prompts_per_iteration=prompts,
                         signals=("sft",), ewc=1000.0, replay="auto")
    resume = (Path(output_dir) / "state.json").exists()  # run it again to continue a stopped run
    run = TrainingRun.from_output_dir(output_dir) if resume else TrainingRun(config)
    summary = run.run()
    print(f"chain3 {summary['task_accuracy_before']:.3f} -> {summary['task_accuracy_after']:.3f}, "
          f"forgetting on reverse {summary['forgetting']:+.3f}; curves in {summary['curves']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--output-dir", default="runs/example")
    args = parser.parse_args()
    main(args.iterations, args.prompts, args.output_dir)
