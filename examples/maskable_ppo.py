"""MaskablePPO from sb3-contrib on TokenTree-v0, with the env's feature extractor.

    python examples/maskable_ppo.py [--timesteps 512]
"""

import argparse

from sb3_contrib import MaskablePPO

from agents import MaskablePPOAgent, evaluate
from tokentree_env import TokenTreeEnv, builtin_task
from tokentree_env.env.sb3 import TokenTreeExtractor


def main(timesteps: int = 512) -> None:
    env = TokenTreeEnv()  # train split; the action mask comes from env.action_masks()
    model = MaskablePPO("MultiInputPolicy", env, n_steps=128, batch_size=32, n_epochs=2, seed=0, verbose=0,
                        policy_kwargs={"features_extractor_class": TokenTreeExtractor})
    model.learn(total_timesteps=timesteps)
    prompts = [p.prompt for p in builtin_task("chain3").problems("heldout")[:5]]
    summary, _ = evaluate(MaskablePPOAgent(model), prompts)
    print(f"MaskablePPO after {timesteps} steps: held-out accuracy {summary.accuracy:.2f} on {summary.episodes}")
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=512)
    main(parser.parse_args().timesteps)
