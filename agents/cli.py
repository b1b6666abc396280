"""The ``tokentree`` command line.

Errors print as one line with a hint; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _zoo_report(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from pathlib import Path

    from rich.console import Console

    from agents.quiet import quiet_libraries
    from tokentree_env.zoo.report import print_report, zoo_report
    from tokentree_env.zoo.testbed import print_testbed, testbed_report

    quiet_libraries()
    rows = zoo_report(args.models, args.dir, args.sample) if args.sample > 0 else []
    ok = print_report(rows) if rows else True
    result = {"models": [asdict(r) for r in rows]}
    if args.testbed_sample > 0 and not args.models and "chain5" in args.testbeds:
        with Console().status("measuring the chain5 test-bed") as status:
            report = testbed_report(n=args.testbed_sample, progress=lambda m: status.update(f"test-bed: {m}"))
        ok = print_testbed(report) and ok
        result["testbed"] = report
    if args.testbed_sample > 0 and not args.models and "chain5-skills" in args.testbeds:
        from agents.evaluation import skills_testbed
        from tokentree_env.zoo.skills_testbed import print_skills
        with Console().status("measuring the chain5-skills test-bed's gates") as status:
            report = skills_testbed(args.testbed_sample, args.pooled_samples, lambda m: status.update(f"gates: {m}"))
        ok = print_skills(report) and ok
        result["testbed_skills"] = report
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(("every target met" if ok else "some targets are NOT met (see the tables)") + f"; JSON: {args.out}")
    return 0 if ok else 1


def _zoo_train(args: argparse.Namespace) -> int:
    from tokentree_env.models.loader import zoo_dir
    from tokentree_env.zoo.train import main as train_main

    argv = ["--out", args.out or str(zoo_dir()), "--budget", str(args.budget), "--jobs", str(args.jobs)]
    train_main(argv + (["--models", *args.models] if args.models else []))
    return 0


def _search(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from pathlib import Path

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from agents.evaluation import evaluate, make_agent
    from agents.store import EpisodeStore
    from tokentree_env.tasks import load_task

    task = load_task(args.task, verifier=args.verifier)
    prompts = [p.prompt for p in task.problems(args.split)][: args.n]
    env_kwargs = {"task": task, "split": args.split, "max_new_tokens": args.max_new_tokens}
    if args.teachers:
        env_kwargs["teachers"] = args.teachers
    if args.primary:
        env_kwargs["primary"] = args.primary
    if args.judge:
        env_kwargs["judge"] = None if args.judge == "none" else args.judge
    env_kwargs["panel"] = {"rule": args.panel, "alpha": args.panel_alpha}
    agents = [make_agent(spec, args.seed) for spec in args.agents]  # validate every spec before running
    store = EpisodeStore(args.store) if args.store else None
    summaries = []
    with Progress() as bar:
        for agent in agents:
            job = bar.add_task(f"{agent.name}", total=len(prompts))
            summary, _ = evaluate(agent, prompts, env_kwargs, store=store, progress=lambda j=job: bar.advance(j),
                                  batch=args.batch, seed=args.seed)
            summaries.append(summary)
    table = Table(title=f"{task.name} / {args.split}: {len(prompts)} prompts, evaluation mode")
    for col in ("agent", "accuracy", "95% CI", "mean return", "fwd tokens/ep", "model calls/ep", "s"):
        table.add_column(col)
    for s in summaries:
        table.add_row(s.agent, f"{s.accuracy:.3f}", f"{s.accuracy_low:.2f}-{s.accuracy_high:.2f}",
                      f"{s.mean_return:.3f}", f"{s.forwarded_tokens:.0f}", f"{s.model_calls:.0f}", f"{s.seconds:.1f}")
    Console().print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"task": task.name, "split": args.split, "prompts": len(prompts),
                                          "summaries": [asdict(s) for s in summaries]}, indent=1))
    print(f"results: {args.out}" + (f"; episodes: {args.store}" if store else ""))
    if store:
        print(f"see an episode's search: tokentree view {args.store} --episode -1")
    return 0


def _run_folder(output_dir: str | None, resume: bool) -> str:
    """``--output-dir`` if given; else the newest ``runs/tokentree-N`` to resume, or a new one."""
    if output_dir:
        return output_dir
    from pathlib import Path

    numbered = sorted((int(p.name.rsplit("-", 1)[1]), p) for p in Path("runs").glob("tokentree-*")
                      if p.name.rsplit("-", 1)[1].isdigit())
    if resume:
        if not numbered:
            from tokentree_env.errors import ConfigError

            raise ConfigError("nothing to resume: no runs/tokentree-N folder here; pass --output-dir")
        return str(numbered[-1][1])
    return f"runs/tokentree-{numbered[-1][0] + 1 if numbered else 1}"


TRAIN_OPTIONS = ("iterations", "prompts_per_iteration", "seed", "simulations", "epochs", "learning_rate", "max_new_tokens",
                 "accumulate", "ewc", "si", "replay", "lora", "report_to", "eval_size", "workers", "task", "repeats",
                 "planner_verifier", "gumbel", "distill_target", "backend", "ray_address", "ray_cpus_per_actor",
                 "ray_gpus_per_actor", "selfplay_batch", "panel", "panel_alpha", "verifier", "agent", "dirichlet_fraction",
                 "rollout", "coverage_first", "student_in_panel", "distill_min_visits", "unsolved", "unsolved_samples", "round_cpu_seconds",
                 "round_weighted_tokens")


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agents.compute import Budget, BudgetReached
    from agents.quiet import quiet_libraries
    from agents.training import TrainConfig, TrainingRun
    from agents.training.checkpoint import primary_path
    from agents.training.stopping import sigterm_as_interrupt

    quiet_libraries()
    budget = Budget(cpu_seconds=args.budget_cpu, weighted_tokens=args.budget_tokens)
    args.output_dir = _run_folder(args.output_dir, args.resume)
    if args.resume:  # a resumed run keeps the settings it started with (stored in its state.json)
        run = TrainingRun.from_output_dir(args.output_dir, budget=budget)
    else:
        overrides = {k: getattr(args, k) for k in TRAIN_OPTIONS}
        overrides |= {"signals": tuple(args.signals)} | ({"primary": args.primary} if args.primary else {})
        overrides |= ({"teachers": tuple(args.teachers)} if args.teachers else {})
        overrides |= ({"judge": None if args.judge == "none" else args.judge} if args.judge else {})
        run = TrainingRun(TrainConfig(output_dir=args.output_dir, **overrides), budget=budget)
    print(f"run folder: {args.output_dir}" + (" (resuming)" if args.resume else ""), flush=True)
    try:
        with sigterm_as_interrupt():
            summary = run.run()
    except KeyboardInterrupt:
        print(f"stopped; nothing completed was lost. Resume with: tokentree train --resume --output-dir "
              f"{run.config.output_dir}", file=sys.stderr, flush=True)
        return 130
    except BudgetReached as stop:
        print("\n".join([f"{stop}; nothing completed was lost.", *run.ledger.lines(),
                         f"Resume with: tokentree train --resume --output-dir {run.config.output_dir} (a larger "
                         "--budget-cpu / --budget-tokens, or none, to go on)"]), flush=True)
        return 0
    line = (f"{summary['task']} accuracy {summary['task_accuracy_before']:.3f} -> {summary['task_accuracy_after']:.3f}; "
            f"general accuracy {summary['general_accuracy_before']:.3f} -> {summary['general_accuracy_after']:.3f} "
            f"(forgetting {summary['forgetting']:+.3f})")
    print(f"{line}{_against_best_teacher(summary)}; curves: {summary['curves']}")
    print("\n".join(run.ledger.lines()))
    trained = primary_path(Path(run.config.output_dir), run.config.iterations, run.config.primary)
    print(f"trained primary: {trained} (save_pretrained; usable as --primary)")
    print(f"see the search: tokentree view {run.config.output_dir}")
    return 0


def _against_best_teacher(summary: dict) -> str:
    """How the primary stands against the best teacher's greedy accuracy: the share of the gap closed, or, when
    the primary starts level with or above that teacher, that there was no gap to close."""
    best = (summary.get("teachers") or {}).get("best")
    if best is None:
        return ""
    before, after = summary["task_accuracy_before"], summary["task_accuracy_after"]
    if best <= before:
        return f"; best teacher {best:.3f} (the primary started level with or above it: no gap to close)"
    return f"; best teacher {best:.3f} (primary closed {100 * (after - before) / (best - before):.0f} % of the gap)"


def _view(args: argparse.Namespace) -> int:
    from agents.viewer import write_view

    out = write_view(args.source, args.out, episode=args.episode, primary=args.primary)
    print(f"wrote {out} (self-contained; open it in a browser)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from agents.quiet import quiet_libraries
    from agents.training.export import export_run

    quiet_libraries()
    counts = export_run(args.run, args.out)
    out = args.out or f"{args.run}/export"
    print(f"wrote {out}: " + ", ".join(f"{name} {n} rows" for name, n in counts.items())
          + " (datasets.load_from_disk, or the .jsonl beside each)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    """The benchmark suite (:mod:`tokentree_benchmarks.suite`, imported only here: the one place the library reaches
    the harness); its own parser reads the arguments after ``bench``."""
    from tokentree_benchmarks.suite import main as suite_main

    suite_main(args.bench_args, prog="tokentree bench")
    return 0


def _panel_arguments(parser: argparse.ArgumentParser) -> None:
    from tokentree_env.scoring.panel import DEFAULT_ALPHA, PANEL_RULES  # light: NumPy and SciPy, no torch

    parser.add_argument("--panel", default="mixture", choices=list(PANEL_RULES),
                        help="how the teachers' log-probs combine: a mixture whose weights follow the writing teacher "
                             "(default), their mean probability, or their mean log-prob (the product)")
    parser.add_argument("--panel-alpha", type=float, default=DEFAULT_ALPHA,
                        help="the mixture's fixed share: every teacher keeps at least this share / K of the weight")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tokentree`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tokentree",
        description="TokenTree: teacher LLMs propose tokens, a search chooses, the primary learns.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    search = commands.add_parser("search", help="run agents over a task split (evaluation mode) and compare them")
    from agents.specs import specs_help

    search.add_argument("--agents", nargs="+", default=["mcts:8"],
                        help=f"agent specs (N samples, W beams, S simulations or growth steps): {specs_help()}")
    search.add_argument("--task", default="chain3", help="built-in task name or a JSONL file")
    search.add_argument("--verifier", default=None, help="a task file's verifier: exact, numeric or module:function")
    search.add_argument("--split", default="heldout", choices=["train", "heldout"])
    search.add_argument("--n", type=int, default=50, help="number of prompts")
    search.add_argument("--teachers", nargs="*", default=None, help="teacher models (default: the zoo's three)")
    search.add_argument("--primary", default=None, help="primary model (default: zoo:primary)")
    search.add_argument("--judge", default=None, help="judge model, or 'none' (default: zoo:judge)")
    search.add_argument("--max-new-tokens", type=int, default=32)
    _panel_arguments(search)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--batch", type=int, default=1,
                        help="episodes (prompts) each agent plays together in lockstep: every round, one batched "
                             "forward per model serves them all (the same episodes as one at a time)")
    search.add_argument("--out", default="results/search.json", help="where to write the results table as JSON")
    search.add_argument("--store", default=None, help="append every episode to this JSONL episode store")
    search.set_defaults(func=_search)

    train = commands.add_parser("train", help="the loop: self-play search -> train the primary -> evaluate")
    train.add_argument("--output-dir", default=None,
                       help="run folder (default: a new runs/tokentree-N; with --resume: the newest one)")
    train.add_argument("--resume", action="store_true",
                       help="continue a run killed or stopped in --output-dir, with the settings it started with")
    from agents.training.config import BACKENDS, DISTILL_TARGETS, SIGNAL_NAMES, TrainConfig

    defaults = TrainConfig()
    train.add_argument("--task", default=defaults.task, help="built-in task name or a JSONL file")
    train.add_argument("--verifier", default=None, help="a task file's verifier: exact, numeric or module:function")
    train.add_argument("--iterations", type=int, default=defaults.iterations)
    train.add_argument("--prompts-per-iteration", type=int, default=defaults.prompts_per_iteration)
    train.add_argument("--repeats", type=int, default=defaults.repeats,
                       help="episodes per prompt in an iteration, played one after another (weightage acts)")
    train.add_argument("--signals", nargs="+", default=list(defaults.signals), choices=list(SIGNAL_NAMES))
    train.add_argument("--simulations", type=int, default=None,
                       help="MCTS simulations per step in self-play (default: the search spec's own; 2 for the "
                            "default MCTS)")
    train.add_argument("--dirichlet-fraction", type=float, default=None,
                       help="root Dirichlet noise of a PUCT self-play search (default 0.25; 0: off)")
    train.add_argument("--rollout", default=None, choices=["teacher", "prior", "writer"],
                       help="how an MCTS search values its leaves: the panel's greedy rollout through the tree "
                            "(teacher, default), the prior's, or the leaf's writer finishing the answer with its own "
                            "generate (writer: the fast rollout policy)")
    train.add_argument("--gumbel", action="store_true", help="Gumbel MuZero search instead of PUCT")
    train.add_argument("--agent", default=None,
                       help="self-play with any search spec instead of the MCTS above: mcts-steps:S (teachers write "
                            "steps), ab-mcts:S (AB-MCTS from treequest), mcts:S, ...")
    train.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens, help="the longest answer")
    _panel_arguments(train)
    train.add_argument("--planner-verifier", action=argparse.BooleanOptionalAction,
                       default=defaults.planner_verifier,
                       help="the verifier scores the search's leaves in self-play (train prompts only)")
    train.add_argument("--coverage-first", action="store_true",
                       help="the teachers' verified greedy answers first; search only the prompts none solved")
    train.add_argument("--unsolved", default="search", choices=["search", "samples", "none"],
                       help="coverage-first: what the prompts no teacher solved get (samples: the teachers' "
                            "samples, round-robin; none: the teachers' verified answers alone)")
    train.add_argument("--unsolved-samples", type=int, default=defaults.unsolved_samples,
                       help="--unsolved samples: samples per prompt at most")
    train.add_argument("--student-in-panel", action="store_true",
                       help="from the second iteration the primary joins the panel as a member")
    train.add_argument("--distill-min-visits", type=int, default=defaults.distill_min_visits,
                       help="distil only nodes whose search gave their children at least this many visits")
    train.add_argument("--distill-target", default=defaults.distill_target, choices=list(DISTILL_TARGETS))
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--accumulate", action=argparse.BooleanOptionalAction, default=defaults.accumulate,
                       help="train on every episode of the run so far (default), or on this iteration's only")
    train.add_argument("--ewc", type=float, default=defaults.ewc, help="EWC strength (0 = off)")
    train.add_argument("--si", type=float, default=defaults.si, help="Synaptic Intelligence strength (0 = off)")
    train.add_argument("--replay", default=defaults.replay, choices=["auto", "on", "off"])
    train.add_argument("--lora", action="store_true", help="train LoRA adapters through PEFT")
    train.add_argument("--primary", default=None)
    train.add_argument("--teachers", nargs="*", default=None)
    train.add_argument("--judge", default=None, help="judge model, or 'none' (default: zoo:judge)")
    train.add_argument("--eval-size", type=int, default=defaults.eval_size)
    train.add_argument("--workers", type=int, default=0,
                       help="self-play processes or Ray actors (0 = one per core, 1 = none; the episodes are the same)")
    train.add_argument("--backend", default=defaults.backend, choices=list(BACKENDS),
                       help="where self-play runs: local processes, or Ray actors")
    train.add_argument("--ray-address", default=None, help="a Ray cluster to join (default: start one locally)")
    train.add_argument("--ray-cpus-per-actor", type=float, default=defaults.ray_cpus_per_actor,
                       help="CPUs each Ray self-play actor reserves (--workers sets how many actors)")
    train.add_argument("--ray-gpus-per-actor", type=float, default=defaults.ray_gpus_per_actor)
    train.add_argument("--selfplay-batch", type=int, default=defaults.selfplay_batch,
                       help="episodes each self-play process plays in lockstep (batched forwards; same episodes)")
    train.add_argument("--report-to", default="none", help="passed to TRL: none, tensorboard, wandb")
    train.add_argument("--budget-cpu", type=float, default=None, metavar="SECONDS",
                       help="stop cleanly once the run has spent this many CPU seconds (every phase; resumable)")
    train.add_argument("--budget-tokens", type=float, default=None, metavar="TOKENS",
                       help="stop cleanly once self-play has forwarded this many weighted tokens (every model's, "
                            "in primary-token equivalents: docs/compute.md; resumable)")
    train.add_argument("--round-cpu-seconds", type=float, default=None, metavar="SECONDS",
                       help="each iteration's self-play stops at this generation CPU and trains on what it has")
    train.add_argument("--round-weighted-tokens", type=float, default=None, metavar="TOKENS",
                       help="the same in weighted forwarded tokens (primary-token equivalents)")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.set_defaults(func=_train)

    view = commands.add_parser("view", help="write a self-contained HTML view of a token tree or episode")
    view.add_argument("source", help="a run folder (runs/tokentree-N), a tree .json or an episodes .jsonl")
    view.add_argument("-o", "--out", default=None, help="HTML file (default: tree.html beside the source)")
    view.add_argument("--episode", type=int, default=-1, help="which stored episode (default: the last)")
    view.add_argument("--primary", default=None, help="the tokenizer to show tokens with (default: the run's)")
    view.set_defaults(func=_view)

    export = commands.add_parser("export", help="a run's training rows as datasets TRL's SFT and DPO trainers read")
    export.add_argument("run", help="a run folder of tokentree train (runs/tokentree-N)")
    export.add_argument("--out", default=None, help="output folder (default: RUN/export)")
    export.set_defaults(func=_export)

    bench = commands.add_parser("bench", add_help=False,
                                help="the benchmark suite: speed, search, ablations, learning (tokentree bench --help)")
    bench.set_defaults(func=_bench)

    zoo = commands.add_parser("zoo", help="the built-in model zoo: accuracy report, retraining")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    report = zoo_commands.add_parser("report", help="evaluate every zoo model against its targets")
    report.add_argument("--models", nargs="*", default=None, help="zoo names (default: all)")
    report.add_argument("--dir", default=None, help="evaluate models in this folder instead of the package's")
    report.add_argument("--sample", type=int, default=200, help="held-out problems per task per model (0: none)")
    report.add_argument("--testbed-sample", type=int, default=500,
                        help="held-out problems for the test-beds' figures (0 = skip the test-beds)")
    report.add_argument("--testbeds", nargs="*", default=["chain5", "chain5-skills"],
                        choices=["chain5", "chain5-skills"], help="which test-beds to measure (default: both)")
    report.add_argument("--pooled-samples", type=int, default=64, help="chain5-skills: pooled samples a problem")
    report.add_argument("--out", default="results/zoo-report.json", help="where to write the report as JSON")
    report.set_defaults(func=_zoo_report)
    train = zoo_commands.add_parser("train", help="retrain the zoo from scratch (reproducible)")
    train.add_argument("--models", nargs="*", default=None, help="zoo names (default: all)")
    train.add_argument("--out", default=None, help="output folder (default: the package's zoo folder)")
    train.add_argument("--budget", type=float, default=1.0, help="fraction of each model's steps")
    train.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    train.set_defaults(func=_zoo_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tokentree`` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "command", None) == "bench":
        args.bench_args = rest  # the suite's own options (and --help), read by its parser
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from tokentree_env.errors import TokenTreeError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tokentree: interrupted", file=sys.stderr)
        return 130
    except (TokenTreeError, OSError) as exc:
        if args.debug:
            raise
        print(f"tokentree: error: {exc}", file=sys.stderr)
        print("hint: check the arguments above; run with --debug for the full traceback", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
