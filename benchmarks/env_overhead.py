"""Environment overhead: greedy play through TokenTree-v0 vs the same model's ``generate``.

Conditions (as the environment issue specifies): one model is both the only teacher and the
primary, so one forward serves both roles; the judge is off; the default similarity is on;
``reset()`` is excluded from the env timing; no reference paths are pre-inserted, so every
step is a real expansion, not a cache hit. Greedy play picks the child with the highest primary
log-prob, which is the model's own greedy token, so both sides produce the same tokens (checked).

Reported on the zoo primary and on a benchmark-size model (hidden 256, 4 layers, random
weights). Target: ratio <= 1.3 on both. Also reported: the ratio with ``reset()`` included
(the prompt's prefill then counts on both sides).

Each size is measured in ``--repeats`` passes (3), each on a fresh env; the median pass is
reported with all the passes' ratios (this machine is shared and noisy: ±0.1 between passes).

Run: ``python -m benchmarks.env_overhead`` (``--prompts 5 --repeats 1`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from tokentree_env.env import FEATURES, TokenTreeEnv
from tokentree_env.models.loader import load_model
from tokentree_env.tasks import builtin_task
from tokentree_env.teachers import HFTeacher
from tokentree_env.tree import ROOT

from .expansion import benchmark_size

PRIMARY_LOGPROB = FEATURES.index("primary_logprob")


def greedy_episode(env: TokenTreeEnv, prompt: str) -> tuple[list[int], float, float]:
    """Play greedily on the primary's log-prob; returns tokens, step seconds, reset seconds."""
    begin = time.perf_counter()
    obs, _ = env.reset(options={"prompt": prompt, "answer": ""})
    reset_s = time.perf_counter() - begin
    steps_s, done = 0.0, False
    while not done:
        feats = obs["features"].reshape(env.width, len(FEATURES))[:, PRIMARY_LOGPROB]
        action = int(np.argmax(np.where(obs["action_mask"] == 1, feats, -np.inf)))
        begin = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        steps_s += time.perf_counter() - begin
        done = terminated or truncated
    tree = env.trees[prompt]
    return list(tree.path_tokens(env.get_state().node)), steps_s, reset_s


@torch.inference_mode()  # generate itself uses no_grad; give the baseline the env's cheaper mode too
def generate_seconds(lm, prompt_ids: list[int], n_tokens: int) -> tuple[list[int], float]:
    """``generate`` from the env's own root context (the prompt as the env encoded it: with a chat template where
    the model has one), for at most as many tokens as the env played (the same ones, when they agree)."""
    ids = torch.tensor([list(prompt_ids)])
    begin = time.perf_counter()
    out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens,
                            do_sample=False, pad_token_id=lm.tokenizer.pad_token_id,
                            eos_token_id=lm.tokenizer.eos_token_id)
    took = time.perf_counter() - begin
    return out[0, ids.shape[1]:].tolist(), took


def one_pass(lm, prompts: list[str], max_new_tokens: int) -> dict:
    """Every prompt through a fresh env (so each step is a real expansion) and through generate,
    interleaved prompt by prompt so that machine noise hits both sides alike."""
    model = HFTeacher(lm)
    env = TokenTreeEnv(teachers=[model], primary=model, judge=None, references=False,
                       max_new_tokens=max_new_tokens)
    greedy_episode(env, "1+1+1=")  # warm-up (allocations, lazy imports) on a prompt that is not measured
    generate_seconds(lm, env.trees["1+1+1="].nodes[ROOT].ids, 4)
    env_s = reset_s = gen_s = 0.0
    tokens = mismatches = 0
    for prompt in prompts:
        env_tokens, steps, reset = greedy_episode(env, prompt)
        gen_tokens, gen = generate_seconds(lm, env.trees[prompt].nodes[ROOT].ids, len(env_tokens))
        mismatches += env_tokens != gen_tokens
        env_s, reset_s, gen_s, tokens = env_s + steps, reset_s + reset, gen_s + gen, tokens + len(env_tokens)
    env.close()
    return {"tokens": tokens, "env_ms_per_token": 1e3 * env_s / tokens, "generate_ms_per_token": 1e3 * gen_s / tokens,
            "ratio": env_s / gen_s, "ratio_with_reset": (env_s + reset_s) / gen_s, "token_mismatches": mismatches}


def run(size: str, n_prompts: int, max_new_tokens: int, repeats: int) -> dict:
    """``repeats`` passes, each on a fresh env; the median pass (by ratio) is reported, all are kept."""
    lm = load_model("pkg:smollm2-135m-instruct" if size == "real" else "zoo:primary")
    if size == "benchmark":
        lm = benchmark_size(lm)
    task = "arith-words" if size == "real" else "chain3"
    prompts = [p.prompt for p in builtin_task(task).problems("heldout")[:n_prompts]]
    passes = sorted((one_pass(lm, prompts, max_new_tokens) for _ in range(repeats)), key=lambda r: r["ratio"])
    return {"model": lm.name, "hidden": getattr(lm.model.config, "hidden_size", None), "prompts": len(prompts),
            **passes[len(passes) // 2], "ratios_of_all_passes": [p["ratio"] for p in passes]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="passes on fresh envs; the median is reported")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--sizes", nargs="*", default=["zoo", "benchmark"], choices=["zoo", "benchmark", "real"],
                        help="real: SmolLM2-135M-Instruct (needs the real models installed)")
    parser.add_argument("--out", default="results/env_overhead.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {"benchmark": "env_overhead", "torch_threads": 1,
               "runs": [run(s, args.prompts, args.max_new_tokens, args.repeats) for s in args.sizes]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Greedy play through the env vs generate (target: ratio <= 1.3)")
    for col in ("model", "tokens", "env ms/tok", "generate ms/tok", "ratio (median)", "all passes", "incl. reset",
                "mismatches"):
        table.add_column(col)
    for r in results["runs"]:
        table.add_row(r["model"], str(r["tokens"]), f"{r['env_ms_per_token']:.3f}", f"{r['generate_ms_per_token']:.3f}",
                      f"{r['ratio']:.3f}", " ".join(f"{x:.2f}" for x in r["ratios_of_all_passes"]),
                      f"{r['ratio_with_reset']:.3f}", str(r["token_mismatches"]))
    Console().print(table)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()


if __name__ == "__main__":
    main()
