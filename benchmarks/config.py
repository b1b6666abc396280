"""The benchmark suite's settings and the machine record every result carries."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from dataclasses import dataclass

from tokentree_env.zoo.catalog import DEFAULT_PRIMARY, DEFAULT_TEACHERS

PARTS = ("speed", "search", "ablations", "learning")


@dataclass
class SuiteConfig:
    """What the suite runs; ``quick`` shrinks every part to fit in under 5 minutes on 2 cores."""

    name: str = "bench"
    out: str = "results"
    quick: bool = False
    task: str = "chain3"
    teachers: tuple[str, ...] = DEFAULT_TEACHERS
    primary: str = DEFAULT_PRIMARY
    prompts: int | None = None  # held-out prompts per agent (default: 30 quick, 100 full)
    seed: int = 0
    learning_seeds: int = 3
    parts: tuple[str, ...] = PARTS
    tiny: bool = False  # a smoke run for the tests: every part on a handful of samples; not a measurement

    def size(self, full: int, quick: int, tiny: int) -> int:
        """A sample count for the configured mode."""
        return tiny if self.tiny else quick if self.quick else full

    @property
    def n(self) -> int:
        return self.prompts or self.size(100, 30, 3)

    @property
    def search_agents(self) -> tuple[str, ...]:
        strong = ("ensemble-greedy", "best-reference", "majority-vote")  # in every search table
        if self.quick or self.tiny:
            return (*strong, "best-of:4", "mcts:2", "mcts-gumbel:4")
        return ("random", "greedy-primary", "greedy-prior", *strong, "best-of:2", "best-of:4", "best-of:8", "beam:1",
                "beam:2", "beam:3", "mcts:2", "mcts:4", "mcts:8", "mcts:16", "mcts-gumbel:4", "mcts-gumbel:8",
                "mcts-judge:8", "maskable-ppo")


def machine() -> dict:
    """Where the numbers came from."""
    import gymnasium
    import numpy
    import torch
    import transformers
    import trl

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip() or None
    except OSError:
        commit = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                         "gymnasium": gymnasium.__version__, "numpy": numpy.__version__},
            "git_commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's options (shared by ``tokentree bench`` and ``python -m benchmarks``)."""
    parser.add_argument("--quick", action="store_true", help="under 5 minutes on 2 cores")
    parser.add_argument("--name", default=None, help="results file stem (default: bench-quick / bench)")
    parser.add_argument("--out", default="results")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--task", default="chain3", help="built-in task name or a JSONL file")
    parser.add_argument("--teacher", dest="teachers", action="append", default=None,
                        help="a teacher (repeat for several; default: the zoo's three)")
    parser.add_argument("--primary", default=DEFAULT_PRIMARY)
    parser.add_argument("--prompts", type=int, default=None, help="held-out prompts per agent")
    parser.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    return SuiteConfig(name=args.name or ("bench-quick" if args.quick else "bench"), out=args.out, quick=args.quick,
                       task=args.task, teachers=tuple(args.teachers or DEFAULT_TEACHERS), primary=args.primary,
                       prompts=args.prompts, seed=args.seed, parts=tuple(args.parts))


def quiet_worker() -> None:
    """A benchmark process's set-up: one torch thread (two processes share the 2 cores), the libraries quiet."""
    import torch

    from agents.quiet import quiet_libraries

    torch.set_num_threads(1)
    quiet_libraries()


def quiet_console():
    """A rich console that prints nothing (a benchmark's arms report through their own files)."""
    from rich.console import Console

    return Console(quiet=True)
