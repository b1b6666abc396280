"""The one search driver: any number of MCTS searches (one per episode; one alone for a single episode) advance
together, simulation round by simulation round.

A round: each live search **selects** its leaves (one, or ``leaf_batch`` with a virtual loss on each selected
path so the next selection diverges); **one** ``env.prefetch`` does the model work of every selected leaf's
expansion, whatever search or prompt it comes from (one padded, batched forward per model); each search
**expands** its leaves from warm caches (``env.simulate``); the new leaves are **valued** together
(:func:`~agents.search.rollout.leaf_values`: ``value_fn`` values, or rollouts advancing in lockstep); each search
undoes its virtual losses and **backs up** the real values in selection order.

Each search draws its random numbers (root noise, Gumbel draws) and makes its choices in the same order whether it
runs alone or beside others, so one-at-a-time play, lockstep play and leaf batching share one code path and the
same episodes come out (up to the last digits a padded batch can change in a log-prob; the tests check the tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.search.puct import backward, select
from agents.search.rollout import leaf_values
from agents.search.tree import NO_PARENT, ROOT_INDEX, SearchTree
from tokentree_env.errors import ConfigError


@dataclass
class _Search:
    """One search in progress: the planner (an :class:`~agents.search.mcts.MCTS`), its tree, its search-wide
    value bounds (the min-max Q transform's) and the simulations it has left."""

    mcts: object
    tree: SearchTree
    left: int
    bounds: list[float] = field(default_factory=lambda: [np.inf, -np.inf])


def run_searches(searches: Sequence, env, roots: Sequence[tuple[object, dict]],
                 reuse: Sequence[SearchTree | None] | None = None) -> list[SearchTree]:
    """Run ``searches[i]`` (an ``MCTS``) from ``roots[i]`` (state, observation), on top of ``reuse[i]`` (a subtree
    kept from the previous move) where given; all in lockstep. Returns one tree per search."""
    reuse = list(reuse) if reuse is not None else [None] * len(searches)
    for mcts in searches:
        check_leaf_source(mcts.config, env)
    live = [_start(mcts, root, kept) for mcts, root, kept in zip(searches, roots, reuse, strict=True)]
    needs = [(s, root) for s, root, kept in zip(live, roots, reuse, strict=True)
             if kept is None and (s.mcts.config.root_value or s.mcts.config.gumbel)]
    for (s, _), (value, _) in zip(needs, leaf_values([s.mcts for s, _ in needs], env, [r for _, r in needs]),
                                  strict=True):
        s.tree.raw_values[ROOT_INDEX] = value  # the root's own estimate: the mixed value's v̂, or its first visit
        if s.mcts.config.root_value:
            backward(s.tree, ROOT_INDEX, value)
    for s in live:
        s.mcts.draw_gumbel(s.tree.width)
        s.bounds = s.mcts.initial_bounds(s.tree)
    prefetch = getattr(env, "prefetch", None)
    while any(s.left > 0 for s in live):
        rounds = [(s, _pick(s)) for s in live if s.left > 0]
        expand = [(s, node, action) for s, picks in rounds for node, action in picks if action >= 0]
        if prefetch is not None and expand:
            prefetch([s.tree.states[node] for s, node, _ in expand], [a for _, _, a in expand])
        leaves, pending = {}, []
        for s, node, action in expand:
            state, obs, reward, terminated, truncated, _ = env.simulate(s.tree.states[node], action)
            done = terminated or truncated
            child = s.tree.add_node(state, s.mcts.prior(obs), obs["action_mask"].astype(bool), parent=node,
                                    action=action, reward=reward, terminal=done)
            leaves[(id(s), node, action)] = child
            if not done:
                pending.append((s, child, (state, obs)))
        values = leaf_values([s.mcts for s, _, _ in pending], env, [leaf for _, _, leaf in pending])
        value_of = {(id(s), child): v for (s, child, _), v in zip(pending, values, strict=True)}
        for s, picks in rounds:
            for node, action in picks:
                if action < 0:  # a terminal node: its value is 0, rewards are on the edges
                    backward(s.tree, node, 0.0)
                    continue
                child = leaves[(id(s), node, action)]
                value, tokens = value_of.get((id(s), child), (0.0, []))
                s.tree.raw_values[child], s.tree.rollouts[child] = value, tokens
                backward(s.tree, child, value)
                _track(s.bounds, s.tree, child)
    return [s.tree for s in live]


def check_leaf_source(config, env) -> None:
    """Refuse a judge leaf the env cannot serve, naming why: no judge, or rollouts that stop before the answer ends
    (the judge gives its verdict on finished answers only)."""
    if config.leaf_value != "judge":
        return
    if not getattr(env, "judge_verdicts", False):
        raise ConfigError("leaf_value='judge' needs the env's judge on: create the env with judge=... and "
                          "judge_verdict=True, or use leaf_value='rollout'")
    # rollout_depth counts the env's own steps: tokens, or step options over StepOptionsEnv; a step is at least one
    # token, so an answer takes at most max_new_tokens of either
    longest = getattr(env, "max_new_tokens", None)
    if longest is not None and config.rollout_depth < longest:
        raise ConfigError(f"leaf_value='judge' needs rollouts that reach the end of the answer, but rollout_depth="
                          f"{config.rollout_depth} < the {longest} rollout steps an answer can take here: raise "
                          f"rollout_depth to at least {longest}")


def _start(mcts, root: tuple[object, dict], kept: SearchTree | None) -> _Search:
    """A search's tree: a new one with the root's prior (Dirichlet noise in self-play), or a kept subtree with the
    root's prior refreshed."""
    state, obs = root
    mask = obs["action_mask"].astype(bool)
    prior = mcts.root_prior(mcts.prior(obs), mask)
    if kept is not None:
        kept.children_prior[ROOT_INDEX] = prior
        tree = kept
    else:
        tree = SearchTree(mcts.config.num_simulations + 1, len(mask))
        tree.add_node(state, prior, mask)
    return _Search(mcts, tree, mcts.config.num_simulations)


def _pick(s: _Search) -> list[tuple[int, int]]:
    """This round's selections of one search: ``leaf_batch`` at most (and no more than it has left), each path
    holding a virtual loss until the round's selections are made; a selection that repeats a pending one ends the
    round. Terminal walks (action ``-1``) count as simulations too."""
    cfg, chooser = s.mcts.config, s.mcts.chooser(s.bounds)
    picks, saved = [], []
    while len(picks) < min(cfg.leaf_batch, s.left):
        node, action = select(s.tree, chooser)
        if (node, action) in picks:
            break  # every path now leads to a pending leaf: expand what we have
        picks.append((node, action))
        if cfg.leaf_batch > 1:
            saved.append(apply_virtual_loss(s.tree, node, action, cfg.virtual_loss))
    for snapshot in reversed(saved):
        undo_virtual_loss(s.tree, snapshot)
    s.left -= len(picks)
    return picks


def _track(bounds: list[float], tree: SearchTree, leaf: int) -> None:
    """Widen the search-wide value bounds by the Q values on the leaf's path."""
    node = leaf
    while tree.parents[node] != NO_PARENT:
        parent = int(tree.parents[node])
        v = tree.children_values[parent, int(tree.action_from_parent[node])]
        bounds[0], bounds[1] = min(bounds[0], v), max(bounds[1], v)
        node = parent


def apply_virtual_loss(tree: SearchTree, node: int, action: int, loss: float) -> tuple[list, list]:
    """Count a pending leaf below ``(node, action)`` as one visit of value ``-loss`` on every edge up to the root;
    return what it changed, for :func:`undo_virtual_loss`."""
    edges = [(node, action)] if action >= 0 else []
    path, n = [node], node
    while tree.parents[n] != NO_PARENT:
        edges.append((int(tree.parents[n]), int(tree.action_from_parent[n])))
        n = int(tree.parents[n])
        path.append(n)
    saved = ([(p, a, tree.children_visits[p, a], tree.children_values[p, a]) for p, a in edges],
             [(x, tree.node_visits[x]) for x in path])
    for p, a in edges:
        v = tree.children_visits[p, a]
        tree.children_values[p, a] = (tree.children_values[p, a] * v - loss) / (v + 1)
        tree.children_visits[p, a] = v + 1
    for x in path:
        tree.node_visits[x] += 1
    return saved


def undo_virtual_loss(tree: SearchTree, saved: tuple[list, list]) -> None:
    """Restore what :func:`apply_virtual_loss` changed (undo in the reverse order of applying)."""
    edges, path = saved
    for p, a, visits, value in edges:
        tree.children_visits[p, a], tree.children_values[p, a] = visits, value
    for x, visits in path:
        tree.node_visits[x] = visits


__all__ = ["apply_virtual_loss", "check_leaf_source", "run_searches", "undo_virtual_loss"]
