"""Leaf values for many leaves at once: ``value_fn`` values, or greedy rollouts that advance in lockstep, one
batched expansion (``env.prefetch``, when the env has it) per rollout step. The one leaf evaluation of the search
driver (:mod:`agents.search.driver`); it knows searches only through their ``config`` and ``value_fn``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.base import PANEL_LOGPROB, PRIOR, features


@dataclass
class _Rollout:
    search: object  # an MCTS: its ``config`` and ``value_fn`` are read
    state: object
    obs: dict
    total: float = 0.0
    tokens: list[int] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    done: bool = False


def leaf_values(searches: Sequence, env, leaves: Sequence[tuple[object, dict]]
                ) -> list[tuple[float, list[int], float | None]]:
    """``MCTS.leaf_value`` of many leaves at once: each a ``value_fn`` value or a rollout, the rollouts advancing
    in lockstep (one batched expansion per step). Returns ``(value, rollout tokens, verified)`` per leaf."""
    from agents.search.drive import drive

    return drive([leaf_value_steps(searches, env, leaves)], env)[0]


def leaf_value_steps(searches: Sequence, env, leaves: Sequence[tuple[object, dict]]):
    """:func:`leaf_values` as a step generator (:mod:`agents.search.driver`): each rollout step yields the
    transitions whose model work it needs; returns ``(value, rollout tokens, verified)`` per leaf (``verified``: the
    verifier's score of the rollout's finished answer where planners see it, else None)."""
    out: list[tuple[float, list[int], float | None] | None] = [None] * len(leaves)
    rollouts = {}
    for i, (search, (state, obs)) in enumerate(zip(searches, leaves, strict=True)):
        if search.value_fn is not None:
            out[i] = (float(search.value_fn(env, state, obs)), [], None)
        else:
            rollouts[i] = _Rollout(search, state, obs)
    for policy in ("panel", "writer"):  # the env's own rollouts: no observations (the same values as step by step)
        fast = [i for i, r in rollouts.items() if _policy(env, r.search.config) == policy]
        if not fast:
            continue
        done = yield from env.rollout_steps([rollouts[i].state for i in fast],
                                            [rollouts[i].search.config.rollout_depth for i in fast], policy)
        for i, result in zip(fast, done, strict=True):
            out[i] = (_judge_leaf(rollouts[i], result.verdict, result.reason is not None, len(result.tokens))
                      if rollouts[i].search.config.leaf_value == "judge" else result.value, list(result.tokens),
                      result.verified)
            del rollouts[i]
    depth = max((r.search.config.rollout_depth for r in rollouts.values()), default=0)
    for step in range(depth):
        live = [r for r in rollouts.values() if not r.done and step < r.search.config.rollout_depth]
        if not live:
            break
        actions = [_greedy(r.obs, r.search.config.rollout) for r in live]
        yield [(r.state, action) for r, action in zip(live, actions, strict=True)]
        for r, action in zip(live, actions, strict=True):
            r.tokens.append(int(r.obs["candidates"][action]))
            r.state, r.obs, reward, terminated, truncated, r.info = env.simulate(r.state, action)
            r.total += reward
            if terminated or truncated:
                r.done = True
                if r.search.config.update_weightage:
                    env.update_weightage(r.state.path, r.state.episode_return, r.state.prompt)
    for i, r in rollouts.items():
        verified = env.task_score(r.info.get("reward_terms", {})) if r.done and hasattr(env, "task_score") else None
        out[i] = (_judge_value(r) if r.search.config.leaf_value == "judge" else r.total, r.tokens, verified)
    return out


def _greedy(obs, rollout: str) -> int:
    """A rollout's next action: the teacher panel's top child (``"teacher"``; over step options, the writer's own
    greedy option) or the prior's (``"prior"``)."""
    if "option_prior" in obs:  # step options: their own columns
        values = obs["writer"] if rollout == "teacher" else obs["option_prior"]
    else:
        values = features(obs)[:, PANEL_LOGPROB if rollout == "teacher" else PRIOR]
    return int(np.argmax(np.where(obs["action_mask"] == 1, values, -np.inf)))


def _policy(env, config) -> str | None:
    """Which of the env's own rollouts serves a search: ``"writer"`` (its rollout rule), ``"panel"`` for panel-greedy
    rollouts that update no weightage on an env that offers them (``fast_rollouts``), else None (step by step)."""
    if config.rollout == "writer":
        if not hasattr(env, "rollout_steps"):
            from tokentree_env.errors import ConfigError

            raise ConfigError("rollout='writer' needs the token env's writer rollouts; step options have none")
        return "writer"
    if config.rollout == "teacher" and not config.update_weightage and bool(getattr(env, "fast_rollouts", False)):
        return "panel"
    return None


def _judge_value(r: _Rollout) -> float:
    return _judge_leaf(r, r.info.get("judge_verdict"), r.done, len(r.tokens))


def _judge_leaf(r, verdict: float | None, done: bool, length: int) -> float:
    """The judge's verdict on the rollout's answer as a value in [-1, 1], ``2 P(yes) - 1``, read from the raw verdict
    the env reports at the end (``info["judge_verdict"]``), whatever the judge's reward weight."""
    if verdict is None:
        from tokentree_env.errors import ConfigError

        raise ConfigError(f"leaf_value='judge': the rollout ended without the judge's verdict (done={done}, "
                          f"{length} tokens); the env needs judge=... and judge_verdict=True, and rollouts must "
                          "reach the answer's end (rollout_depth >= max_new_tokens)")
    return 2.0 * float(verdict) - 1.0
