"""The suite's speed part: ratios measured in one run (absolute times vary between machines).

Expansion vs the bare forwards it needs and forwarded tokens per generated token along a path (zoo and
a benchmark-size stack, :mod:`tokentree_benchmarks.expansion`); env greedy play vs ``generate``
(:mod:`tokentree_benchmarks.env_overhead`); cost per expansion vs the number of teachers and vs ``K``; MCTS
simulations per second.
"""

from __future__ import annotations

import statistics
import time

from .config import SuiteConfig


def _walk(expander, steps: int) -> dict:
    """Expand along one greedy path of ``steps`` tokens; seconds and forwarded tokens per step."""
    from .expansion import PROMPT, total_forwarded

    tree = expander.new_tree(PROMPT, references=False)
    expander.expand(tree, [0])
    start, node, seconds = total_forwarded(expander), 0, []
    eos = expander.primary.tokenizer.eos_token_id
    for _ in range(steps):
        token = next(int(t) for t in tree.nodes[node].slate.tokens if t != eos)
        node = tree.child(node, token)
        begin = time.perf_counter()
        expander.expand(tree, [node])
        seconds.append(time.perf_counter() - begin)
    return {"ms_per_expansion": 1e3 * statistics.median(seconds),
            "forwarded_tokens_per_step": (total_forwarded(expander) - start) / steps}


def cost_curves(steps: int) -> dict:
    """Cost of one expansion vs the number of teachers (1..3) and vs the slate width K."""
    from tokentree_env.tree.expander import Expander, ExpansionConfig

    from .expansion import make_stack

    teachers, primary = make_stack("zoo")
    by_teachers = {}
    for n in range(1, len(teachers) + 1):
        for t in [*teachers, primary]:
            t.store.clear()
        by_teachers[n] = _walk(Expander(teachers[:n], primary, primary.tokenizer, ExpansionConfig()), steps)
    by_k = {}
    for k in (4, 8, 16, 32):
        for t in [*teachers, primary]:
            t.store.clear()
        by_k[k] = _walk(Expander(teachers, primary, primary.tokenizer, ExpansionConfig(width=k)), steps)
    return {"steps": steps, "by_teachers": by_teachers, "by_k": by_k}


def simulations_per_second(cfg: SuiteConfig, simulations: int = 8) -> dict:
    from agents.evaluation import evaluate, make_agent

    from .suite_search import env_kwargs, heldout_prompts

    prompts = heldout_prompts(cfg)[: cfg.size(20, 5, 1)]
    summary, results = evaluate(make_agent(f"mcts:{simulations}"), prompts, env_kwargs(cfg))
    steps = sum(len(r.records) for r in results)
    return {"simulations": simulations, "episodes": len(results), "steps": steps, "seconds": summary.seconds,
            "simulations_per_second": simulations * steps / summary.seconds}


def speed(cfg: SuiteConfig) -> dict:
    from . import env_overhead, expansion

    steps = cfg.size(100, 50, 8)
    out = {"expansion": [expansion.run(size, steps) for size in ("zoo", "benchmark")]}
    prompts, repeats = cfg.size(30, 10, 2), cfg.size(3, 1, 1)
    out["env_overhead"] = [env_overhead.run(size, prompts, 48, repeats) for size in ("zoo", "benchmark")]
    out["cost"] = cost_curves(cfg.size(30, 12, 3))
    out["mcts"] = simulations_per_second(cfg)
    out["targets"] = {
        "expansion_ratio_<=1.2_benchmark_size": _met(out["expansion"][1]["ratio_median"], 1.2),
        "env_vs_generate_<=1.3_zoo": _met(out["env_overhead"][0]["ratio"], 1.3),
        "env_vs_generate_<=1.3_benchmark_size": _met(out["env_overhead"][1]["ratio"], 1.3),
        "forwarded_tokens_per_step_flat": {
            "windows": [v["window"] for r in out["expansion"] for v in r["forwarded_tokens_per_generated_token"].values()],
            "met": all(_flat(r) for r in out["expansion"])},
        "revisit_calls_0": {"measured": sum(r["revisit_model_calls"] for r in out["expansion"]),
                            "met": all(r["revisit_model_calls"] == 0 for r in out["expansion"])},
    }
    return out


def _met(value: float, limit: float) -> dict:
    return {"measured": value, "limit": limit, "met": value <= limit}


def _flat(run: dict) -> bool:
    """Forwarded tokens per generated token over each window stay within 10 % of the first window."""
    windows = [v["window"] for v in run["forwarded_tokens_per_generated_token"].values()]
    return max(windows) <= 1.1 * windows[0]
