"""Agents for TokenTree-v0: MCTS with the weightage-adjusted prior, baselines, the episode store.

    from agents import MCTSAgent, MCTSConfig, evaluate
    summary, episodes = evaluate(MCTSAgent(MCTSConfig(num_simulations=8)), prompts)

Names are imported on first use (PEP 562), so the ``tokentree`` command starts quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "Agent": "agents.base",
    "EpisodeResult": "agents.base",
    "PlanningAgent": "agents.base",
    "StepRecord": "agents.base",
    "BeamSearch": "agents.baselines",
    "BestOfN": "agents.baselines",
    "BestReference": "agents.baselines",
    "EnsembleGreedy": "agents.baselines",
    "GreedyPrimary": "agents.baselines",
    "GreedyPrior": "agents.baselines",
    "MajorityVote": "agents.baselines",
    "MaskablePPOAgent": "agents.baselines",
    "RandomAgent": "agents.baselines",
    "Summary": "agents.evaluation",
    "evaluate": "agents.evaluation",
    "make_agent": "agents.evaluation",
    "MCTS": "agents.search",
    "MCTSAgent": "agents.search",
    "MCTSConfig": "agents.search",
    "SearchTree": "agents.search",
    "EpisodeStore": "agents.store",
    "EpisodeStoreError": "agents.store",
}
__all__ = [
    "MCTS",
    "Agent",
    "BeamSearch",
    "BestOfN",
    "BestReference",
    "EnsembleGreedy",
    "EpisodeResult",
    "EpisodeStore",
    "EpisodeStoreError",
    "GreedyPrimary",
    "GreedyPrior",
    "MCTSAgent",
    "MCTSConfig",
    "MajorityVote",
    "MaskablePPOAgent",
    "PlanningAgent",
    "RandomAgent",
    "SearchTree",
    "StepRecord",
    "Summary",
    "evaluate",
    "make_agent",
]


def __getattr__(name: str):
    """Import a public name on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from agents.base import Agent, EpisodeResult, PlanningAgent, StepRecord
    from agents.baselines import (
        BeamSearch,
        BestOfN,
        BestReference,
        EnsembleGreedy,
        GreedyPrimary,
        GreedyPrior,
        MajorityVote,
        MaskablePPOAgent,
        RandomAgent,
    )
    from agents.evaluation import Summary, evaluate, make_agent
    from agents.search import MCTS, MCTSAgent, MCTSConfig, SearchTree
    from agents.store import EpisodeStore, EpisodeStoreError
