"""Reward terms of TokenTree-v0: per-step panel log-prob and length cost; task, judge and length at the end."""

from tokentree_env.rewards.terms import RewardConfig, RewardFn, final_terms, step_terms

__all__ = ["RewardConfig", "RewardFn", "final_terms", "step_terms"]
