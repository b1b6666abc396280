"""Step generators driven together: the batching of every search, planner and rollout (:mod:`.driver`).

A step generator runs until it needs model work, yields the ``(state, action)`` transitions whose work it needs, and
goes on once that work is done; :func:`drive` runs many of them, doing every waiting generator's work in one
``env.prefetch`` (one padded, batched forward per model) per round.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

Steps = Generator[list, None, object]
"""A step generator: yields the ``(state, action)`` transitions whose model work it needs next, returns its result."""


def drive(generators: Sequence[Steps], env) -> list:
    """Run step generators together: each round, the requests of every waiting generator in one ``env.prefetch``
    (when the env has it), then each goes on; a generator that yields no request goes on at once. Returns each
    generator's result."""
    prefetch = getattr(env, "prefetch", None)
    results: list = [None] * len(generators)
    waiting: dict[int, list] = {}

    def advance(i: int, first: bool) -> None:
        try:
            request = next(generators[i]) if first else generators[i].send(None)
            while not request:
                request = generators[i].send(None)
            waiting[i] = request
        except StopIteration as done:
            results[i] = done.value

    for i in range(len(generators)):
        advance(i, True)
    while waiting:
        requests = [r for i in sorted(waiting) for r in waiting[i]]
        if prefetch is not None:
            prefetch([s for s, _ in requests], [a for _, a in requests])
        for i in sorted(waiting):
            del waiting[i]
            advance(i, False)
    return results


__all__ = ["Steps", "drive"]
