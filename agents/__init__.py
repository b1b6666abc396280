"""Agents for TokenTree-v0: MCTS with the weightage-adjusted prior, baselines, the episode store.

    from agents import MCTSAgent, MCTSConfig, evaluate
    summary, episodes = evaluate(MCTSAgent(MCTSConfig(num_simulations=8)), prompts)

Names are imported on first use (PEP 562), so the ``tokentree`` command starts quickly.

The import name ``agents`` is also the one of OpenAI's ``openai-agents`` package: the two cannot be installed in
one environment. Asking this package for one of that package's names (``Runner``, ``function_tool``, ...) raises
:class:`PackageNameClashError`, which says so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "Agent": "agents.base",
    "EpisodeResult": "agents.records",
    "PlanningAgent": "agents.base",
    "StepRecord": "agents.records",
    "BeamSearch": "agents.baselines",
    "BestOfN": "agents.baselines",
    "BestReference": "agents.baselines",
    "EnsembleGreedy": "agents.baselines",
    "GreedyPrimary": "agents.baselines",
    "GreedyPrior": "agents.baselines",
    "MajorityOfN": "agents.baselines",
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
    "StepMCTSAgent": "agents.search.steps",
    "ABMCTSAgent": "agents.search.ab_mcts",
    "play_many": "agents.play",
    "EpisodeStore": "agents.store",
    "EpisodeStoreError": "agents.store",
}
__all__ = [
    "MCTS",
    "ABMCTSAgent",
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
    "MajorityOfN",
    "MajorityVote",
    "MaskablePPOAgent",
    "PlanningAgent",
    "RandomAgent",
    "SearchTree",
    "StepMCTSAgent",
    "StepRecord",
    "Summary",
    "evaluate",
    "make_agent",
    "play_many",
]


OPENAI_AGENTS_NAMES = frozenset({
    "Runner", "RunConfig", "RunResult", "RunContextWrapper", "function_tool", "handoff", "Handoff", "trace",
    "ModelSettings", "FunctionTool", "WebSearchTool", "FileSearchTool", "ComputerTool", "GuardrailFunctionOutput",
    "input_guardrail", "output_guardrail", "InputGuardrail", "OutputGuardrail", "set_default_openai_key",
    "set_default_openai_client", "set_tracing_disabled", "enable_verbose_stdout_logging",
    "OpenAIChatCompletionsModel", "OpenAIResponsesModel", "ItemHelpers", "Session", "SQLiteSession"})
"""Names of ``openai-agents``, whose import name is also ``agents``."""


def __getattr__(name: str):
    """Import a public name on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in OPENAI_AGENTS_NAMES:
        from tokentree_env.errors import PackageNameClashError

        raise PackageNameClashError(
            f"`agents.{name}` belongs to OpenAI's openai-agents package, but `agents` here is TokenTree's agents "
            f"package ({__file__}): both install under the import name `agents`, so one hides the other. Use "
            "openai-agents in a separate virtual environment")
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from agents.base import Agent, PlanningAgent
    from agents.baselines import (
        BeamSearch,
        BestOfN,
        BestReference,
        EnsembleGreedy,
        GreedyPrimary,
        GreedyPrior,
        MajorityOfN,
        MajorityVote,
        MaskablePPOAgent,
        RandomAgent,
    )
    from agents.evaluation import Summary, evaluate, make_agent
    from agents.play import play_many
    from agents.records import EpisodeResult, StepRecord
    from agents.search import MCTS, MCTSAgent, MCTSConfig, SearchTree
    from agents.search.ab_mcts import ABMCTSAgent
    from agents.search.steps import StepMCTSAgent
    from agents.store import EpisodeStore, EpisodeStoreError
