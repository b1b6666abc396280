"""Coverage-first sampling: the no-search arm of "does search pay?". The prompts no teacher's greedy answer solved
get temperature samples instead of a search: one per prompt a round, round-robin over the teachers, each prompt
stopping at its first verified answer (the search's stop-and-keep rule) or at its cap. Every sample is charged to
its prompt's record; verified-wrong samples are kept as the rejected side of whole-answer DPO pairs."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence


def sample_unsolved(env, items: Sequence[tuple[int, str, Sequence[int]]], job) -> Iterator[dict]:
    """One record per prompt of ``items`` (prompt index, prompt, repeats): up to ``job.unsolved_samples`` samples at
    ``job.sample_temperature``, teacher ``k % K`` drawing the ``k``-th, all still-unsolved prompts in one batch a
    round. The round's seed is drawn from ``(job.seed, job.iteration, round, the first prompt index)``."""
    if not items:
        return
    teachers = len(env.teacher_names)
    right: dict[int, list[list[int]]] = {i: [] for i, _, _ in items}
    wrong: dict[int, list[list[int]]] = {i: [] for i, _, _ in items}
    prompts = {i: p for i, p, _ in items}
    prepared = {i: env.claim_preparation(p) for i, p in prompts.items()}  # the teachers' greedy answers, apart
    draws = dict.fromkeys(prompts, 0)
    for k in range(job.unsolved_samples):
        todo = [i for i in prompts if not right[i]]
        if not todo:
            break
        seed = random.Random(f"{job.seed}:{job.iteration}:{k}:{items[0][0]}").randrange(2**31)
        samples = env.teacher_samples([prompts[i] for i in todo], k % teachers, 1,
                                      temperature=job.sample_temperature, seed=seed)
        for i, (answer,) in zip(todo, samples, strict=True):
            draws[i] += 1
            ok = env.verify(prompts[i], env.decode(answer)) >= 0.5
            bucket = right[i] if ok else wrong[i]
            if answer not in bucket:
                bucket.append(answer)
    for index, prompt, repeats in items:
        sampled = env.claim_preparation(prompt)  # the samples alone
        cost = {m: {f: c.get(f, 0) + sampled.get(m, {}).get(f, 0) for f in c} for m, c in prepared[index].items()}
        cost |= {m: c for m, c in sampled.items() if m not in cost}
        answer = min(right[index] or wrong[index] or [[]], key=len)
        solved = float(bool(right[index]))
        yield {"agent": f"teacher-samples:{job.unsolved_samples}", "source": "samples", "prompt": prompt,
               "prompt_index": index, "repeat": min(repeats), "completion": env.decode(answer), "tokens": list(answer),
               "prompt_ids": env.prompt_ids(prompt), "hard_reward": solved, "episode_return": solved, "records": [],
               "verified_answers": right[index], "wrong_answers": wrong[index], "steps": 0, "draws": draws[index],
               "sample_forwarded_by_model": {m: c["forwarded_tokens"] for m, c in sampled.items()},
               "forwarded_tokens": sum(c["forwarded_tokens"] for c in cost.values()),
               "forwarded_by_model": {m: c["forwarded_tokens"] for m, c in cost.items()},
               "model_calls": sum(c["forward_calls"] for c in cost.values()),
               "generated_tokens": sum(c["generated_tokens"] for c in cost.values()), "reward_terms": {},
               "terminal_reason": None, "seconds": 0.0, "weightage_update": {}, "iteration": job.iteration}
