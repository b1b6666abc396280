"""The teachers' own temperature-1 samples, round-robin: what rejection-sampling fine-tuning collects, as a row of
the search benchmark.

``n`` samples per problem, drawn in turn from each teacher (teacher ``i % K`` draws sample ``i``), each in the
teacher's own prompt format (:meth:`~tokentree_env.teachers.hf.HFTeacher.prompt_ids`), from a seeded stream. Each sample is
charged what its model forwarded (``agents.compute``): its prompt once per (problem, teacher), its cache expanded across
that teacher's draws, then each draw's tokens. The answer the row gives is chosen:

- ``"verifier"`` (self-play): right if any sample is right (what RFT keeps);
- ``"majority"`` (evaluation): the final answer most samples share (ties: the earliest sample);
- ``"judge"`` (evaluation, judge on): the sample the judge likes best; its verdicts' forwards are charged too.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokentree_env.tasks import majority_index

CHOOSERS = ("verifier", "majority", "judge")


def sample_answers(teachers: Sequence, prompts: Sequence[str], n: int, *, max_new_tokens: int, seed: int
                   ) -> tuple[list[list[str]], list[int], list[dict[str, int]]]:
    """``n`` round-robin temperature-1 samples per prompt (texts), each prompt's forwarded tokens, and the same per
    model (by the teachers' names)."""
    from tokentree_env.models.generation import sample_rows

    k = len(teachers)
    texts: list[list[str | None]] = [[None] * n for _ in prompts]
    cost = [0] * len(prompts)
    by_model: list[dict[str, int]] = [{} for _ in prompts]
    for t, teacher in enumerate(teachers):
        draws = len(range(t, n, k))  # this teacher's share of the n samples
        if not draws:
            continue
        rows = [teacher.prompt_ids(p) for p in prompts]  # the teacher's own format, as its reference answers
        drawn, forwarded = sample_rows(teacher.model, teacher.tokenizer, rows, n=draws, max_new_tokens=max_new_tokens,
                                       seed=seed * 7919 + t)
        for i, (news, fed) in enumerate(zip(drawn, forwarded, strict=True)):
            for j, new in enumerate(news):
                texts[i][t + j * k] = teacher.tokenizer.decode(new, skip_special_tokens=True)
            cost[i] += fed  # the prompt once (its cache expanded across the draws), then each draw's tokens
            by_model[i][teacher.name] = by_model[i].get(teacher.name, 0) + fed
    return [[text or "" for text in row] for row in texts], cost, by_model


def choose(samples: Sequence[str], how: str, *, verify=None, judge=None, prompt: str = "") -> int:
    """The index of the sample a row answers with (see the module docstring)."""
    if how == "verifier":
        return next((i for i, s in enumerate(samples) if verify(s) >= 0.5), 0)
    if how == "majority":
        return majority_index(list(samples))
    verdicts = judge.verdicts([prompt] * len(samples), list(samples))
    return max(range(len(samples)), key=lambda i: (verdicts[i], -i))


def play(teachers: Sequence, judge, task, problems: Sequence, n: int, how: str, *, max_new_tokens: int,
         seed: int) -> list[dict]:
    """The row on ``problems``: per problem, whether its chosen sample is right and what the row forwarded."""
    samples, cost, by_model = sample_answers(teachers, [p.prompt for p in problems], n, max_new_tokens=max_new_tokens,
                                             seed=seed)
    out = []
    for problem, texts, forwarded, models in zip(problems, samples, cost, by_model, strict=True):
        before = judge.counters.forwarded_tokens if judge is not None else 0
        index = choose(texts, how, verify=lambda s, p=problem: task.verify(p, s), judge=judge, prompt=problem.prompt)
        judged = (judge.counters.forwarded_tokens - before) if judge is not None else 0
        out.append({"prompt": problem.prompt, "completion": texts[index], "correct": task.verify(problem, texts[index]),
                    "forwarded_tokens": forwarded + judged, "samples": len(texts),
                    "forwarded_by_model": models | ({f"judge:{judge.name}": judged} if judge is not None else {}),
                    "any_right": any(task.verify(problem, s) >= 0.5 for s in texts)})
    return out


__all__ = ["CHOOSERS", "choose", "play", "sample_answers"]
