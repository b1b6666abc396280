"""MCTS on the zoo: search each held-out prompt, then look at the tree.

    python examples/mcts.py [--prompts 5] [--simulations 8]
"""

import argparse

from agents import EpisodeStore, MCTSAgent
from agents.search import MCTSConfig
from agents.viewer import write_view
from tokentree_env import TokenTreeEnv, builtin_task


def main(prompts: int = 5, simulations: int = 8) -> None:
    env = TokenTreeEnv(evaluation=True)  # held-out split; weightage frozen; the search never sees the verifier
    agent = MCTSAgent(MCTSConfig(num_simulations=simulations))
    store = EpisodeStore("mcts_episodes.jsonl")
    for problem in builtin_task("chain3").problems("heldout")[:prompts]:
        result = agent.run_episode(env, options={"prompt": problem.prompt})
        store.append(result)
        print(f"{problem.prompt} {result.completion!r:14} correct={result.hard_reward:.0f} "
              f"tokens forwarded={result.forwarded_tokens}")
    env.save_trees("mcts_trees")
    print("view the last search:", write_view("mcts_episodes.jsonl", "mcts_tree.html"))
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--simulations", type=int, default=8)
    args = parser.parse_args()
    main(args.prompts, args.simulations)
