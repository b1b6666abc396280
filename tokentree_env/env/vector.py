"""``gym.make_vec("TokenTree-v0", num_envs=N)``: a native vector env whose ``step`` runs the models once for all
sub-envs.

The ``N`` sub-envs are ordinary :class:`~tokentree_env.env.token_tree_env.TokenTreeEnv` s that share one set of
models (teachers, primary, judge); each keeps its own trees, random stream and episode, so the vector env
behaves exactly like ``SyncVectorEnv`` over ``N`` separate envs (autoreset mode ``NEXT_STEP``: a sub-env whose
episode ended is reset by the next ``step``, which ignores its action). Before the sub-envs step, one
``prefetch`` does the model work of every sub-env's transition in one padded, batched forward per model
(:mod:`tokentree_env.env.prefetch`); each sub-env's work is charged to its own episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from tokentree_env.env.prefetch import prefetch
from tokentree_env.env.token_tree_env import TokenTreeEnv
from tokentree_env.errors import ConfigError


class TokenTreeVectorEnv(VectorEnv):
    """``num_envs`` TokenTree-v0 sub-envs over shared models, stepped in lockstep.

    Args:
        num_envs: how many sub-envs.
        **kwargs: ``TokenTreeEnv`` arguments, the same for every sub-env.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        first = TokenTreeEnv(**kwargs)
        shared = {"teachers": first.models.teachers, "primary": first.primary, "judge": first.judge}
        self.envs = [first] + [TokenTreeEnv(**(kwargs | shared)) for _ in range(num_envs - 1)]
        self.num_envs = num_envs
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset every sub-env (``seed + i`` for sub-env ``i``, as ``SyncVectorEnv`` does)."""
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else (seed or [None] * self.num_envs)
        results = [env.reset(seed=s, options=options) for env, s in zip(self.envs, seeds, strict=True)]
        self._autoreset[:] = False
        infos: dict[str, Any] = {}
        for i, (_, info) in enumerate(results):
            infos = self._add_info(infos, info, i)
        return self._batch([obs for obs, _ in results]), infos

    def step(self, actions):
        """Step every sub-env; the model work of all their transitions runs first, batched across them."""
        actions = np.asarray(actions).reshape(self.num_envs)
        stepping = [i for i in range(self.num_envs) if not self._autoreset[i]]
        first = self.envs[0]
        prefetch(first.expander, first.detector, first.judge, [self.envs[i].store[self.envs[i].get_state().prompt]
                                                               for i in stepping],
                 [self.envs[i].get_state() for i in stepping], [int(actions[i]) for i in stepping],
                 width=first.width, verdicts=first.judge_verdict)
        observations, infos = [], {}
        rewards = np.zeros(self.num_envs)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                obs, info = env.reset()
            else:
                obs, rewards[i], terminations[i], truncations[i], info = env.step(int(actions[i]))
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        self._autoreset = terminations | truncations
        return self._batch(observations), rewards, terminations, truncations, infos

    def _batch(self, observations: list[dict]):
        out = create_empty_array(self.single_observation_space, n=self.num_envs, fn=np.zeros)
        return concatenate(self.single_observation_space, observations, out)

    def close_extras(self, **kwargs) -> None:
        self.envs[0].close()  # the shared models
        for env in self.envs[1:]:
            env.observer.clear()
