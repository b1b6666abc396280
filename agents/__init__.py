"""Agents for TokenTree-v0: MCTS, baselines, episode store, training."""
