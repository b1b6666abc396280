"""``python -m benchmarks.panel``: see :mod:`agents.bench.panel` (the machinery lives in the library)."""

from agents.bench.panel import main

if __name__ == "__main__":
    main()
