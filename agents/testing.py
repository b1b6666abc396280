"""A tiny deterministic tree env with TokenTree-v0's observation format and planner API.

For tests and examples of agents: every node has ``width`` children, leaves sit at ``depth``, and
each leaf's return is given, so the best answer is known. Shipped in the library (as SB3 ships
its test envs) so users testing their own agents can use it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tokentree_env.env.observation import FEATURES


@dataclass(frozen=True)
class ToyState:
    path: tuple[int, ...] = ()
    done: bool = False
    episode_return: float = 0.0
    prompt: str = "toy"


class ToyTreeEnv(gym.Env):
    """A complete tree of ``width ** depth`` leaves; the episode return is ``leaf_values[path]``.

    Rewards are 0 until the last step, which pays the leaf's value. The prior feature is uniform
    (or ``priors[path]`` when given), so a search must find the best leaf by its values.
    """

    def __init__(self, leaf_values: dict[tuple[int, ...], float], *, width: int = 3, depth: int = 2,
                 priors: dict[tuple[int, ...], list[float]] | None = None) -> None:
        self.leaf_values, self.width, self.depth, self.priors = leaf_values, width, depth, priors or {}
        self.action_space = spaces.Discrete(width)
        self.observation_space = spaces.Dict({
            "context": spaces.Box(0, width, (depth,), dtype=np.int64),
            "candidates": spaces.Box(0, width, (width,), dtype=np.int64),
            "features": spaces.Box(-np.inf, np.inf, (width * len(FEATURES),), dtype=np.float32),
            "action_mask": spaces.Box(0, 1, (width,), dtype=np.int8),
        })
        self.simulate_calls = 0
        self.prefetch_batches: list[int] = []
        self._state = ToyState()

    def _obs(self, state: ToyState):
        feats = np.zeros((self.width, len(FEATURES)), dtype=np.float32)
        feats[:, FEATURES.index("prior")] = self.priors.get(state.path, [1.0 / self.width] * self.width)
        context = np.zeros(self.depth, dtype=np.int64)
        context[: len(state.path)] = state.path
        mask = np.zeros(self.width, dtype=np.int8) if state.done else np.ones(self.width, dtype=np.int8)
        return {"context": context, "candidates": np.arange(self.width), "features": feats.reshape(-1),
                "action_mask": mask}

    def _move(self, state: ToyState, action: int):
        path = (*state.path, int(action))
        done = len(path) == self.depth
        reward = float(self.leaf_values.get(path, 0.0)) if done else 0.0
        nxt = ToyState(path, done, state.episode_return + reward)
        return nxt, self._obs(nxt), reward, done, False, {"text": str(path), "reward_terms": {"leaf": reward},
                                                           "terminal_reason": "leaf" if done else None,
                                                           "directions": ["right"] * self.width}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state = ToyState()
        return self._obs(self._state), {"text": "", "directions": ["right"] * self.width}

    def step(self, action):
        self._state, obs, reward, terminated, truncated, info = self._move(self._state, action)
        return obs, reward, terminated, truncated, info

    def get_state(self) -> ToyState:
        return self._state

    def set_state(self, state: ToyState) -> None:
        self._state = state

    def prefetch(self, states, actions) -> None:
        """The lockstep hook (a real env batches the model work here): records the batch sizes."""
        self.prefetch_batches.append(len(states))

    def simulate(self, state: ToyState, action: int):
        self.simulate_calls += 1
        return self._move(state, action)

    def update_weightage(self, path, episode_return, prompt=None) -> bool:
        return False
