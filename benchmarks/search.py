"""``python -m benchmarks.search``: see :mod:`agents.bench.search` (the machinery lives in the library)."""

from agents.bench.search import main

if __name__ == "__main__":
    main()
