"""``python -m benchmarks.learning``: see :mod:`agents.bench.learning` (the machinery lives in the library)."""

import sys

from agents.bench.learning_suite import main

if __name__ == "__main__":
    sys.exit(0 if main().get("passed", True) else 1)  # the learnability check (--check) exits 1 when it fails
