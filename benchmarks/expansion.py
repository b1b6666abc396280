"""``python -m benchmarks.expansion``: see :mod:`agents.bench.expansion` (the machinery lives in the library)."""

from agents.bench.expansion import main

if __name__ == "__main__":
    main()
