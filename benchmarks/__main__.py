"""``python -m benchmarks``: the benchmark suite (same as ``tokentree bench``)."""

from benchmarks.suite import main

main()
