"""``python -m benchmarks.env_overhead``: see :mod:`agents.bench.env_overhead` (the machinery lives in the library)."""

from agents.bench.env_overhead import main

if __name__ == "__main__":
    main()
