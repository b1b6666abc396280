"""The TokenTree-v0 Gymnasium environment, composed of parts that do not know it: model set-up
(:mod:`.models`), the tree store (:mod:`.trees`), observation building (:mod:`.observation`) and
rendering (:mod:`.render`)."""

from tokentree_env.env.observation import FEATURES
from tokentree_env.env.state import EnvState, tree_filename
from tokentree_env.env.token_tree_env import TokenTreeEnv

__all__ = ["FEATURES", "EnvState", "TokenTreeEnv", "tree_filename"]
