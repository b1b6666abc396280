"""Search: AlphaZero-style MCTS (PUCT and Gumbel) over the env's planner API."""

from agents.search.mcts import MCTS, MCTSAgent, MCTSConfig, backward, puct_scores, select
from agents.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchTree
from agents.search.value import ValueHead, collect_returns

__all__ = ["MCTS", "NO_PARENT", "ROOT_INDEX", "UNVISITED", "MCTSAgent", "MCTSConfig", "SearchTree", "ValueHead", "backward", "collect_returns",
           "puct_scores", "select"]
