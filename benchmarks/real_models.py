"""``python -m benchmarks.real_models``: see :mod:`agents.bench.real_models` (the machinery lives in the library)."""

from agents.bench.real_models import main

if __name__ == "__main__":
    main()
