"""TokenTree's benchmark harness: speed, search curves, learning comparisons, real models.

The folder ``benchmarks/`` of the repository installs with the project as the package ``tokentree_benchmarks`` (a
name no other distribution uses; a top-level ``benchmarks`` would clash with any project that ships one). From the
repository root the same files also run as ``python -m benchmarks.NAME``; everywhere else use
``python -m tokentree_benchmarks.NAME``, or ``tokentree bench`` for the suite. The modules import each other
relatively, so either name loads one consistent copy.

The library (``tokentree_env``, ``agents``) never imports this package; the ``tokentree bench`` command is the one
exception, and it imports the suite only when it runs (``pyproject.toml``'s import contracts hold both rules).
"""
