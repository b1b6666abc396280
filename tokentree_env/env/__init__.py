"""The TokenTree-v0 Gymnasium environment."""

from tokentree_env.env.token_tree_env import FEATURES, EnvState, TokenTreeEnv

__all__ = ["FEATURES", "EnvState", "TokenTreeEnv"]
