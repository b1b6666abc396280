"""Measuring a model on its own: greedy accuracy on a list of problems, in batches (the evaluation phase
reports itself to the stop test hook between batches)."""

from __future__ import annotations

from collections.abc import Sequence

from agents.training.stopping import phase_reached

BATCH = 50


def greedy_accuracy(lm, task, problems: Sequence, *, max_new_tokens: int = 48) -> float:
    """Mean hard reward of ``lm``'s greedy answers (no teachers, no search) to ``problems`` of a task (a name or a
    ``Task``)."""
    from tokentree_env.models.generation import greedy_complete
    from tokentree_env.tasks import load_task

    task, problems, total = load_task(task), list(problems), 0.0
    for start in range(0, len(problems), BATCH):
        chunk = problems[start:start + BATCH]
        answers = greedy_complete(lm.model, lm.tokenizer, [p.prompt for p in chunk], max_new_tokens=max_new_tokens)
        total += sum(task.verify(p, a) for p, a in zip(chunk, answers, strict=True))
        phase_reached("evaluation")
    return total / max(1, len(problems))


def teacher_accuracies(teachers: Sequence[str], task_name, n: int) -> dict[str, float]:
    """Each local teacher's greedy held-out accuracy on the first ``n`` held-out problems, answering as it does
    in the env (its chat template, when it has one); remote teachers are skipped."""
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    task = load_task(task_name)
    problems = task.problems("heldout")[:n]
    out = {}
    for spec in teachers:
        if spec.startswith("openai:"):
            continue
        answers = HFTeacher(spec).answers([p.prompt for p in problems], max_new_tokens=48)
        out[spec] = sum(task.verify(p, a) for p, a in zip(problems, answers, strict=True)) / max(1, len(problems))
    return out
