"""The built-in task suite: generated problems with fixed, seeded train/held-out splits.

- ``chain3`` (the default): sums of exactly three 2-digit numbers, answered as a chain of
  partial sums ("12+35+20=" -> "47+20=67.") or tersely ("67."). Multi-step, so trees have
  depth and every answer ends with ".".
- ``chain5``: five 2-digit numbers joined by ``+`` or ``-`` ("47-12+85-30+19="), answered as a
  chain of partial results ("35+85=120-30=90+19=109."), with the first operation written out
  ("47-12=35+85=120-30=90+19=109.") or tersely ("109."). A ``-`` is drawn only where the partial
  result stays >= 0, so every partial result is a whole number from 0 to 495. The hard test-bed:
  four decisive steps, each a place to err.
- ``chain5-skills``: ``chain5``'s problems and answer, each step of a declared kind (plain, a units carry, a units
  borrow, a hundred crossed; :mod:`tokentree_env.tasks.skills`): the test-bed where teachers with systematic,
  complementary blind spots must combine.
- ``add2``: 2-digit addition ("12+35=" -> "47.").
- ``reverse``: the general task, of a different kind: reverse 3-5 lowercase letters
  ("rev abcd=" -> "dcba."). Forgetting is measured on it.
- ``arith-words``: one-digit arithmetic asked in words, for real language models
  ("Question: What is seven plus five?\nAnswer:" -> " 12"); the verifier reads the last number of the
  answer's first line, in digits or in words. Its held-out problems repeat train facts: 189 of 200.
- ``arith2-words``: one- and two-step word problems held out by content, calibrated on the two real models
  (:mod:`tokentree_env.tasks.word_problems`).
- ``probe-words``: a general-ability probe SmolLM2 starts good at (:mod:`tokentree_env.tasks.probe`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Hashable, Iterable

from tokentree_env.errors import ConfigError
from tokentree_env.tasks.answer_format import AnswerFormat, chain_format
from tokentree_env.tasks.base import Problem, Task, exact_verifier, numeric_verifier
from tokentree_env.tasks.skills import sample_skills_chain

DEFAULT_TASK = "chain3"
HELDOUT_SIZE = 500
TRAIN_SIZE = 4000
SPLIT_SEED = 20261128
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _sum_problem(terms: list[int], ops: list[str] | None = None) -> Problem:
    """A problem ``t1 op t2 op ... =`` with its reference solutions: ``"step"`` (a chain of partial
    results, "47+20=67."), ``"explicit"`` (the chain with the first operation written out,
    "12+35=47+20=67."), ``"partials"`` (the partial results alone, "47,67.") and ``"terse"`` ("67.")."""
    ops = ops if ops is not None else ["+"] * (len(terms) - 1)
    prompt = str(terms[0]) + "".join(f"{op}{t}" for op, t in zip(ops, terms[1:], strict=True)) + "="
    partials = [terms[0]]
    for op, term in zip(ops, terms[1:], strict=True):
        partials.append(partials[-1] + term if op == "+" else partials[-1] - term)
    total = partials[-1]
    chain = "".join(f"{p}{op}{t}=" for p, op, t in zip(partials[1:-1], ops[1:], terms[2:], strict=True))
    explicit = f"{terms[0]}{ops[0]}{terms[1]}=" + chain if len(terms) > 2 else prompt
    return Problem(prompt, str(total), solutions={"step": f"{chain}{total}.", "explicit": f"{explicit}{total}.",
                                                  "partials": ",".join(map(str, partials[1:])) + ".",
                                                  "terse": f"{total}."})


def parse_chain(prompt: str) -> tuple[list[int], list[str]]:
    """The terms and operators of a ``t1 op t2 op ... =`` prompt."""
    body = prompt.rstrip("=")
    return [int(t) for t in re.split(r"[+-]", body)], re.findall(r"[+-]", body)


def render(terms: list[int], ops: list[str], partials: list[int], style: str) -> str:
    """An answer in ``style`` ("step", "explicit", "partials", "terse") from the partial results it states
    (``partials[0]`` is the first term; they need not be right: a checker learns from wrong ones)."""
    if style == "terse":
        return f"{partials[-1]}."
    if style == "partials":
        return ",".join(map(str, partials[1:])) + "."
    chain = "".join(f"{p}{op}{t}=" for p, op, t in zip(partials[1:-1], ops[1:], terms[2:], strict=True))
    head = f"{terms[0]}{ops[0]}{terms[1]}=" if style == "explicit" and len(terms) > 2 else ""
    return f"{head}{chain}{partials[-1]}."


def solve_chain(prompt: str) -> Problem | None:
    """The ``t1 op t2 op ... =`` problem ``prompt`` asks (``+`` and ``-``), worked out; None for any other text."""
    if not re.fullmatch(r"\d+(?:[+-]\d+)+=", prompt):
        return None
    problem = _sum_problem(*parse_chain(prompt))
    return problem if problem.prompt == prompt else None  # "012+3=" is not written as the task writes it


def solve_reverse(prompt: str) -> Problem | None:
    """The ``rev WORD=`` problem ``prompt`` asks, worked out; None for any other text."""
    match = re.fullmatch(r"rev ([a-z]+)=", prompt)
    return None if match is None else Problem(prompt, match[1][::-1], solutions={"step": f"{match[1][::-1]}."})


def sample_sum(rng: random.Random, n_terms: int) -> Problem:
    """A random sum of ``n_terms`` 2-digit numbers (10-99)."""
    return _sum_problem([rng.randint(10, 99) for _ in range(n_terms)])


def sample_chain(rng: random.Random, n_terms: int) -> Problem:
    """``n_terms`` 2-digit numbers joined by ``+`` or ``-`` (even odds), a ``-`` only where the partial
    result stays >= 0."""
    terms = [rng.randint(10, 99) for _ in range(n_terms)]
    ops, partial = [], terms[0]
    for term in terms[1:]:
        op = "-" if rng.random() < 0.5 and partial >= term else "+"
        ops.append(op)
        partial = partial + term if op == "+" else partial - term
    return _sum_problem(terms, ops)


def sample_skills(rng: random.Random, n_terms: int = 5) -> Problem:
    """A ``chain5-skills`` problem: a chain whose steps are of declared kinds (:mod:`tokentree_env.tasks.skills`)."""
    return _sum_problem(*sample_skills_chain(rng, n_terms))


def sample_reverse(rng: random.Random) -> Problem:
    """A random string-reversal problem over 3-5 lowercase letters."""
    word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 5)))
    answer = word[::-1]
    return Problem(f"rev {word}=", answer, solutions={"step": f"{answer}.", "terse": f"{answer}."})


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_QUESTIONS = ("What is {a} {op} {b}?", "How much is {a} {op} {b}?", "Compute {a} {op} {b}.")


def number_word(n: int) -> str:
    """English words of a whole number from 0 to 99 ("seventy-two")."""
    if n < 20:
        return NUMBER_WORDS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + (f"-{NUMBER_WORDS[units]}" if units else "")


def sample_words(rng: random.Random) -> Problem:
    """One-digit arithmetic asked in words: plus, minus (never below zero) or times."""
    a, b, op = rng.randint(0, 9), rng.randint(0, 9), rng.choice(("plus", "minus", "times"))
    if op == "minus" and b > a:
        a, b = b, a
    value = a + b if op == "plus" else a - b if op == "minus" else a * b
    question = rng.choice(_QUESTIONS).format(a=number_word(a), op=op, b=number_word(b))
    return Problem(f"Question: {question}\nAnswer:", str(value), solutions={"terse": f" {value}"})


def words_verifier(completion: str, answer: str) -> float:
    """1.0 if the last number of the completion's first non-empty line, in digits or in English words, equals
    the answer ("12", "twelve", "The answer is 12.", "7 + 5 = 12" and "Seven plus five is twelve." all pass: a
    model that restates the question before answering is read at its result; a later line is never read)."""
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    if not lines:
        return 0.0
    words = {number_word(n): n for n in range(100)}
    values = [int(token) if token.lstrip("-").isdigit() else words.get(token)
              for token in re.findall(r"-?\d+|[a-z]+(?:-[a-z]+)?", lines[0].lower())]
    values = [v for v in values if v is not None]
    return float(bool(values) and str(values[-1]) == answer.strip())


Facts = Callable[[Problem], Iterable[Hashable]]
"""What a problem asks, as facts (a word problem's steps); by default its content key alone."""


def content_only(problem: Problem) -> tuple[Hashable]:
    """The default facts of a problem: its content key alone (its prompt text when it has no key)."""
    return (problem.content_key,)


class GeneratedTask(Task):
    """A task whose problems come from a sampler; splits are fixed by :data:`SPLIT_SEED`.

    The held-out split is drawn first, with distinct content keys
    (:attr:`~tokentree_env.tasks.base.Problem.content_key`: a problem's ``key``, or its prompt text when the
    sampler gives none). It is held out **by content**: the train split and :meth:`sample` never return a problem
    that shares a fact with a held-out problem (``facts``: by default a problem's content key alone; a word
    problem's facts are its steps), so a rewording never re-asks held-out content and training on samples cannot
    leak the evaluation set. Train keys are distinct too.
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
        answer_format: AnswerFormat | None = None,
        solver: Callable[[str], Problem | None] | None = None,
        facts: Facts = content_only,
    ) -> None:
        self.sampler, self.solver = sampler, solver
        self.facts = facts
        rng = random.Random(f"{seed}:{name}")
        heldout = _unique(sampler, rng, heldout_size, exclude=set())
        self.heldout_prompts = frozenset(p.prompt for p in heldout)
        self.heldout_keys = frozenset(p.content_key for p in heldout)
        self.heldout_facts = frozenset(f for p in heldout for f in facts(p))
        train = _unique(sampler, rng, train_size, exclude=set(self.heldout_keys), allowed=self.trainable)
        super().__init__(name, {"train": train, "heldout": heldout}, verifier, description,
                         answer_format or AnswerFormat())

    def solve(self, prompt: str) -> Problem | None:
        """The problem ``prompt`` asks, worked out by the task's ``solver`` (None without one)."""
        return None if self.solver is None else self.solver(prompt)

    def trainable(self, problem: Problem) -> bool:
        """Whether ``problem`` may be trained on: its key is not held out and it shares no fact with the held-out
        split."""
        return problem.content_key not in self.heldout_keys and self.heldout_facts.isdisjoint(self.facts(problem))

    def sample(self, rng: random.Random) -> Problem:
        """A fresh training problem (never one that shares content with the held-out split: :meth:`trainable`)."""
        while True:
            problem = self.sampler(rng)
            if self.trainable(problem):
                return problem


def _unique(sampler, rng: random.Random, n: int, exclude: set,
            allowed: Callable[[Problem], bool] = lambda problem: True) -> list[Problem]:
    """Up to ``n`` allowed problems with distinct content keys, none in ``exclude`` (which grows with the keys
    drawn)."""
    out: list[Problem] = []
    seen = exclude
    for _ in range(50 * n):
        if len(out) == n:
            break
        problem = sampler(rng)
        if problem.content_key not in seen and allowed(problem):
            seen.add(problem.content_key)
            out.append(problem)
    return out


_BUILTIN: dict[str, Callable[[], GeneratedTask]] = {
    "chain3": lambda: GeneratedTask(
        "chain3",
        lambda rng: sample_sum(rng, 3),
        verifier=numeric_verifier,
        description="sum of three 2-digit numbers, answered as a chain of partial sums",
        answer_format=chain_format(3), solver=solve_chain,
    ),
    "chain5": lambda: GeneratedTask(
        "chain5",
        lambda rng: sample_chain(rng, 5),
        verifier=numeric_verifier,
        description="five 2-digit numbers joined by + or -, answered as a chain of partial results",
        answer_format=chain_format(5), solver=solve_chain,
    ),
    "chain5-skills": lambda: GeneratedTask(
        "chain5-skills",
        sample_skills,
        verifier=numeric_verifier,
        description="five 2-digit numbers joined by + or -, each step of a declared kind (plain, carry, borrow, "
                    "hundred): the test-bed where teachers with complementary blind spots must combine",
        answer_format=chain_format(5),
    ),
    "add2": lambda: GeneratedTask(
        "add2", lambda rng: sample_sum(rng, 2), verifier=numeric_verifier,
        description="2-digit addition", solver=solve_chain,
    ),
    "arith-words": lambda: GeneratedTask(
        "arith-words", sample_words, verifier=words_verifier, heldout_size=200, train_size=500,
        description="one-digit arithmetic asked in words (for real language models)",
    ),
    "reverse": lambda: GeneratedTask(
        "reverse", sample_reverse, verifier=exact_verifier,
        description="reverse 3-5 lowercase letters (the general task)", solver=solve_reverse,
    ),
    "arith2-words": lambda: _word_task("arith2-words"),
    "probe-words": lambda: _word_task("probe-words"),
}
BUILTIN_TASKS: tuple[str, ...] = tuple(_BUILTIN)


def _word_task(name: str) -> GeneratedTask:
    """The real-model tasks of :mod:`tokentree_env.tasks.word_problems` and :mod:`tokentree_env.tasks.probe`."""
    if name == "probe-words":
        from tokentree_env.tasks.probe import POOL_SIZE, PROBE_SIZE, probe_verifier, sample_probe

        return GeneratedTask(name, sample_probe, verifier=probe_verifier, heldout_size=PROBE_SIZE,
                             train_size=POOL_SIZE - PROBE_SIZE,
                             description="general-ability probe: plurals, opposites, capitals (for SmolLM2)")
    from tokentree_env.tasks.word_problems import ARITH2_WORDS, word_problem_facts, word_problem_verifier

    return GeneratedTask(name, ARITH2_WORDS.sample, verifier=word_problem_verifier, heldout_size=200,
                         train_size=2000, facts=word_problem_facts,
                         description="one- and two-step word problems held out by content (for real models)")
_CACHE: dict[str, GeneratedTask] = {}


def builtin_task(name: str = DEFAULT_TASK) -> GeneratedTask:
    """The built-in task ``name`` (one of :data:`BUILTIN_TASKS`); built once, then shared."""
    if name not in _BUILTIN:
        raise ConfigError(f"unknown built-in task {name!r}; choose one of {list(BUILTIN_TASKS)}")
    if name not in _CACHE:
        _CACHE[name] = _BUILTIN[name]()
    return _CACHE[name]
