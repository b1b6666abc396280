"""The same episodes for less CPU: one engine against another on one fixed self-play workload.

The workload (the speed issue's): ``mcts:4`` self-play on the first 64 ``chain5`` train problems, 64 episodes in
lockstep, the zoo's ``chain5`` stack (three teachers, the primary, the judge), answers of up to 48 tokens, the
verifier on the leaves, the fast rollout policy off; one process, one torch thread. It records the process CPU
seconds of the self-play (the models' loading not counted) and every episode.

This file imports only the packages ``agents`` and ``tokentree_env``, so it runs unchanged against an older checkout
of them, which is how an engine is compared with the one before it::

    git worktree add /tmp/before fd5a296
    PYTHONPATH=/tmp/before python benchmarks/engine_ab.py results/engine/before.json
    python benchmarks/engine_ab.py results/engine/after.json
    python benchmarks/engine_ab.py --compare results/engine/before.json results/engine/after.json

``--stack real --problems 4 --batch 4`` plays the real learning run's self-play instead (:data:`REAL`).
``--compare`` says whether the two played the same episodes (each episode's tokens, every step's candidates, the
steps and the end) and the ratio of their CPU seconds per episode. Run the two alternately, twice each, with nothing
else on the machine: CPU seconds vary between runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SAME = ("tokens", "completion", "steps", "terminal_reason")
"""What two engines' episodes must share, besides every step's candidates."""


REAL = {"teachers": ["pkg:gemma3-270m", "pkg:smollm2-135m-instruct"], "primary": "pkg:smollm2-135m-instruct",
        "judge": None, "task": "arith2-words", "max_new_tokens": 24, "agent": "mcts:2"}
"""``--stack real``: the real learning run's self-play (both real models as teachers, SmolLM2 as the primary, no
judge, ``mcts:2``; its primary without LoRA)."""


def workload(stack: str = "chain5", problems: int = 64):
    """The workload's env, its ``(prompt index, prompt, repeats)`` items and its search spec (``stack``: ``"chain5"``,
    the zoo's, or ``"real"``, :data:`REAL`)."""
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import load_task
    from tokentree_env.zoo.catalog import default_models

    w = dict(REAL) if stack == "real" else \
        {**default_models("chain5"), "task": "chain5", "max_new_tokens": 48, "agent": "mcts:4"}
    env = TokenTreeEnv(teachers=list(w["teachers"]), primary=w["primary"], judge=w["judge"], task=w["task"],
                       split="train", max_new_tokens=w["max_new_tokens"], planner_verifier=True)
    items = [(i, p.prompt, [0]) for i, p in enumerate(load_task(w["task"]).problems("train")[:problems])]
    return env, items, w["agent"]


def play(out: str, problems: int = 64, batch: int = 64, stack: str = "chain5") -> dict:
    """Play the workload (:func:`workload`); write and return its CPU seconds and episodes."""
    import torch

    from agents.training.selfplay import SelfPlayJob, play_episodes

    torch.set_num_threads(1)
    env, items, agent = workload(stack, problems)
    began = time.process_time()
    episodes = list(play_episodes(env, items, SelfPlayJob(agent=agent, batch=batch)))
    cpu = time.process_time() - began
    result = {"problems": problems, "batch": batch, "cpu_seconds": cpu, "cpu_per_episode": cpu / len(episodes),
              "forwarded_tokens": sum(e["forwarded_tokens"] for e in episodes),
              "episodes": json.loads(json.dumps(episodes, default=str))}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result))
    print(f"{len(episodes)} episodes, {cpu:.1f} CPU s, {result['cpu_per_episode']:.3f} CPU s per episode -> {out}")
    return result


def compare(before: str, after: str) -> dict:
    """Whether ``after`` played ``before``'s episodes, and its CPU seconds per episode over ``before``'s."""
    a, b = (json.loads(Path(p).read_text()) for p in (before, after))
    old = {e["prompt_index"]: e for e in a["episodes"]}
    new = {e["prompt_index"]: e for e in b["episodes"]}
    differ = sorted(k for k in old if k not in new or any(old[k].get(f) != new[k].get(f) for f in SAME)
                    or [r["candidates"] for r in old[k]["records"]] != [r["candidates"] for r in new[k]["records"]])
    result = {"episodes": len(old), "same": len(old) - len(differ), "differ": differ,
              "cpu_per_episode": [a["cpu_per_episode"], b["cpu_per_episode"]],
              "ratio": b["cpu_per_episode"] / a["cpu_per_episode"],
              "forwarded_tokens": [a["forwarded_tokens"], b["forwarded_tokens"]]}
    print(f"same episodes: {result['same']} of {result['episodes']}" + (f" (differ: {differ})" if differ else ""))
    print(f"CPU s per episode: {a['cpu_per_episode']:.3f} -> {b['cpu_per_episode']:.3f} "
          f"(after / before {result['ratio']:.2f}); forwarded tokens {a['forwarded_tokens']:,} -> "
          f"{b['forwarded_tokens']:,}")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python benchmarks/engine_ab.py", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="where to write this engine's run (JSON)")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--stack", choices=["chain5", "real"], default="chain5",
                        help="the zoo's chain5 stack (default) or the real learning run's models (REAL)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two runs written before")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("give a file to write the run to, or --compare BEFORE AFTER")
    return play(args.out, args.problems, args.batch, args.stack)


if __name__ == "__main__":
    main()
