"""``python -m benchmarks``: the benchmark suite (same as ``tokentree bench``; the machinery is
:mod:`agents.bench.suite`)."""

from agents.bench.suite import main

main()
