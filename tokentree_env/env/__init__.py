"""The TokenTree-v0 Gymnasium environment, composed of parts that do not know it: model set-up
(:mod:`.models`), the tree store (:mod:`.trees`), observation building (:mod:`.observation`) and
rendering (:mod:`.render`). Agents reach it through its declared door (:mod:`.door`: ``AGENT_API``, ``AgentEnv``)."""

from tokentree_env.env.door import AGENT_API, AgentEnv
from tokentree_env.env.observation import FEATURES
from tokentree_env.env.state import EnvState, tree_filename
from tokentree_env.env.token_tree_env import TokenTreeEnv

__all__ = ["AGENT_API", "FEATURES", "AgentEnv", "EnvState", "TokenTreeEnv", "tree_filename"]
