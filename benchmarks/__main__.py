"""``python -m benchmarks`` (from the repository root) or ``python -m tokentree_benchmarks``: the benchmark suite,
the same as ``tokentree bench``."""

from .suite import main

main()
