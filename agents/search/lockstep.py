"""Lockstep MCTS episodes: many episodes (one per slot, each its own search, tree and random stream) advance
together, each at its own pace, through the one search driver (:mod:`agents.search.driver`).

Each episode is a step generator: it searches from its current state (:func:`~agents.search.driver.search_steps`),
chooses, and plays its move, yielding whenever it needs model work. Every round, the model work of every waiting
episode (expansions, rollout steps, moves) runs in one ``env.prefetch``: one padded, batched forward per model. An
episode whose search finished early plays its move and starts its next search while others still roll out, and a
finished slot takes the next prompt at once. Each search draws its random numbers and makes its choices in the same
order as it would alone, so lockstep play chooses the same tokens as one-at-a-time play (up to the last digits a
padded batch can change in a log-prob; the tests check the tokens).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from agents.records import episode_result, step_record
from agents.search.driver import search_steps

GC_THRESHOLDS = (100_000, 50, 1000)
"""The garbage collector's thresholds while lockstep play runs (CPython's default: 700, 10, 10). A search makes
millions of long-lived, acyclic objects (nodes, states, slates) that the default thresholds scan again and again,
about a tenth of self-play's CPU on the zoo stack, to free almost nothing (some ten thousand objects per 64 episodes);
reference counting frees the rest as ever. Restored when play ends or stops (:func:`relaxed_gc`)."""


_relaxed = {"depth": 0, "before": None}
_relaxed_lock = threading.Lock()


@contextmanager
def relaxed_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> Iterator[None]:
    """Inside the block the garbage collector runs with ``thresholds``; the thresholds from before the outermost of
    overlapping blocks (interleaved plays, threads) are restored when the last of them ends."""
    with _relaxed_lock:
        if _relaxed["depth"] == 0:
            _relaxed["before"] = gc.get_threshold()
            gc.set_threshold(*thresholds)
        _relaxed["depth"] += 1
    try:
        yield
    finally:
        with _relaxed_lock:
            _relaxed["depth"] -= 1
            if _relaxed["depth"] == 0:
                gc.set_threshold(*_relaxed["before"])


def play_lockstep(env, agents: Sequence, items: Sequence[tuple[int, str, Sequence[int]]], *, seed: int,
                  iteration: int) -> Iterator[dict]:
    """MCTS episodes of ``items`` (prompt index, prompt, repeats), ``len(agents)`` at a time in lockstep: slot ``k``
    plays its prompt's repeats one after another with ``agents[k]`` (an :class:`~agents.search.MCTSAgent`). Each
    episode's search is seeded by ``(seed, iteration, prompt index, repeat)`` as in one-at-a-time self-play.
    Yields one record per finished episode (the fields of ``EpisodeResult``, plus ``iteration``, ``prompt_index``,
    ``repeat``), as they finish. While it plays, the garbage collector runs with :data:`GC_THRESHOLDS`."""
    with relaxed_gc():
        yield from _play(env, agents, items, seed=seed, iteration=iteration)


def _play(env, agents: Sequence, items: Sequence[tuple[int, str, Sequence[int]]], *, seed: int,
          iteration: int) -> Iterator[dict]:
    queue = [(index, prompt, repeat) for index, prompt, repeats in items for repeat in repeats]
    slots: list[tuple | None] = [None] * len(agents)  # (generator, its request, prompt)
    finished: list[dict] = []

    def start(k: int) -> None:
        """Give slot ``k`` the next queued episode whose prompt is not being played (repeats run in turn)."""
        busy = {slot[2] for slot in slots if slot is not None}
        free = next((j for j, item in enumerate(queue) if item[1] not in busy), None)
        if free is None:
            slots[k] = None
            return
        index, prompt, repeat = queue.pop(free)
        steps = _episode(env, agents[k], index, prompt, repeat, seed, iteration)
        slots[k] = (steps, None, prompt)
        advance(k, first=True)

    def advance(k: int, first: bool = False) -> None:
        steps, _, prompt = slots[k]
        try:
            request = next(steps) if first else steps.send(None)
            while not request:
                request = steps.send(None)
            slots[k] = (steps, request, prompt)
        except StopIteration as done:
            finished.append(done.value)
            slots[k] = None
            start(k)

    for k in range(len(agents)):
        if slots[k] is None:
            start(k)
    while any(slots) or finished:
        yield from finished
        finished.clear()
        waiting = [k for k, slot in enumerate(slots) if slot is not None]
        if not waiting:
            continue
        requests = [r for k in waiting for r in slots[k][1]]
        env.prefetch([s for s, _ in requests], [a for _, a in requests])
        for k in waiting:
            if slots[k] is not None:
                advance(k)
        for k in range(len(agents)):  # a slot left empty while its prompt's earlier repeat was still playing
            if slots[k] is None and queue:
                start(k)


def _episode(env, agent, index: int, prompt: str, repeat: int, seed: int, iteration: int):
    """One MCTS episode as a step generator: search, choose and play each move; returns its record."""
    agent.reseed([seed, iteration, index, repeat])
    state, obs, info = env.begin(prompt)
    agent.begin(env, obs, info)
    records, total, started = [], 0.0, time.perf_counter()
    while True:
        action = agent.planned(obs)  # a verified answer a stopped search found plays out without searching
        if action is None:
            tree = yield from search_steps(agent.mcts, env, (state, obs), agent.kept_for(state))
            action = agent.decide(tree, obs)
        records.append(step_record(agent, obs, info, action))
        yield [(state, action)]
        state, obs, reward, terminated, truncated, info = env.advance(state, action)
        records[-1].reward = float(reward)
        total += reward
        if terminated or truncated:
            result = episode_result(env, agent.name, state, info, records, total, started, agent.verified_answers())
            return result.to_json() | {"iteration": iteration, "prompt_index": index, "repeat": repeat}


__all__ = ["play_lockstep"]
