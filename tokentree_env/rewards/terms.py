"""Reward terms (DESIGN §4), each reported by name in ``info["reward_terms"]``.

Per step:
- ``panel_logprob`` = ``alpha · log panel(child | context)``, the teacher panel's log-prob of the chosen child
  (:mod:`tokentree_env.scoring.panel`): summed over an episode, this is ``alpha`` times the panel's
  log-likelihood of the path (for the mixture with no fixed share, the Bayesian mixture's);
- ``length_cost`` = ``-length_cost`` per generated token.

At the end of an episode:
- ``task`` = ``task_weight ·`` the verifier's hard reward in [0, 1];
- ``judge`` = ``judge_weight · (2·P(yes) - 1)``: the judge's verdict as a small shift (LMGT-style);
- ``excess_length`` = ``-excess_length_weight · max(0, L - L_min)``, ``L_min`` the shortest teacher
  reference answer in primary tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from tokentree_env.errors import ConfigError

RewardFn = Callable[[dict], dict[str, float]]
"""A user reward: receives the episode summary (prompt, completion, answer, length, ...) at the end
and returns extra named terms (added to ``reward_terms`` and to the reward)."""


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms."""

    alpha: float = 0.05
    """Weight of the teacher panel's log-prob of each chosen child."""
    length_cost: float = 0.01
    """Cost of each generated token."""
    task_weight: float = 1.0
    """Weight of the task verifier's hard reward (in [0, 1])."""
    judge_weight: float = 0.1
    """Weight of the judge's verdict shift (in [-1, 1]); small, as in LMGT."""
    excess_length_weight: float = 0.02
    """Penalty per token beyond the shortest teacher reference answer."""
    invalid_action_penalty: float = 0.1
    """Penalty for choosing a masked (invalid) child, when such actions are remapped."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"RewardConfig.{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def coerce(cls, value: RewardConfig | dict | None) -> RewardConfig:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(asdict(cls()))
            if unknown:
                raise ConfigError(f"unknown reward weights {sorted(unknown)}; known: {sorted(asdict(cls()))}")
            return cls(**value)
        raise ConfigError(f"reward weights must be a RewardConfig or a dict, got {type(value).__name__}")


def step_terms(panel_logprob: float, config: RewardConfig) -> dict[str, float]:
    """Per-step terms from the panel's log-prob of the chosen child."""
    return {"panel_logprob": config.alpha * float(panel_logprob), "length_cost": -config.length_cost}


def final_terms(*, hard_reward: float | None, judge_p_yes: float | None, length: int, min_length: int | None,
                config: RewardConfig, reward_fn: RewardFn | None = None, summary: dict | None = None) -> dict[str, float]:
    """End-of-episode terms; ``None`` inputs (verifier withheld, judge off) are left out. A user
    ``reward_fn`` adds its terms (``user:NAME``) from the episode ``summary``."""
    terms = {}
    if hard_reward is not None:
        terms["task"] = config.task_weight * float(hard_reward)
    if judge_p_yes is not None:
        terms["judge"] = config.judge_weight * (2.0 * float(judge_p_yes) - 1.0)
    if min_length is not None:
        terms["excess_length"] = -config.excess_length_weight * max(0, length - min_length)
    if reward_fn is not None:
        terms.update({f"user:{k}": float(v) for k, v in reward_fn(summary or {}).items()})
    return terms
