"""Problems, verifiers and the :class:`Task` container.

A task yields prompts with reference answers and a verifier that extracts the final answer
from any answer style ("47+20=67.", "67.", "The answer is 67") and returns a hard reward
in [0, 1].
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tokentree_env.errors import ConfigError
from tokentree_env.tasks.answer_format import AnswerFormat

Split = Literal["train", "heldout"]
SPLITS: tuple[str, ...] = ("train", "heldout")

Verifier = Callable[[str, str], float]
"""A verifier maps ``(completion, reference_answer)`` to a hard reward in [0, 1]."""

_TERMINAL_PUNCTUATION = ".!?"
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def extract_final_answer(completion: str) -> str:
    """Return the final answer of a completion, whatever its style.

    Takes the last non-empty line, then the text after its last ``=`` (so a chain of
    partial sums "47+20=67." gives "67"), stripped of whitespace and of terminal
    punctuation. An unfinished chain ("47+20=") gives "".
    """
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    if "=" in last:
        last = last.rsplit("=", 1)[1]
    return last.strip().rstrip(_TERMINAL_PUNCTUATION).strip()


def final_number(completion: str) -> str:
    """The final answer of a completion as a numeric verifier reads it: its last number, when it has one."""
    answer = extract_final_answer(completion)
    numbers = _NUMBER.findall(answer)
    return numbers[-1] if numbers else answer


def majority_index(completions: Sequence[str]) -> int:
    """Index of the completion whose final answer most completions share (a majority vote over final
    answers); a tie goes to the lowest index among the tied answers (the lowest-numbered teacher).
    Completions with no answer vote for nothing; if none has one, 0."""
    finals = [final_number(c) for c in completions]
    counts: dict[str, int] = {}
    for f in finals:
        if f:
            counts[f] = counts.get(f, 0) + 1
    if not counts:
        return 0
    top = max(counts.values())
    return next(i for i, f in enumerate(finals) if f and counts[f] == top)


def exact_verifier(completion: str, answer: str) -> float:
    """1.0 if the extracted final answer equals the reference exactly, else 0.0."""
    return float(extract_final_answer(completion) == answer.strip())


def numeric_verifier(completion: str, answer: str) -> float:
    """1.0 if the last number of the extracted final answer equals the reference number.

    "The answer is 67." and "47+20=67." both give 67; "67.5" is not 67; no number gives 0.
    """
    numbers = _NUMBER.findall(extract_final_answer(completion))
    if not numbers:
        return 0.0
    try:
        return float(abs(float(numbers[-1]) - float(answer)) < 1e-9)
    except ValueError:
        return 0.0


def import_verifier(spec: str) -> Verifier:
    """Import a user verifier given as ``"package.module:function"``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"verifier {spec!r} is not 'exact', 'numeric' or 'module:function'; "
            "give a user verifier as 'package.module:function'"
        )
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import verifier {spec!r}: {exc}") from exc
    if not callable(fn):
        raise ConfigError(f"verifier {spec!r} is not callable (got {type(fn).__name__})")
    return fn


def resolve_verifier(spec: str | Verifier | None, default: Verifier = exact_verifier) -> Verifier:
    """Turn ``"exact"``, ``"numeric"``, ``"module:function"`` or a callable into a verifier."""
    if spec is None:
        return default
    if callable(spec):
        return spec
    if spec == "exact":
        return exact_verifier
    if spec == "numeric":
        return numeric_verifier
    return import_verifier(spec)


@dataclass(frozen=True)
class Problem:
    """One prompt with its reference final answer.

    ``solutions`` holds full reference completions by style name (for the built-in tasks:
    ``"step"`` and ``"terse"``); ``verifier`` overrides the task's verifier for this problem. ``key`` is its
    content (what it asks: for a word problem its numbers and operations, whatever the wording); None means the
    prompt text is the content (:attr:`content_key`).
    """

    prompt: str
    answer: str
    solutions: dict[str, str] = field(default_factory=dict, compare=False)
    verifier: Verifier | None = field(default=None, compare=False, repr=False)
    key: Hashable | None = field(default=None, compare=False)

    @property
    def content_key(self) -> Hashable:
        """What the problem asks: its ``key``, or its prompt text when it has none. A task held out by content
        never trains on a problem whose content key is held out."""
        return self.prompt if self.key is None else self.key


@dataclass
class Task:
    """A named list of problems in a train and a held-out split, a verifier, and how answers are laid out (answer
    styles and step boundaries, :class:`~tokentree_env.tasks.answer_format.AnswerFormat`)."""

    name: str
    splits: dict[str, Sequence[Problem]]
    verifier: Verifier = exact_verifier
    description: str = ""
    answer_format: AnswerFormat = field(default_factory=AnswerFormat)

    def problems(self, split: Split = "train") -> Sequence[Problem]:
        """The problems of ``split`` ("train" or "heldout")."""
        if split not in self.splits:
            raise ConfigError(f"split {split!r} is not one of {sorted(self.splits)}")
        return self.splits[split]

    def solve(self, prompt: str) -> Problem | None:
        """The problem ``prompt`` asks, with its answer, where the task can work it out from the text alone; None
        where it cannot (then the env scores an answer to ``prompt`` only when given ``options={"answer": ...}``)."""
        return None

    def verify(self, problem: Problem, completion: str) -> float:
        """Hard reward in [0, 1] of ``completion`` as an answer to ``problem``."""
        verifier = problem.verifier or self.verifier
        return float(min(1.0, max(0.0, verifier(completion, problem.answer))))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"Task(name={self.name!r}, {sizes})"
