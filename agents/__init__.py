"""Agents for TokenTree-v0: MCTS with the weightage-adjusted prior, baselines, the episode store.

    from agents import MCTSAgent, MCTSConfig, evaluate
    summary, episodes = evaluate(MCTSAgent(MCTSConfig(num_simulations=8)), prompts)
"""

from agents.base import Agent, EpisodeResult, PlanningAgent, StepRecord
from agents.baselines import (
    BeamSearch,
    BestOfN,
    BestReference,
    EnsembleGreedy,
    GreedyPrimary,
    GreedyPrior,
    MaskablePPOAgent,
    RandomAgent,
)
from agents.evaluate import Summary, evaluate, make_agent
from agents.search import MCTS, MCTSAgent, MCTSConfig, SearchTree
from agents.store import EpisodeStore, EpisodeStoreError

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
    "MaskablePPOAgent",
    "PlanningAgent",
    "RandomAgent",
    "SearchTree",
    "StepRecord",
    "Summary",
    "evaluate",
    "make_agent",
]
