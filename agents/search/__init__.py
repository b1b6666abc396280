"""Search: AlphaZero-style MCTS (PUCT and Gumbel MuZero) over the env's planner API."""

from agents.search.driver import run_searches
from agents.search.gumbel import completed_q, considered_visits, improved_policy, mixed_value
from agents.search.mcts import MCTS, MCTSAgent, MCTSConfig
from agents.search.puct import backward, puct_scores, q_minmax, q_parent_and_siblings, select
from agents.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchTree
from agents.search.value import ValueHead, collect_returns

__all__ = ["MCTS", "NO_PARENT", "ROOT_INDEX", "UNVISITED", "MCTSAgent", "MCTSConfig", "SearchTree", "ValueHead",
           "backward", "collect_returns", "completed_q", "considered_visits", "improved_policy", "mixed_value",
           "puct_scores", "q_minmax", "q_parent_and_siblings", "run_searches", "select"]
