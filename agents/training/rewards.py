"""Reward functions in TRL's signature ``(prompts, completions, **kwargs) -> list[float]``.

For ``GRPOTrainer`` / ``RLOOTrainer`` (on-policy RL of the primary on the env's rewards) or your own
TRL script. Built by small factories from the env's parts: the task verifier (hard reward), the
judge's verdict, and the teacher panel's mean log-prob of the completion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tokentree_env.tasks import Problem, Task
from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB
from tokentree_env.teachers.base import Context

RewardFunc = Callable[..., list[float]]


def verifier_reward(task: Task) -> RewardFunc:
    """Hard reward in [0, 1] from the task verifier; the dataset needs an ``answer`` column."""

    def task_verifier(prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str], **kwargs) -> list[float]:
        return [task.verify(Problem(p, a), c) for p, c, a in zip(prompts, completions, answer, strict=True)]

    return task_verifier


def task_reward() -> RewardFunc:
    """Hard reward in [0, 1] from each row's own task verifier: the dataset needs ``answer`` and ``task``
    columns (built-in task names or JSONL paths), so task rows and general-task replay rows share a batch."""
    from tokentree_env.tasks import load_task

    tasks: dict[str, Task] = {}

    def task_verifier(prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str],
                      task: Sequence[str], **kwargs) -> list[float]:
        out = []
        for p, c, a, name in zip(prompts, completions, answer, task, strict=True):
            if name not in tasks:
                tasks[name] = load_task(name)
            out.append(tasks[name].verify(Problem(p, a), c))
        return out

    return task_verifier


def judge_reward(judge, tasks: Sequence[str] | None = None) -> RewardFunc:
    """The judge's verdict as a shift in [-1, 1]: ``2 P(yes) - 1``; with ``tasks``, rows of other tasks (a
    ``task`` column) get 0, since a judge is trained for its own task."""

    def judge_verdict(prompts: Sequence[str], completions: Sequence[str], **kwargs) -> list[float]:
        names = kwargs.get("task") or [None] * len(prompts)
        return [2.0 * judge.verdict(p, c) - 1.0 if tasks is None or name in tasks else 0.0
                for p, c, name in zip(prompts, completions, names, strict=True)]

    return judge_verdict


def panel_logprob_reward(teachers: Sequence, tokenizer) -> RewardFunc:
    """Mean over teachers of the average log q(token | context) of the completion's primary tokens
    (teachers bound to ``tokenizer``'s vocabulary; their KV caches make each token one cached step)."""

    def panel_logprob(prompts: Sequence[str], completions: Sequence[str], **kwargs) -> list[float]:
        scores = []
        for prompt, completion in zip(prompts, completions, strict=True):
            ids = list(tokenizer(prompt)["input_ids"])
            tokens = tokenizer(completion, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            contexts, text = [], prompt
            for t in tokens:
                contexts.append(Context(tuple(ids), text))
                ids.append(t)
                text += tokenizer.decode([t], skip_special_tokens=True)
            per_teacher = []
            for teacher in teachers:
                lp = teacher.next_logprobs(contexts).clamp(min=UNMAPPED_LOGPROB)
                per_teacher.append(float(lp[range(len(tokens)), tokens].mean()))
            scores.append(sum(per_teacher) / len(per_teacher))
        return scores

    return panel_logprob
