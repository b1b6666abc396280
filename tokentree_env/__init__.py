"""TokenTree: text generation as a game tree, as a Gymnasium environment.

Importing the package registers ``TokenTree-v0``::

    import gymnasium as gym
    import tokentree_env
    env = gym.make("TokenTree-v0")

The public names below are imported on first use (PEP 562), so ``import tokentree_env`` and the
``tokentree`` command's help stay quick: torch and transformers load only when a model is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gymnasium.envs.registration import register

__version__ = "0.1.0"

register(id="TokenTree-v0", entry_point="tokentree_env.env.token_tree_env:TokenTreeEnv",
         vector_entry_point="tokentree_env.env.vector:TokenTreeVectorEnv")

_EXPORTS = {
    "FEATURES": "tokentree_env.env",
    "EnvState": "tokentree_env.env",
    "TokenTreeEnv": "tokentree_env.env",
    "ConfigError": "tokentree_env.errors",
    "ContextTooLongError": "tokentree_env.errors",
    "EnvStateError": "tokentree_env.errors",
    "InvalidActionError": "tokentree_env.errors",
    "ModelNotFoundError": "tokentree_env.errors",
    "ModelOutputError": "tokentree_env.errors",
    "PromptError": "tokentree_env.errors",
    "RemoteTeacherError": "tokentree_env.errors",
    "TaskFormatError": "tokentree_env.errors",
    "TokenTreeError": "tokentree_env.errors",
    "TreeMismatchError": "tokentree_env.errors",
    "VerifierLeakError": "tokentree_env.errors",
    "PackageNameClashError": "tokentree_env.errors",
    "PanelConfig": "tokentree_env.scoring",
    "Judge": "tokentree_env.judge",
    "LoadedModel": "tokentree_env.models",
    "load_model": "tokentree_env.models",
    "RewardConfig": "tokentree_env.rewards",
    "Problem": "tokentree_env.tasks",
    "Task": "tokentree_env.tasks",
    "builtin_task": "tokentree_env.tasks",
    "load_jsonl_task": "tokentree_env.tasks",
    "load_task": "tokentree_env.tasks",
    "task_from_dataset": "tokentree_env.tasks",
    "HFTeacher": "tokentree_env.teachers",
    "OpenAITeacher": "tokentree_env.teachers",
    "ScriptedTeacher": "tokentree_env.teachers",
    "Teacher": "tokentree_env.teachers",
    "Expander": "tokentree_env.tree",
    "ExpansionConfig": "tokentree_env.tree",
    "TokenTree": "tokentree_env.tree",
    "WeightageRule": "tokentree_env.tree",
}
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
    "PackageNameClashError",
    "PanelConfig",
    "Problem",
    "PromptError",
    "RemoteTeacherError",
    "RewardConfig",
    "ScriptedTeacher",
    "Task",
    "TaskFormatError",
    "Teacher",
    "TokenTree",
    "TokenTreeEnv",
    "TokenTreeError",
    "TreeMismatchError",
    "VerifierLeakError",
    "WeightageRule",
    "builtin_task",
    "load_jsonl_task",
    "load_model",
    "load_task",
    "task_from_dataset",
]


def __getattr__(name: str):
    """Import a public name on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokentree_env' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from tokentree_env.env import FEATURES, EnvState, TokenTreeEnv
    from tokentree_env.errors import (
        ConfigError,
        ContextTooLongError,
        EnvStateError,
        InvalidActionError,
        ModelNotFoundError,
        ModelOutputError,
        PackageNameClashError,
        PromptError,
        RemoteTeacherError,
        TaskFormatError,
        TokenTreeError,
        TreeMismatchError,
        VerifierLeakError,
    )
    from tokentree_env.judge import Judge
    from tokentree_env.models import LoadedModel, load_model
    from tokentree_env.rewards import RewardConfig
    from tokentree_env.scoring import PanelConfig
    from tokentree_env.tasks import Problem, Task, builtin_task, load_jsonl_task, load_task, task_from_dataset
    from tokentree_env.teachers import HFTeacher, OpenAITeacher, ScriptedTeacher, Teacher
    from tokentree_env.tree import Expander, ExpansionConfig, TokenTree, WeightageRule
