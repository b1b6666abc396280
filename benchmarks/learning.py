"""``python -m benchmarks.learning``: see :mod:`agents.bench.learning` (the machinery lives in the library)."""

from agents.bench.learning_suite import main

if __name__ == "__main__":
    main()
