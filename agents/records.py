"""What an episode leaves behind: a :class:`StepRecord` per decision and an :class:`EpisodeResult`, built in one
place for every way of playing (one episode at a time, :func:`agents.play.play_many`'s batches, lockstep MCTS).

An agent's search statistics reach its records through one interface, whatever the agent: ``last_search()``
(visit distribution and Q values over the valid children), ``last_improved_policy()`` and
``last_continuations()`` (per valid child, the whole answer the search played after it). An agent without a
search leaves them empty. Everything else comes from the observation and ``info`` of the decision, and from the
env's declared door (:mod:`tokentree_env.env.door`) at the episode's end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from tokentree_env.env.observation import FEATURES

PRIOR = FEATURES.index("prior")
PANEL_LOGPROB = FEATURES.index("panel_logprob")


@dataclass
class StepRecord:
    """One decision: the slate, what the agent knew of it, and what it chose."""

    candidates: list[int]
    directions: list[str]
    proposed_by: list[list[str]]  # provenance: the models that proposed each candidate
    prior: list[float]
    chosen: int
    reward: float
    visits: list[float] = field(default_factory=list)  # visit distribution (search agents; else empty)
    q_values: list[float] = field(default_factory=list)  # mean return per child (search agents; else empty)
    improved: list[float] = field(default_factory=list)  # Gumbel MuZero's improved policy (else empty)
    continuations: list[list[int]] = field(default_factory=list)  # per child: the answer the search played after it
    panel_weights: list[float] = field(default_factory=list)  # the panel's weights over the teachers here (who writes)
    teacher_logprobs: list[float] = field(default_factory=list)  # each teacher's log-prob of the chosen child
    panel_logprobs: list[float] = field(default_factory=list)  # the panel's log-prob of each valid child
    continuation_scores: list[float | None] = field(default_factory=list)  # the verifier on each continuation (self-play)
    visit_total: int = 0  # the search's visits of the node's children (0: no search)


@dataclass
class EpisodeResult:
    """What one episode produced and cost."""

    agent: str
    prompt: str
    completion: str
    hard_reward: float
    episode_return: float
    reward_terms: dict[str, float]
    terminal_reason: str | None
    steps: int
    forwarded_tokens: int
    model_calls: int
    generated_tokens: int
    seconds: float
    tokens: list[int] = field(default_factory=list)  # the answer's primary token ids
    prompt_ids: list[int] = field(default_factory=list)  # the root's ids (contexts = prompt_ids + tokens[:i])
    records: list[StepRecord] = field(default_factory=list)
    weightage_update: dict[str, int] = field(default_factory=dict)  # factors the episode lowered / raised
    forwarded_by_model: dict[str, int] = field(default_factory=dict)  # inside the episode's window, per model
    verified_answers: list[list[int]] = field(default_factory=list)  # every distinct verified answer the search saw

    def to_json(self) -> dict[str, Any]:
        """Its fields as a dict, the records as dicts: what ``dataclasses.asdict`` gives, without the deep copy of every
        value it makes (a result is built to be turned into this dict and dropped; the copy cost about 5 % of
        lockstep self-play's CPU)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["records"] = [dict(vars(record)) for record in self.records]
        return out


def _features(obs) -> np.ndarray:
    return obs["features"].reshape(len(obs["action_mask"]), len(FEATURES))


def chosen_logprobs(info: dict, action: int) -> list[float]:
    """Each teacher's log-prob of the chosen child, from ``info["panel"]`` (empty where the env gives none)."""
    rows = info.get("panel", {}).get("teacher_logprobs", [])
    return list(rows[action]) if 0 <= action < len(rows) else []


def step_record(agent, obs, info: dict, action: int) -> StepRecord:
    """The record of one decision of ``agent`` (taken just now, before the env moves): the valid children, their
    provenance and prior, the choice, and the agent's search statistics of it (empty for an agent without)."""
    mask = obs["action_mask"] == 1
    search = agent.last_search()
    return StepRecord(
        candidates=obs["candidates"][mask].tolist(), directions=list(info.get("directions", [])),
        proposed_by=[p["proposed_by"] for p in info.get("provenance", [])], prior=_features(obs)[mask, PRIOR].tolist(),
        chosen=int(action), reward=0.0, visits=list(search[0]) if search else [],
        q_values=list(search[1]) if search else [], improved=list(agent.last_improved_policy()),
        continuations=[list(c) for c in agent.last_continuations()],
        panel_weights=list(info.get("panel", {}).get("weights", [])), teacher_logprobs=chosen_logprobs(info, action),
        panel_logprobs=_features(obs)[mask, PANEL_LOGPROB].tolist(),
        continuation_scores=list(agent.last_continuation_scores()),
        visit_total=int(search[2]) if search and len(search) > 2 else 0)


def episode_result(env, name: str, state, info: dict, records: list[StepRecord], total: float,
                   started: float, verified_answers: list[list[int]] | None = None) -> EpisodeResult:
    """The result of an episode that ended at ``state`` with the last ``info``, read through the env's door: its
    answer, verifier score, return, and its cost (``info["episode_cost"]``, the episode's own window)."""
    cost = info.get("episode_cost") or env.episode_costs()
    return EpisodeResult(
        agent=name, prompt=state.prompt, completion=info["text"], hard_reward=env.hard_reward(state),
        episode_return=float(total), reward_terms=info["reward_terms"], terminal_reason=info["terminal_reason"],
        steps=len(records), forwarded_tokens=cost["forwarded_tokens"], model_calls=cost["forward_calls"],
        generated_tokens=cost["generated_tokens"], seconds=time.perf_counter() - started,
        tokens=env.path_tokens(state), prompt_ids=env.prompt_ids(state.prompt), records=records,
        weightage_update=dict(info.get("weightage_update") or {}),
        forwarded_by_model=dict(info.get("episode_cost_by_model") or {}),
        verified_answers=[list(a) for a in verified_answers or []])


__all__ = ["EpisodeResult", "StepRecord", "chosen_logprobs", "episode_result", "step_record"]
