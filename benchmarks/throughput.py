"""``python -m benchmarks.throughput``: see :mod:`agents.bench.throughput` (the machinery lives in the library)."""

from agents.bench.throughput import main

if __name__ == "__main__":
    main()
