"""TokenTree: text generation as a game tree, as a Gymnasium environment.

Importing the package registers ``TokenTree-v0``::

    import gymnasium as gym
    import tokentree_env
    env = gym.make("TokenTree-v0")
"""

from gymnasium.envs.registration import register

from tokentree_env.env import FEATURES, EnvState, TokenTreeEnv
from tokentree_env.errors import (
    ConfigError,
    ContextTooLongError,
    EnvStateError,
    InvalidActionError,
    ModelNotFoundError,
    ModelOutputError,
    RemoteTeacherError,
    TaskFormatError,
    TokenTreeError,
)
from tokentree_env.judge import Judge
from tokentree_env.models import LoadedModel, load_model
from tokentree_env.rewards import RewardConfig
from tokentree_env.tasks import Problem, Task, builtin_task, load_jsonl_task, load_task, task_from_dataset
from tokentree_env.teachers import HFTeacher, OpenAITeacher, ScriptedTeacher, Teacher
from tokentree_env.tree import Expander, ExpansionConfig, TokenTree, WeightageRule

__version__ = "0.1.0"

register(id="TokenTree-v0", entry_point="tokentree_env.env.token_tree_env:TokenTreeEnv")

__all__ = [
    "FEATURES",
    "ConfigError",
    "ContextTooLongError",
    "EnvState",
    "EnvStateError",
    "Expander",
    "ExpansionConfig",
    "HFTeacher",
    "InvalidActionError",
    "Judge",
    "LoadedModel",
    "ModelNotFoundError",
    "ModelOutputError",
    "OpenAITeacher",
    "Problem",
    "RemoteTeacherError",
    "RewardConfig",
    "ScriptedTeacher",
    "Task",
    "TaskFormatError",
    "Teacher",
    "TokenTree",
    "TokenTreeEnv",
    "TokenTreeError",
    "WeightageRule",
    "builtin_task",
    "load_jsonl_task",
    "load_model",
    "load_task",
    "task_from_dataset",
]
