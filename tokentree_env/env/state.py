"""The env's episode state handle (cheap, immutable) and the file name a prompt's tree is saved under."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tokentree_env.errors import InvalidActionError


@dataclass(frozen=True)
class EnvState:
    """A cheap handle to a position in an episode: the prompt's tree, a node, and the path to it.

    ``path`` holds ``(node, child index)`` pairs from the root; ``episode_return`` the rewards so far;
    ``simulated`` marks a state a planner reached through ``simulate`` rather than the episode itself.
    """

    prompt: str
    node: int
    length: int = 0
    path: tuple[tuple[int, int], ...] = ()
    episode_return: float = 0.0
    done: bool = False
    simulated: bool = False


def tree_filename(prompt: str) -> str:
    """The file a prompt's tree is saved in by ``save_trees`` (a hash of the prompt)."""
    return f"{hashlib.sha1(prompt.encode()).hexdigest()[:16]}.json"


def action_index(action, width: int) -> int:
    """An action (an int, a NumPy integer, or a 0-d / 1-element array) as a child index in ``[0, width)``;
    anything else raises :class:`~tokentree_env.errors.InvalidActionError` naming what was received."""
    if isinstance(action, np.ndarray) and action.shape in ((), (1,)):
        action = action.reshape(-1)[0]
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise InvalidActionError(f"action must be an integer in [0, {width}), got {action!r}")
    if not 0 <= int(action) < width:
        raise InvalidActionError(f"action {int(action)} is outside the action space Discrete({width})")
    return int(action)
