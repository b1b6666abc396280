"""The one search driver: any number of MCTS searches (one per episode; one alone for a single episode) advance
together, each at its own pace.

A search is a **step generator** (:func:`search_steps`): it runs until it needs model work, yields the transitions
whose work it needs (``[(state, action), ...]``), and goes on when :func:`drive` has done that work for every
waiting search at once, in **one** ``env.prefetch`` (one padded, batched forward per model, whatever search or
prompt a row comes from). Within a search, a simulation round is: **select** its leaves (one, or ``leaf_batch``
with a virtual loss on each selected path so the next selection diverges); **expand** them (``env.simulate``, after
their model work); **value** them (:func:`~agents.search.rollout.leaf_value_steps`: ``value_fn`` values, or
rollouts, each rollout step one yield); undo the virtual losses and **back up** the real values in selection order.

Searches never wait for one another: one whose rollouts ended early starts its next round (or its next move, in
:func:`~agents.search.lockstep.play_lockstep`) while others still roll out, so every batched forward serves every
search that has model work, instead of the few rollouts still running in a round. Each search draws its random
numbers (root noise, Gumbel draws) and makes its choices in the same order whether it runs alone or beside others,
so one-at-a-time play, lockstep play and leaf batching share one code path and the same episodes come out (up to
the last digits a padded batch can change in a log-prob; the tests check the tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.search.drive import Steps, drive
from agents.search.puct import backward, select
from agents.search.rollout import leaf_value_steps
from agents.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchTree
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
    kept from the previous move) where given; all together (:func:`drive`). Returns one tree per search."""
    reuse = list(reuse) if reuse is not None else [None] * len(searches)
    return drive([search_steps(mcts, env, root, kept) for mcts, root, kept in zip(searches, roots, reuse, strict=True)],
                 env)


def search_steps(mcts, env, root: tuple[object, dict], kept: SearchTree | None = None) -> Steps:
    """One search from ``root`` as a step generator (see the module docstring); returns its tree."""
    check_leaf_source(mcts.config, env)
    s = _start(mcts, root, kept)
    if kept is None and (mcts.config.root_value or mcts.config.gumbel):
        (value, _, _), = yield from leaf_value_steps([mcts], env, [root])
        s.tree.raw_values[ROOT_INDEX] = value  # the root's own estimate: the mixed value's v̂, or its first visit
        if mcts.config.root_value:
            backward(s.tree, ROOT_INDEX, value)
    mcts.draw_gumbel(s.tree.width)
    s.bounds = mcts.initial_bounds(s.tree)
    if hasattr(env, "path_tokens"):
        s.tree.root_path = env.path_tokens(root[0])
    while s.left > 0:
        picks = _pick(s)
        expand = [(node, action) for node, action in picks if action >= 0]
        if expand:
            yield [(s.tree.states[node], action) for node, action in expand]
        leaves, pending = {}, []
        for node, action in expand:
            state, obs, reward, terminated, truncated, info = env.simulate(s.tree.states[node], action)
            done = terminated or truncated
            child = s.tree.add_node(state, mcts.prior(obs), obs["action_mask"].astype(bool), parent=node,
                                    action=action, reward=reward, terminal=done)
            leaves[(node, action)] = child
            if hasattr(env, "path_tokens"):
                s.tree.tokens[child] = env.path_tokens(state)[-1]
            if done and hasattr(env, "task_score"):  # an answer that ends here: the verifier's word, where shown
                s.tree.verified[child] = _score(env.task_score(info.get("reward_terms", {})))
            if not done:
                pending.append((child, (state, obs)))
        values = yield from leaf_value_steps([mcts] * len(pending), env, [leaf for _, leaf in pending])
        value_of = {child: v for (child, _), v in zip(pending, values, strict=True)}
        for node, action in picks:
            if action < 0:  # a terminal node: its value is 0, rewards are on the edges
                backward(s.tree, node, 0.0)
                continue
            child = leaves[(node, action)]
            value, tokens, verified = value_of.get(child, (0.0, [], None))
            s.tree.raw_values[child], s.tree.rollouts[child] = value, tokens
            if verified is not None:
                s.tree.verified[child] = verified
            backward(s.tree, child, value)
            _track(s.bounds, s.tree, child)
            if mcts.config.stop_at_verified and s.tree.found == UNVISITED and s.tree.verified[child] >= 0.5:
                s.tree.found, s.left = child, 0  # a verified answer: the search stops here (coverage-first)
    return s.tree


def _score(value: float | None) -> float:
    return float("nan") if value is None else float(value)


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
