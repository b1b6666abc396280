"""The unbiased pass@k of a primary on a task's held-out problems (the learning benchmarks' end-of-run measure)."""

from __future__ import annotations


def pass_at_k(primary: str, task_name: str, n_problems: int, samples: int, ks, *, max_new_tokens: int = 48,
              seed: int = 0) -> dict:
    """The unbiased pass@k (Chen et al. 2021: ``1 - C(n-c, k) / C(n, k)``, averaged over problems) of a primary's
    ``samples`` temperature-1 answers to the first ``n_problems`` held-out problems, in its own prompt format."""
    from math import comb

    from tokentree_env.models import load_model
    from tokentree_env.models.generation import sample_ids
    from tokentree_env.models.prompts import prompt_ids
    from tokentree_env.tasks import load_task

    from .config import quiet_worker

    quiet_worker()
    lm, task = load_model(primary), load_task(task_name)
    problems = list(task.problems("heldout"))[:n_problems]
    drawn = sample_ids(lm.model, lm.tokenizer, [prompt_ids(lm.tokenizer, p.prompt) for p in problems], n=samples,
                       max_new_tokens=max_new_tokens, seed=seed)
    right = [sum(task.verify(p, lm.tokenizer.decode(ids, skip_special_tokens=True)) >= 0.5 for ids in answers)
             for p, answers in zip(problems, drawn, strict=True)]
    return {str(k): sum(1 - comb(samples - c, k) / comb(samples, k) for c in right) / len(right)
            for k in ks if k <= samples}


__all__ = ["pass_at_k"]
