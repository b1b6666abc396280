"""Which train prompts each iteration plays: a fresh draw per iteration, or a walk through a fixed pool.

The **pool** is the task's train split minus the validation slice (never played). By default each iteration draws
``prompts_per_iteration`` prompts of it afresh (seeded by ``(seed, iteration)``, so iterations may share prompts).
With ``TrainConfig.pool_walk`` the pool is put in one order per seed, fixed in advance, and every iteration takes
the first prompts of that order not played before: an arm whose round budget stops it early plays fewer prompts
that round, and the next round starts at the first prompt it has not played (one it skipped at the stop included),
so arms under one budget walk the same order as far as their budget takes them (the coverage comparison,
:mod:`tokentree_benchmarks.coverage`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence


def validation_problems(task, size: int, name: str | None = None) -> list:
    """The validation slice: ``size`` problems of the task's train split (seeded by ``name``, the task as the run
    names it: a built-in name or a file's path), never played."""
    train = list(task.problems("train"))
    return random.Random(f"validation:{name or task.name}").sample(train, min(size, len(train)))


def pool(task, validation_size: int, name: str | None = None) -> list[str]:
    """The train prompts a run may play: the train split minus the validation slice, in split order."""
    held = {p.prompt for p in validation_problems(task, validation_size, name)}
    return [p.prompt for p in task.problems("train") if p.prompt not in held]


def iteration_prompts(task, config, iteration: int, played: Iterable[dict] = ()) -> list[str]:
    """The prompts of ``iteration`` (see the module docstring); ``played``: the stored records of the run so far
    (a pool walk takes the first prompts of its order that earlier iterations did not play)."""
    prompts = pool(task, config.validation_size, config.task)
    n = min(config.prompts_per_iteration, len(prompts))
    if not config.pool_walk:
        return random.Random(f"{config.seed}:{iteration}").sample(prompts, n)
    done = {r["prompt"] for r in played if r.get("iteration", 0) < iteration}
    return [p for p in walk_order(prompts, config.seed) if p not in done][:n]


def walk_order(prompts: Sequence[str], seed: int) -> list[str]:
    """The pool in the fixed order a seed walks it."""
    order = list(prompts)
    random.Random(f"pool:{seed}").shuffle(order)
    return order
