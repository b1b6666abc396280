"""The built-in task suite: generated problems with fixed, seeded train/held-out splits.

- ``chain3`` (the default): sums of exactly three 2-digit numbers, answered as a chain of
  partial sums ("12+35+20=" -> "47+20=67.") or tersely ("67."). Multi-step, so trees have
  depth and every answer ends with ".".
- ``add2``: 2-digit addition ("12+35=" -> "47.").
- ``reverse``: the general task, of a different kind: reverse 3-5 lowercase letters
  ("rev abcd=" -> "dcba."). Forgetting is measured on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tokentree_env.errors import ConfigError
from tokentree_env.tasks.base import Problem, Task, exact_verifier, numeric_verifier

DEFAULT_TASK = "chain3"
HELDOUT_SIZE = 500
TRAIN_SIZE = 4000
SPLIT_SEED = 20261128
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _sum_problem(terms: list[int]) -> Problem:
    """A sum problem with its step-by-step and terse reference solutions."""
    prompt = "+".join(map(str, terms)) + "="
    partial, steps = terms[0], []
    for term in terms[1:-1]:
        partial += term
        steps.append(f"{partial}")
    total = sum(terms)
    if len(terms) > 2:
        chain = "".join(f"{p}+{t}=" for p, t in zip(steps, terms[2:], strict=True))
        step = f"{chain}{total}."
    else:
        step = f"{total}."
    return Problem(prompt, str(total), solutions={"step": step, "terse": f"{total}."})


def sample_sum(rng: random.Random, n_terms: int) -> Problem:
    """A random sum of ``n_terms`` 2-digit numbers (10-99)."""
    return _sum_problem([rng.randint(10, 99) for _ in range(n_terms)])


def sample_reverse(rng: random.Random) -> Problem:
    """A random string-reversal problem over 3-5 lowercase letters."""
    word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 5)))
    answer = word[::-1]
    return Problem(f"rev {word}=", answer, solutions={"step": f"{answer}.", "terse": f"{answer}."})


class GeneratedTask(Task):
    """A task whose problems come from a sampler; splits are fixed by :data:`SPLIT_SEED`.

    The held-out split is drawn first; the train split and :meth:`sample` never return a
    held-out prompt, so training on samples cannot leak the evaluation set.
    """

    def __init__(
        self,
        name: str,
        sampler: Callable[[random.Random], Problem],
        *,
        verifier=exact_verifier,
        description: str = "",
        heldout_size: int = HELDOUT_SIZE,
        train_size: int = TRAIN_SIZE,
        seed: int = SPLIT_SEED,
    ) -> None:
        self.sampler = sampler
        rng = random.Random(f"{seed}:{name}")
        heldout = _unique(sampler, rng, heldout_size, exclude=set())
        self.heldout_prompts = frozenset(p.prompt for p in heldout)
        train = _unique(sampler, rng, train_size, exclude=set(self.heldout_prompts))
        super().__init__(name, {"train": train, "heldout": heldout}, verifier, description)

    def sample(self, rng: random.Random) -> Problem:
        """A fresh training problem (never a held-out prompt)."""
        while True:
            problem = self.sampler(rng)
            if problem.prompt not in self.heldout_prompts:
                return problem


def _unique(sampler, rng: random.Random, n: int, exclude: set[str]) -> list[Problem]:
    out: list[Problem] = []
    seen = exclude
    for _ in range(50 * n):
        if len(out) == n:
            break
        problem = sampler(rng)
        if problem.prompt not in seen:
            seen.add(problem.prompt)
            out.append(problem)
    return out


_BUILTIN: dict[str, Callable[[], GeneratedTask]] = {
    "chain3": lambda: GeneratedTask(
        "chain3",
        lambda rng: sample_sum(rng, 3),
        verifier=numeric_verifier,
        description="sum of three 2-digit numbers, answered as a chain of partial sums",
    ),
    "add2": lambda: GeneratedTask(
        "add2", lambda rng: sample_sum(rng, 2), verifier=numeric_verifier,
        description="2-digit addition",
    ),
    "reverse": lambda: GeneratedTask(
        "reverse", sample_reverse, verifier=exact_verifier,
        description="reverse 3-5 lowercase letters (the general task)",
    ),
}
BUILTIN_TASKS: tuple[str, ...] = tuple(_BUILTIN)
_CACHE: dict[str, GeneratedTask] = {}


def builtin_task(name: str = DEFAULT_TASK) -> GeneratedTask:
    """The built-in task ``name`` ("chain3", "add2" or "reverse"); built once, then shared."""
    if name not in _BUILTIN:
        raise ConfigError(f"unknown built-in task {name!r}; choose one of {list(BUILTIN_TASKS)}")
    if name not in _CACHE:
        _CACHE[name] = _BUILTIN[name]()
    return _CACHE[name]
