"""The ``tokentree`` command line.

Errors print as one line with a hint; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _zoo_report(args: argparse.Namespace) -> int:
    from tokentree_env.zoo.report import print_report, zoo_report

    ok = print_report(zoo_report(args.models, args.dir, args.sample))
    print("every target met" if ok else "some targets are NOT met (see the table)")
    return 0 if ok else 1


def _zoo_train(args: argparse.Namespace) -> int:
    from tokentree_env.models.loader import zoo_dir
    from tokentree_env.zoo.train import main as train_main

    argv = ["--out", args.out or str(zoo_dir()), "--budget", str(args.budget), "--jobs", str(args.jobs)]
    train_main(argv + (["--models", *args.models] if args.models else []))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tokentree`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tokentree",
        description="TokenTree: teacher LLMs propose tokens, a search chooses, the primary learns.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    zoo = commands.add_parser("zoo", help="the built-in model zoo: accuracy report, retraining")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    report = zoo_commands.add_parser("report", help="evaluate every zoo model against its targets")
    report.add_argument("--models", nargs="*", default=None, help="zoo names (default: all)")
    report.add_argument("--dir", default=None, help="evaluate models in this folder instead of the package's")
    report.add_argument("--sample", type=int, default=200, help="held-out problems per task")
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from tokentree_env.errors import TokenTreeError

    try:
        return args.func(args)
    except (TokenTreeError, OSError) as exc:
        if args.debug:
            raise
        print(f"tokentree: error: {exc}", file=sys.stderr)
        print("hint: check the arguments above; run with --debug for the full traceback", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
