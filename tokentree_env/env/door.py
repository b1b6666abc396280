"""The declared door between agents and the env: what agents, planners and the training loop may use.

An agent of TokenTree-v0 (a baseline, a search, a planner, the training loop, your own) reaches the env only
through the names below. Everything else on :class:`~tokentree_env.env.TokenTreeEnv` (its observer, expander,
tree store, reward config, detector, judge, ...) is how the env is built, and may change without notice.
``tests/test_door.py`` plays every agent through a proxy that exposes these names alone, and scans the ``agents``
package for any other attribute read on an env. ``docs/agent-api.md`` documents the door for users.

- **Gymnasium**: ``reset``, ``step``, ``action_masks``, ``close``, ``action_space``, ``observation_space``,
  ``unwrapped``.
- **Planning** (a restorable state, DESIGN §5): ``get_state``, ``set_state``, ``simulate``, ``rollout`` and
  ``rollout_steps`` (panel-greedy rollouts of many leaves at once, when ``fast_rollouts``; the second as a step
  generator), ``update_weightage``, ``hard_reward`` (a finished
  episode's verifier score).
- **Lockstep play** (many episodes, one batched forward per model per round): ``prepare``, ``prefetch``,
  ``begin``, ``advance``.
- **Compute**: ``costs`` (per model, since the env was made), ``episode_costs`` (the current episode's),
  ``model_parameters`` (the weights of compute parity, :mod:`agents.compute`).
- **Trees**: ``save_trees``, ``load_trees``, ``merge_trees``, ``export_trees``, ``has_tree``,
  ``weightage_updates``.
- **Read-only views** of a state or of the set-up: ``teacher_names``, ``task``, ``evaluation``,
  ``planner_verifier``, ``judge_verdicts``, ``max_new_tokens``, ``width``, ``state_info``, ``path_tokens``,
  ``prompt_ids``, ``state_ids``, ``reference_answers``, ``decode``, ``task_score``, ``panel_path_logprob``,
  ``panel_step_prior``, ``at_step_boundary``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

GYMNASIUM = ("reset", "step", "action_masks", "close", "action_space", "observation_space", "unwrapped")
PLANNING = ("get_state", "set_state", "simulate", "rollout", "rollout_steps", "update_weightage", "hard_reward")
LOCKSTEP = ("prepare", "prefetch", "begin", "advance")
COMPUTE = ("costs", "episode_costs", "model_parameters")
TREES = ("save_trees", "load_trees", "merge_trees", "export_trees", "has_tree", "weightage_updates",
         "claim_preparation")
VIEWS = ("teacher_names", "task", "evaluation", "planner_verifier", "judge_verdicts", "max_new_tokens", "width",
         "fast_rollouts",
         "state_info", "path_tokens", "prompt_ids", "state_ids", "reference_answers", "decode", "task_score",
         "panel_path_logprob", "panel_step_prior", "at_step_boundary", "verify")
AGENT_API: frozenset[str] = frozenset((*GYMNASIUM, *PLANNING, *LOCKSTEP, *COMPUTE, *TREES, *VIEWS))
"""Every name an agent may use on the env (the door)."""


@runtime_checkable
class AgentEnv(Protocol):
    """The env as agents see it (see the module docstring). ``state`` arguments are the
    :class:`~tokentree_env.env.EnvState` handles that ``get_state``, ``begin``, ``simulate`` and ``advance`` give."""

    # -- planning ------------------------------------------------------------------------------
    def get_state(self) -> Any: ...
    def set_state(self, state: Any) -> None: ...
    def simulate(self, state: Any, action: int) -> tuple: ...
    def rollout(self, states: Sequence[Any], max_steps: Sequence[int] | int) -> list: ...
    def rollout_steps(self, states: Sequence[Any], max_steps: Sequence[int] | int) -> Any: ...
    def update_weightage(self, path: Sequence[tuple[int, int]], episode_return: float,
                         prompt: str | None = None) -> bool: ...
    def hard_reward(self, state: Any) -> float: ...

    # -- lockstep play ---------------------------------------------------------------------------
    def prepare(self, prompts: Sequence[str]) -> int: ...
    def prefetch(self, states: Sequence[Any], actions: Sequence[int]) -> None: ...
    def begin(self, prompt: str, *, answer: str | None = None) -> tuple[Any, dict, dict]: ...
    def advance(self, state: Any, action: int) -> tuple: ...

    # -- compute ---------------------------------------------------------------------------------
    def costs(self) -> dict[str, dict[str, int]]: ...
    def episode_costs(self) -> dict[str, int]: ...
    def model_parameters(self) -> dict[str, int | None]: ...

    # -- read-only views ---------------------------------------------------------------------------
    @property
    def teacher_names(self) -> list[str]: ...
    @property
    def judge_verdicts(self) -> bool: ...
    @property
    def max_new_tokens(self) -> int: ...
    def state_info(self, state: Any) -> dict: ...
    def path_tokens(self, state: Any) -> list[int]: ...
    def prompt_ids(self, prompt: str) -> list[int]: ...
    def state_ids(self, state: Any) -> tuple[int, ...]: ...
    def reference_answers(self, prompt: str) -> list[list[int]]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def task_score(self, reward_terms: dict) -> float | None: ...
    def panel_path_logprob(self, teacher_logprobs: Sequence[Sequence[float]]) -> float: ...
    def panel_step_prior(self, weights: Sequence[float], own_steps: Sequence[Sequence[float]]) -> Any: ...
    def at_step_boundary(self, text: str) -> bool: ...


__all__ = ["AGENT_API", "COMPUTE", "GYMNASIUM", "LOCKSTEP", "PLANNING", "TREES", "VIEWS", "AgentEnv"]
