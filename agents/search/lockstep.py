"""Lockstep MCTS episodes: many episodes (one per slot, each its own search, tree and random stream) advance
together through the one search driver (:func:`agents.search.driver.run_searches`): every simulation round's
expansions of every episode's search run in one ``env.prefetch`` (one padded, batched forward per model), and
the leaf rollouts advance in lockstep. Each search draws its random numbers and makes its choices in the same
order as it would alone, so lockstep play chooses the same tokens as one-at-a-time play (up to the last digits a
padded batch can change in a log-prob; the tests check the tokens).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from agents.search.driver import run_searches


def play_lockstep(env, agents: Sequence, items: Sequence[tuple[int, str, Sequence[int]]], *, seed: int,
                  iteration: int) -> Iterator[dict]:
    """MCTS episodes of ``items`` (prompt index, prompt, repeats), ``len(agents)`` at a time in lockstep: slot ``k``
    plays its prompt's repeats one after another with ``agents[k]`` (an :class:`~agents.search.MCTSAgent`). Each
    episode's search is seeded by ``(seed, iteration, prompt index, repeat)`` as in one-at-a-time self-play.
    Yields one record per finished episode (the fields of ``EpisodeResult``, plus ``iteration``, ``prompt_index``,
    ``repeat``)."""
    from dataclasses import asdict

    from agents.records import episode_result, step_record

    queue = [(index, prompt, repeat) for index, prompt, repeats in items for repeat in repeats]
    slots: list[dict | None] = [None] * len(agents)
    while queue or any(slots):
        for k, slot in enumerate(slots):
            free = next((j for j, item in enumerate(queue) if not _prompt_busy(slots, item[1])), None)
            if slot is None and free is not None:
                index, prompt, repeat = queue.pop(free)
                agents[k].reseed([seed, iteration, index, repeat])
                state, obs, info = env.begin(prompt)
                agents[k].begin(env, obs, info)
                slots[k] = {"index": index, "repeat": repeat, "state": state, "obs": obs, "info": info, "records": [],
                            "total": 0.0, "started": time.perf_counter()}
        live = [k for k, s in enumerate(slots) if s is not None]
        if not live:
            continue
        trees = run_searches([agents[k].mcts for k in live], env, [(slots[k]["state"], slots[k]["obs"]) for k in live],
                             [agents[k].kept_for(slots[k]["state"]) for k in live])
        actions = []
        for k, tree in zip(live, trees, strict=True):
            slot = slots[k]
            action = agents[k].decide(tree, slot["obs"])
            slot["records"].append(step_record(agents[k], slot["obs"], slot["info"], action))
            actions.append(action)
        env.prefetch([slots[k]["state"] for k in live], actions)
        for k, action in zip(live, actions, strict=True):
            slot = slots[k]
            slot["state"], slot["obs"], reward, terminated, truncated, slot["info"] = env.advance(slot["state"], action)
            slot["records"][-1].reward = float(reward)
            slot["total"] += reward
            if terminated or truncated:
                result = episode_result(env, agents[k].name, slot["state"], slot["info"], slot["records"],
                                        slot["total"], slot["started"])
                yield asdict(result) | {"iteration": iteration, "prompt_index": slot["index"],
                                        "repeat": slot["repeat"]}
                slots[k] = None


def _prompt_busy(slots, prompt: str) -> bool:
    """A prompt's repeats run one after another (the weightage rule compares an episode with the previous)."""
    return any(s is not None and s["state"].prompt == prompt for s in slots)


__all__ = ["play_lockstep"]
