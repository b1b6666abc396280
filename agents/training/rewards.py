"""Reward functions in TRL's signature ``(prompts, completions, **kwargs) -> list[float]``.

For ``GRPOTrainer`` / ``RLOOTrainer`` (on-policy RL of the primary on the env's rewards) or your own
TRL script. Built by small factories from the env's parts: the task verifier (hard reward), the
judge's verdict, and the teacher panel's log-likelihood of the completion (per token, under the env's panel rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tokentree_env.models.prompts import prompt_ids, prompt_text
from tokentree_env.scoring.panel import Panel, PanelConfig
from tokentree_env.tasks import Problem, Task
from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB
from tokentree_env.teachers.base import Context

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


def panel_logprob_reward(teachers: Sequence, tokenizer, panel: PanelConfig | str | dict | None = None) -> RewardFunc:
    """The teacher panel's log-likelihood of the completion per primary token, under ``panel`` (the env's rule; the
    mixture by default, :mod:`tokentree_env.scoring.panel`): the mean over the completion's tokens of the per-step
    panel log-prob that the env pays as its ``panel_logprob`` term, the weights following the path as in the env.

    ``teachers`` must be bound to ``tokenizer``'s vocabulary (an env's ``expander.teachers`` are); an empty
    completion is scored as its EOS. One batched call per teacher per completion (their KV caches make each token
    one cached step)."""
    rule = Panel(panel, len(teachers))

    def panel_logprob(prompts: Sequence[str], completions: Sequence[str], **kwargs) -> list[float]:
        scores = []
        for prompt, completion in zip(prompts, completions, strict=True):
            prompt, completion = as_text(prompt), as_text(completion)
            ids, text = prompt_ids(tokenizer, prompt), prompt_text(tokenizer, prompt)
            tokens = tokenizer(completion, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            contexts = []
            for t in tokens:
                contexts.append(Context(tuple(ids), text))
                ids.append(t)
                text += tokenizer.decode([t], skip_special_tokens=True)
            per_teacher = [teacher.next_logprobs(contexts).clamp(min=UNMAPPED_LOGPROB)[range(len(tokens)), tokens]
                           for teacher in teachers]  # K x (T,)
            token_logprobs = np.stack([lp.double().numpy() for lp in per_teacher], axis=1)  # (T, K)
            scores.append(rule.path_logprob(token_logprobs) / len(tokens))
        return scores

    return panel_logprob
