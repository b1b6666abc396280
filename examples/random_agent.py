"""A random agent on TokenTree-v0: the Gymnasium loop, nothing else.

    python examples/random_agent.py [--episodes 3]
"""

import argparse

import gymnasium as gym
import numpy as np

import tokentree_env  # noqa: F401  (registers TokenTree-v0)


def main(episodes: int = 3) -> None:
    env = gym.make("TokenTree-v0")  # the zoo's 3 teachers, primary and judge; task chain3
    rng = np.random.default_rng(0)
    for episode in range(episodes):
        obs, info = env.reset(seed=episode)
        done, total = False, 0.0
        while not done:
            action = rng.choice(np.flatnonzero(obs["action_mask"]))  # any valid child
            obs, reward, terminated, truncated, info = env.step(action)
            total, done = total + reward, terminated or truncated
        print(f"{info['prompt']!r} -> {info['text']!r}  return {total:+.3f}  ({info['terminal_reason']})")
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    main(parser.parse_args().episodes)
