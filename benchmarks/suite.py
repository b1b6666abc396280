"""The benchmark suite: speed, search strength, ablations and learning, side by side, in one run.

``tokentree bench`` / ``python -m benchmarks`` runs it on the zoo and writes, under ``--out``
(``results/``): ``<name>.json`` (machine, versions, seeds, settings and every raw sample),
``<name>-search.png``, ``<name>-speed.png``, ``<name>-ablations.png`` and ``<name>.md``. Its parts live
apart: :mod:`~tokentree_benchmarks.speed`, :mod:`~tokentree_benchmarks.search`, :mod:`~tokentree_benchmarks.ablations`,
:mod:`~tokentree_benchmarks.learning_arms`, and the report (:mod:`~tokentree_benchmarks.report`).

``--quick`` (under 5 minutes on 2 cores): the speed ratios on shorter paths, the search agents at two
budgets, and one ablation (1 vs 3 teachers).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from .ablations import ablations
from .config import SuiteConfig, add_arguments, config_from_args, machine
from .report import markdown, plots
from .speed import speed
from .suite_search import suite_search


def run(cfg: SuiteConfig, console: Console | None = None) -> dict:
    """Run the configured parts; write JSON, plots and the Markdown table; return the result."""
    import torch

    torch.set_num_threads(1)
    console = console or Console()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [p for p in cfg.parts if not ((cfg.quick or cfg.tiny) and p == "learning")]
    result: dict = {"name": cfg.name, "config": asdict(cfg), "machine": machine(), "seconds": {}}
    with Progress(console=console) as bar:
        job = bar.add_task("benchmark suite", total=len(parts))

        def progress(message: str) -> None:
            bar.update(job, description=message)

        for part in parts:
            progress(part)
            began = time.perf_counter()
            if part == "speed":
                result["speed"] = speed(cfg)
            elif part == "search":
                result["search"] = suite_search(cfg, progress)
            elif part == "ablations":
                result["ablations"] = ablations(cfg, progress)
            elif part == "learning":
                from . import learning as learning_suite

                learning_suite.main(["--out", str(out / f"{cfg.name}-learning"), "--seeds", str(cfg.learning_seeds)])
                result["learning"] = {"folder": str(out / f"{cfg.name}-learning"),
                                      "table": str(out / f"{cfg.name}-learning" / "learning.md")}
            result["seconds"][part] = time.perf_counter() - began
            bar.advance(job)
    result["plots"] = plots(result, out, cfg.name)
    (out / f"{cfg.name}.json").write_text(json.dumps(result, indent=1, default=str))
    (out / f"{cfg.name}.md").write_text(markdown(result))
    console.print(markdown(result))
    console.print(f"wrote {out}/{cfg.name}.json, {cfg.name}.md, " + ", ".join(result["plots"]))
    return result


def main(argv: list[str] | None = None, prog: str = "python -m tokentree_benchmarks") -> dict:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser)
    config = config_from_args(parser.parse_args(argv))
    from agents.quiet import quiet_libraries

    quiet_libraries()
    return run(config)
