"""The benchmark machinery behind ``tokentree bench`` and ``python -m benchmarks.*`` (the scripts in ``benchmarks/``
are thin entry points over these modules)."""
