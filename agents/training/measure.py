"""Measuring a model on its own: greedy accuracy on a list of problems, in batches (the evaluation phase
reports itself to the stop test hook between batches)."""

from __future__ import annotations

from collections.abc import Sequence

from agents.training.stopping import phase_reached

BATCH = 50


def greedy_accuracy(lm, task, problems: Sequence, *, max_new_tokens: int = 48) -> float:
    """Mean hard reward of ``lm``'s greedy answers (no teachers, no search) to ``problems`` of a task (a name or a
    ``Task``), each prompt read in the primary's one format (its chat template when it has one)."""
    results = greedy_results(lm, task, problems, max_new_tokens=max_new_tokens)
    return sum(results) / max(1, len(results))


def greedy_results(lm, task, problems: Sequence, *, max_new_tokens: int = 48) -> list[float]:
    """The hard reward of ``lm``'s greedy answer to each problem (see :func:`greedy_accuracy`)."""
    from tokentree_env.models.generation import greedy_ids
    from tokentree_env.models.prompts import prompt_ids
    from tokentree_env.tasks import load_task

    task, problems, out = load_task(task), list(problems), []
    for start in range(0, len(problems), BATCH):
        chunk = problems[start:start + BATCH]
        rows = [prompt_ids(lm.tokenizer, p.prompt) for p in chunk]  # the primary's one format: as searched, trained
        answers = [lm.tokenizer.decode(ids, skip_special_tokens=True)
                   for ids in greedy_ids(lm.model, lm.tokenizer, rows, max_new_tokens=max_new_tokens)]
        out += [task.verify(p, a) for p, a in zip(chunk, answers, strict=True)]
        phase_reached("evaluation")
    return out


def teacher_accuracies(teachers: Sequence[str], task_name, n: int, *, max_new_tokens: int = 48) -> dict[str, float]:
    """Each local teacher's greedy held-out accuracy on the first ``n`` held-out problems, answering as it does
    in the env (its chat template, when it has one) in ``max_new_tokens``; remote teachers are skipped. Batched
    ``generate`` for every model (no tree reads these answers, so nothing is decoded through a KV store to warm
    it)."""
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    task = load_task(task_name)
    problems = task.problems("heldout")[:n]
    out = {}
    for spec in teachers:
        if spec.startswith("openai:"):
            continue
        answers = HFTeacher(spec).answers([p.prompt for p in problems], max_new_tokens=max_new_tokens,
                                                warm_cache=False)
        out[spec] = sum(task.verify(p, a) for p, a in zip(problems, answers, strict=True)) / max(1, len(problems))
    return out
