"""Reward functions in TRL's signature ``(prompts, completions, **kwargs) -> list[float]``.

For ``GRPOTrainer`` / ``RLOOTrainer`` (on-policy RL of the primary on the env's rewards) or your own
TRL script. Built by small factories from the env's parts: the task verifier (hard reward) and the judge's verdict.
(The teacher panel's log-likelihood of a path is the env's ``panel_logprob`` reward term, computed in one place,
:mod:`tokentree_env.scoring.panel`; an agent reads a path's total through ``env.panel_path_logprob``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tokentree_env.tasks import Problem, Task

RewardFunc = Callable[..., list[float]]


def as_text(value) -> str:
    """A prompt or completion as text: TRL's conversational rows (lists of messages) give their last message's
    content (the user's prompt, the assistant's answer)."""
    if isinstance(value, list):
        return str(value[-1]["content"]) if value else ""
    return value


def verifier_reward(task: Task) -> RewardFunc:
    """Hard reward in [0, 1] from the task verifier; the dataset needs an ``answer`` column."""

    def task_verifier(prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str], **kwargs) -> list[float]:
        return [task.verify(Problem(as_text(p), a), as_text(c)) for p, c, a in zip(prompts, completions, answer,
                                                                                 strict=True)]

    return task_verifier


def task_reward(tasks: dict[str, Task] | None = None) -> RewardFunc:
    """Hard reward in [0, 1] from each row's own task verifier: the dataset needs ``answer`` and ``task``
    columns (built-in task names or JSONL paths), so task rows and general-task replay rows share a batch.
    ``tasks``: tasks already loaded by name (a task file with its chosen verifier); others load by name."""
    from tokentree_env.tasks import load_task

    tasks = dict(tasks or {})

    def task_verifier(prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str],
                      task: Sequence[str], **kwargs) -> list[float]:
        out = []
        for p, c, a, name in zip(prompts, completions, answer, task, strict=True):
            if name not in tasks:
                tasks[name] = load_task(name)
            out.append(tasks[name].verify(Problem(as_text(p), a), as_text(c)))
        return out

    return task_verifier


def judge_reward(judge, tasks: Sequence[str] | None = None) -> RewardFunc:
    """The judge's verdict as a shift in [-1, 1]: ``2 P(yes) - 1``; with ``tasks``, rows of other tasks (a
    ``task`` column) get 0, since a judge is trained for its own task."""

    def judge_verdict(prompts: Sequence[str], completions: Sequence[str], **kwargs) -> list[float]:
        names = kwargs.get("task") or [None] * len(prompts)
        return [2.0 * judge.verdict(as_text(p), as_text(c)) - 1.0 if tasks is None or name in tasks else 0.0
                for p, c, name in zip(prompts, completions, names, strict=True)]

    return judge_verdict
