"""Search against sampling per CPU second, on the same models and prompts (``python -m benchmarks.throughput``).

For each stack (the zoo's ``chain5`` test-bed, the same architectures at benchmark size with random weights, and the
real models when they are installed), measured one row after another in this process with one torch thread:

- **teacher samples**: 24 temperature-1 samples per problem, round-robin over the teachers, each prompt read once
  per (problem, teacher) (:func:`tokentree_env.models.generation.sample_rows`): what sampling the teachers costs;
- **ensemble greedy** through the env (evaluation, lockstep batches);
- **MCTS self-play** (``mcts:4``, root noise, the verifier on the leaves) at ``batch`` episodes in lockstep, with
  the env's panel rollouts (``rollout="teacher"``), the same rollouts stepped through ``simulate``
  (``fast_rollouts=False``: what the rollouts cost before the env did them itself), and AlphaGo's fast rollout
  policy (``rollout="writer"``).

Each row reports process CPU seconds per episode (or per problem) and forwarded tokens per CPU second, charged as
:mod:`agents.compute` defines them (every model's tokens, a prompt once per problem and model); the search rows'
share of sampling's tokens per CPU second stands beside them.
"""

from __future__ import annotations

import time

SAMPLES = 24


def _models(stack: str, device, dtype) -> dict:
    """The stack's teachers, primary and judge (objects), and its task."""
    from tokentree_env.judge import Judge
    from tokentree_env.models import load_model
    from tokentree_env.teachers import HFTeacher
    from tokentree_env.zoo.catalog import default_models

    from .expansion import REAL_STACK, benchmark_size

    if stack == "real":
        gemma, smol = (load_model(s, device=device, dtype=dtype) for s in REAL_STACK)
        return {"teachers": [HFTeacher(gemma), HFTeacher(smol)], "primary": HFTeacher(smol, name="primary"),
                "judge": None, "task": "arith-words", "max_new_tokens": 16}
    specs = default_models("chain5")
    lms = [load_model(s, device=device, dtype=dtype) for s in (*specs["teachers"], specs["primary"], specs["judge"])]
    if stack == "benchmark":
        lms = [benchmark_size(lm) for lm in lms]
    return {"teachers": [HFTeacher(lm) for lm in lms[:3]], "primary": HFTeacher(lms[3], name="primary"),
            "judge": Judge(lms[4]), "task": "chain5", "max_new_tokens": 48}


def cpu_rows(stack: str, problems: int, batch: int, device=None, dtype=None) -> list[dict]:
    """The stack's rows (see the module docstring) on its first ``problems`` train problems."""
    from agents.evaluation import evaluate, make_agent
    from agents.training.selfplay import SelfPlayJob, play_episodes
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import load_task

    from .teacher_samples import sample_answers

    models = _models(stack, device, dtype)
    task = load_task(models["task"])
    prompts = [p.prompt for p in task.problems("train")[:problems]]
    rows = []
    started = time.process_time()
    _, cost, _ = sample_answers(models["teachers"], prompts, SAMPLES, max_new_tokens=models["max_new_tokens"], seed=0)
    cpu = time.process_time() - started
    rows.append({"stack": stack, "row": f"teacher samples ({SAMPLES} per problem)", "episodes": len(prompts),
                 "cpu_per_episode": cpu / len(prompts), "tokens_per_cpu_second": sum(cost) / cpu})
    env_models = {k: models[k] for k in ("teachers", "primary", "judge")}
    base = env_models | {"task": models["task"], "max_new_tokens": models["max_new_tokens"]}
    for model in (*models["teachers"], models["primary"], models["judge"]):
        if model is not None:
            model.clear_caches()
    started = time.process_time()
    summary, _ = evaluate(make_agent("ensemble-greedy"), prompts, base, batch=min(batch, 8))
    cpu = time.process_time() - started
    rows.append({"stack": stack, "row": "ensemble greedy (env)", "episodes": summary.episodes,
                 "cpu_per_episode": cpu / summary.episodes,
                 "tokens_per_cpu_second": summary.forwarded_tokens * summary.episodes / cpu})
    variants = (("mcts:4 self-play, env panel rollouts", {}, ()),
                ("mcts:4 self-play, rollouts stepped through simulate", {"fast_rollouts": False}, ()),
                ("mcts:4 self-play, writer rollouts (fast rollout policy)", {}, (("rollout", "writer"),)))
    for name, env_extra, settings in variants:
        for model in (*models["teachers"], models["primary"], models["judge"]):
            if model is not None:
                model.clear_caches()
        env = TokenTreeEnv(**base, split="train", planner_verifier=True, **env_extra)
        items = [(i, p, [0]) for i, p in enumerate(prompts)]
        job = SelfPlayJob(agent="mcts:4", settings=settings, batch=batch)
        started = time.process_time()
        records = list(play_episodes(env, items, job))
        cpu = time.process_time() - started
        rows.append({"stack": stack, "row": name, "episodes": len(records), "cpu_per_episode": cpu / len(records),
                     "tokens_per_cpu_second": sum(r["forwarded_tokens"] for r in records) / cpu,
                     "solved": sum(r["hard_reward"] for r in records) / len(records)})
        env.close()
    sampling = rows[0]["tokens_per_cpu_second"]
    for r in rows:
        r["share_of_sampling"] = r["tokens_per_cpu_second"] / sampling
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| stack | row | episodes | CPU s / episode | forwarded tokens / CPU s | share of sampling's |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['stack']} | {r['row']} | {r['episodes']} | {r['cpu_per_episode']:.3f} | "
                     f"{r['tokens_per_cpu_second']:,.0f} | {100 * r['share_of_sampling']:.1f} % |")
    return "\n".join(lines) + "\n"


__all__ = ["cpu_rows", "markdown"]
