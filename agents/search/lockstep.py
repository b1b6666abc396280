"""Lockstep MCTS: many searches (one per episode, each its own tree and random stream) advance together.

At every simulation each search selects its leaf, then **one** ``env.prefetch`` does the model work of every
leaf's expansion (one padded, batched forward per model, whatever prompts the leaves come from), and each search
expands its leaf from warm caches. Leaf rollouts advance in lockstep the same way, one batched step at a time.
Each search draws its random numbers and makes its choices in the same order as :meth:`MCTS.search` would
alone, so lockstep play chooses the same tokens as one-at-a-time play (up to the last digits a padded batch can
change in a log-prob; the tests check the tokens). :func:`play_lockstep` plays whole episodes this way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np

from agents.search.mcts import MCTS
from agents.search.puct import backward, select
from agents.search.rollout import leaf_values
from agents.search.tree import ROOT_INDEX, SearchTree


def search_many(searches: Sequence[MCTS], env, roots: Sequence[tuple[object, dict]]) -> list[SearchTree]:
    """Run ``searches[i]`` from ``roots[i]`` (state, observation), all in lockstep; one tree per search."""
    trees = []
    for search, (state, obs) in zip(searches, roots, strict=True):
        mask = obs["action_mask"].astype(bool)
        tree = SearchTree(search.config.num_simulations + 1, len(mask))
        tree.add_node(state, search._root_prior(search.prior(obs), mask), mask)
        trees.append(tree)
    needs_root = [i for i, s in enumerate(searches) if s.config.root_value or s.config.gumbel]
    for i, (value, _) in zip(needs_root, leaf_values([searches[i] for i in needs_root], env,
                                                      [roots[i] for i in needs_root]), strict=True):
        trees[i].raw_values[ROOT_INDEX] = value
        if searches[i].config.root_value:
            backward(trees[i], ROOT_INDEX, value)
    for search in searches:
        search.gumbel = (search.config.gumbel_scale * search.rng.gumbel(size=trees[0].width) if search.config.gumbel
                         else np.zeros(trees[0].width))
    bounds = [search._initial_bounds(tree) for search, tree in zip(searches, trees, strict=True)]
    for sim in range(max(s.config.num_simulations for s in searches)):
        active = [i for i, s in enumerate(searches) if sim < s.config.num_simulations]
        picks = {i: select(trees[i], searches[i]._chooser(bounds[i])) for i in active}
        for i, (node, action) in picks.items():
            if action < 0:  # a terminal node: value 0, rewards are on the edges
                backward(trees[i], node, 0.0)
        expand = [(i, node, action) for i, (node, action) in picks.items() if action >= 0]
        env.prefetch([trees[i].states[node] for i, node, _ in expand], [a for _, _, a in expand])
        leaves, pending = [], []
        for i, node, action in expand:
            state, obs, reward, terminated, truncated, _ = env.simulate(trees[i].states[node], action)
            done = terminated or truncated
            child = trees[i].add_node(state, searches[i].prior(obs), obs["action_mask"].astype(bool), parent=node,
                                      action=action, reward=reward, terminal=done)
            leaves.append((i, child))
            if not done:
                pending.append((i, child, (state, obs)))
        values = leaf_values([searches[i] for i, _, _ in pending], env, [leaf for _, _, leaf in pending])
        value_of = {(i, c): v for (i, c, _), v in zip(pending, values, strict=True)}
        for i, child in leaves:
            value, tokens = value_of.get((i, child), (0.0, []))
            trees[i].raw_values[child], trees[i].rollouts[child] = value, tokens
            backward(trees[i], child, value)
            searches[i]._track(bounds[i], trees[i], child)
    return trees


def play_lockstep(env, agents: Sequence, items: Sequence[tuple[int, str, Sequence[int]]], *, seed: int,
                  iteration: int) -> Iterator[dict]:
    """MCTS episodes of ``items`` (prompt index, prompt, repeats), ``len(agents)`` at a time in lockstep: slot ``k``
    plays its prompt's repeats one after another with ``agents[k]`` (an :class:`~agents.search.MCTSAgent`). Each
    episode's search is seeded by ``(seed, iteration, prompt index, repeat)`` as in one-at-a-time self-play.
    Yields one record per finished episode (the fields of ``EpisodeResult``, plus ``iteration``, ``prompt_index``,
    ``repeat``)."""
    from dataclasses import asdict

    from agents.base import PRIOR, EpisodeResult, StepRecord, features

    queue = [(index, prompt, repeat) for index, prompt, repeats in items for repeat in repeats]
    slots: list[dict | None] = [None] * len(agents)
    while queue or any(slots):
        for k, slot in enumerate(slots):
            free = next((j for j, item in enumerate(queue) if not _prompt_busy(slots, item[1])), None)
            if slot is None and free is not None:
                index, prompt, repeat = queue.pop(free)
                agents[k].reseed([seed, iteration, index, repeat])
                state, obs, info = env.begin(prompt)
                slots[k] = {"index": index, "repeat": repeat, "state": state, "obs": obs, "info": info, "records": [],
                            "total": 0.0, "started": time.perf_counter()}
        live = [k for k, s in enumerate(slots) if s is not None]
        if not live:
            continue
        trees = search_many([agents[k].mcts for k in live], env, [(slots[k]["state"], slots[k]["obs"]) for k in live])
        actions = []
        for k, tree in zip(live, trees, strict=True):
            slot, mcts, obs = slots[k], agents[k].mcts, slots[k]["obs"]
            mask = obs["action_mask"] == 1
            action = mcts.choose(tree)
            slot["records"].append(StepRecord(
                candidates=obs["candidates"][mask].tolist(), directions=list(slot["info"]["directions"]),
                proposed_by=[p["proposed_by"] for p in slot["info"]["provenance"]],
                prior=features(obs)[mask, PRIOR].tolist(), chosen=action, reward=0.0,
                visits=tree.visit_distribution()[mask].tolist(), q_values=tree.children_values[ROOT_INDEX][mask].tolist(),
                improved=mcts.policy_target(tree)[mask].tolist() if mcts.config.gumbel else [],
                continuations=[tree.continuation(ROOT_INDEX, int(a), int(obs["candidates"][a]))
                               for a in np.flatnonzero(mask)]))
            actions.append(action)
        env.prefetch([slots[k]["state"] for k in live], actions)
        for k, action in zip(live, actions, strict=True):
            slot = slots[k]
            slot["state"], slot["obs"], reward, terminated, truncated, slot["info"] = env.advance(slot["state"], action)
            slot["records"][-1].reward = float(reward)
            slot["total"] += reward
            if terminated or truncated:
                yield _record(env, slot, agents[k].name, EpisodeResult, asdict) | {
                    "iteration": iteration, "prompt_index": slot["index"], "repeat": slot["repeat"]}
                slots[k] = None


def _prompt_busy(slots, prompt: str) -> bool:
    """A prompt's repeats run one after another (the weightage rule compares an episode with the previous)."""
    return any(s is not None and s["state"].prompt == prompt for s in slots)


def _record(env, slot: dict, name: str, result_cls, asdict) -> dict:
    state, info = slot["state"], slot["info"]
    tree = env.trees[state.prompt]
    cost = info["episode_cost"]
    return asdict(result_cls(
        agent=name, prompt=state.prompt, completion=info["text"], hard_reward=env.hard_reward(state),
        episode_return=float(slot["total"]), reward_terms=info["reward_terms"], terminal_reason=info["terminal_reason"],
        steps=len(slot["records"]), forwarded_tokens=cost["forwarded_tokens"], model_calls=cost["forward_calls"],
        generated_tokens=cost["generated_tokens"], seconds=time.perf_counter() - slot["started"],
        tokens=list(tree.path_tokens(state.node)), prompt_ids=list(tree.nodes[0].ids), records=slot["records"],
        weightage_update=dict(info.get("weightage_update") or {}),
        forwarded_by_model=dict(info.get("episode_cost_by_model") or {})))


__all__ = ["leaf_values", "play_lockstep", "search_many"]
