"""``arith2-words``: arithmetic word problems held out by content, for the real models, and the verifier that reads
an answer as a person would.

A problem is a short story of one or two steps ("Ethan has 7 candies. He gets 9 more from a friend and then gives
away 3. How many candies does he have now?"): the first number from 2 to 20, each step a gain or a loss of 1 to 9,
never below zero; two steps in about one problem in seven; numbers in digits, or in words in one problem in four;
30 names, 30 objects, six ways to gain and six to lose. Every prompt starts with the same two worked examples
(:data:`EXAMPLE`), from which Gemma, a base model, reads the answer's form ("Tom has 30 + 4 = 34 pens."), and ends
with the answer begun the same way ("Answer: Ethan has"); the examples' steps lie outside the task's ranges.

- **Content key**: a problem's numbers and operations, ``(a, op1, b)`` or ``(a, op1, b, op2, c)``
  (:attr:`~tokentree_env.tasks.base.Problem.key`); its **facts** are its steps (:func:`word_problem_facts`). The
  task is held out by both: no train problem and no sample has a held-out key or asks a held-out step (0 of the
  200 held-out problems share a step with train; ``arith-words``: 189 of 200 share a fact, by
  :func:`heldout_sharing_train`). The content space holds 305 one-step and 4,517 two-step keys. The held-out
  split (161 one-step, 39 two-step problems) holds 197 steps, more than half of the one-step contents, so the train
  split is mostly two-step (979 problems: 118 one-step, 861 two-step), while ``sample()`` draws one-step problems
  94 % of the time, in any wording (4,996 distinct prompts in 5,000 draws), from the 118 one-step contents left.
- A problem's answer is never one of its numbers nor the result of its first of two steps, so an answer that
  restates the story is never right by chance.
- **Verifier**: :func:`word_problem_verifier` (:func:`read_answer`): the final result of the answer's working,
  in digits or words, not fooled by restated operands ("23 + 15 - 8 = 30" -> 30) nor by a step of the story
  retold after the result ("Jonas has 9 - 6 = 3 pencils left. He gives away 6 pencils." -> 3).

**Calibration** (``python -m benchmarks.real_calibration --env-n 10``; benchmarks/README.md, "Calibration of the
held-out task"): greedy, 24 new tokens, the 200 held-out problems, measured once on 2026-12-07 after the parameters
were settled on the train split (target: each model in its own format between 10 % and 60 %):

- SmolLM2-135M-Instruct in its chat template, no system prompt (as a teacher in the env and as the run's direct
  evaluation: the same score): **0.260** (52/200; 95 % 0.204-0.325; one step 49/161, two steps 3/39);
- Gemma3-270m on the bare prompt (as a teacher in the env): **0.385** (77/200; 0.320-0.454; 75/161, 2/39);
- for reference, SmolLM2 with the fewest-steps system prompt: 0.285 (0.227-0.351).

SmolLM2 as the primary, greedy through the env's tree (both models as teachers under the mixture, judge off), on the
first 10 held-out problems: 6/10, the same right or wrong as its direct greedy on all 10. SmolLM2's start on the
``probe-words`` probe, same run: 0.804 (0.767-0.836) on its 500 held-out items. On the train split (whose one-step
contents are those the held-out split left: somewhat larger numbers, more gains) SmolLM2 had been predicted at
0.152 and Gemma at 0.419 at the held-out mix: the held-out split came out easier for SmolLM2 than train.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from tokentree_env.errors import ConfigError
from tokentree_env.tasks.base import Problem

NAMES: tuple[tuple[str, str], ...] = (
    ("Maya", "she"), ("Liam", "he"), ("Sofia", "she"), ("Noah", "he"), ("Aisha", "she"), ("Mateo", "he"),
    ("Emma", "she"), ("Ravi", "he"), ("Chloe", "she"), ("Omar", "he"), ("Hana", "she"), ("Lucas", "he"),
    ("Zoe", "she"), ("Kenji", "he"), ("Nora", "she"), ("Diego", "he"), ("Priya", "she"), ("Ethan", "he"),
    ("Lena", "she"), ("Samuel", "he"), ("Amara", "she"), ("Felix", "he"), ("Ines", "she"), ("Tariq", "he"),
    ("Mia", "she"), ("Jonas", "he"), ("Yara", "she"), ("Leo", "he"), ("Grace", "she"), ("Ben", "he"),
)
OBJECTS: tuple[str, ...] = (
    "apples", "marbles", "stickers", "books", "pencils", "cookies", "coins", "cards", "shells", "stamps",
    "balloons", "crayons", "eggs", "flowers", "toy cars", "beads", "buttons", "candies", "oranges", "rocks",
    "feathers", "cupcakes", "blocks", "ribbons", "lemons", "postcards", "keys", "pebbles", "erasers", "muffins",
)
GAINS: tuple[str, ...] = ("buys {n} more", "finds {n} more", "gets {n} more from a friend", "picks up {n} more",
                          "receives {n} more as a gift", "wins {n} more")
LOSSES: tuple[str, ...] = ("gives away {n}", "loses {n}", "sells {n}", "gives {n} to a friend", "uses {n}",
                           "drops {n}")
QUESTIONS: tuple[str, ...] = ("How many {obj} does {pron} have now?", "How many {obj} does {name} have now?")
LEFT_QUESTION = "How many {obj} does {pron} have left?"
"""Asked only when the last step is a loss."""

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """English words of a whole number from 0 to 999 ("seventy-two", "one hundred and five")."""
    if not 0 <= n <= 999:
        raise ConfigError(f"number_words covers 0-999, got {n}")
    if n >= 100:
        hundreds, rest = divmod(n, 100)
        return f"{_NUMBER_WORDS[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    if n < 20:
        return _NUMBER_WORDS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + (f"-{_NUMBER_WORDS[units]}" if units else "")


EXAMPLE = ("Question: Tom has 30 pens. He buys 4 more. How many pens does he have now?\n"
           "Answer: Tom has 30 + 4 = 34 pens.\n\n"
           "Question: Ann has 45 cups. She breaks 6 and then buys 3 more. How many cups does she have now?\n"
           "Answer: Ann has 45 - 6 + 3 = 42 cups.\n\n")
"""The two worked examples before every ``arith2-words`` question (Gemma, a base model, reads the answer's form from
them). Their steps (30 + 4, 45 - 6, 39 + 3) lie outside the task's ranges, so they never show a step a problem asks.
Each answer opens with the name and "has", as the question's answer is begun (:func:`sample_word_problem`)."""
@dataclass(frozen=True)
class WordProblemConfig:
    """How hard the problems are: where each number is drawn from, how many steps, which operations, how often
    numbers are written in words, and the worked examples before the question. The defaults are ``arith2-words``'
    calibrated difficulty."""

    start: tuple[int, int] = (2, 20)
    """The range of the first number (inclusive)."""
    step: tuple[int, int] = (1, 9)
    """The range of the numbers of the steps (inclusive)."""
    operations: str = "+-"
    """The operations a step may take: ``+`` (a gain), ``-`` (a loss, never below zero)."""
    two_steps: float = 0.15
    """The share of problems with two steps (the rest have one)."""
    words: float = 0.25
    """The share of problems whose numbers are written in words (the rest in digits)."""
    example: str = EXAMPLE
    """Worked examples put before every question (a base model reads the answer's form from them); "" for none."""

    def __post_init__(self) -> None:
        for what, (low, high) in (("start", self.start), ("step", self.step)):
            if not 1 <= low <= high <= 99:
                raise ConfigError(f"WordProblemConfig.{what} must be a range within 1-99, got {(low, high)}")
        if not self.operations or set(self.operations) - set("+-"):
            raise ConfigError(f"WordProblemConfig.operations must be a non-empty string of '+' and '-', got "
                              f"{self.operations!r}")
        for what in ("two_steps", "words"):
            if not 0.0 <= getattr(self, what) <= 1.0:
                raise ConfigError(f"WordProblemConfig.{what} must be a share in [0, 1], got {getattr(self, what)}")

    def sample(self, rng: random.Random) -> Problem:
        """One problem of this difficulty (:func:`sample_word_problem`)."""
        return sample_word_problem(rng, self)


ARITH2_WORDS = WordProblemConfig()
"""The difficulty of the built-in ``arith2-words``: the defaults, calibrated (see the module docstring)."""


def sample_word_problem(rng: random.Random, cfg: WordProblemConfig = ARITH2_WORDS) -> Problem:
    """A one- or two-step word problem; its content key is ``(a, op1, b)`` or ``(a, op1, b, op2, c)`` (its numbers and
    operations, whatever the wording). The prompt ends with the answer begun as the worked examples begin theirs
    ("...\nAnswer: Ethan has"). Its answer is never one of its numbers nor the result of its first step, so
    an answer that restates them is never right by chance."""
    while True:
        a = rng.randint(*cfg.start)
        terms, values = [], [a]
        for _ in range(2 if rng.random() < cfg.two_steps else 1):
            op = rng.choice(cfg.operations)
            if op == "-" and values[-1] < cfg.step[0]:
                op = "+"
            n = rng.randint(cfg.step[0], min(cfg.step[1], values[-1]) if op == "-" else cfg.step[1])
            terms.append((op, n))
            values.append(values[-1] + n if op == "+" else values[-1] - n)
        if values[-1] not in {a, *(n for _, n in terms), *values[:-1]}:
            break
    name, pron = rng.choice(NAMES)
    obj = rng.choice(OBJECTS)
    write = number_words if rng.random() < cfg.words else str
    actions = [rng.choice(GAINS if op == "+" else LOSSES).format(n=write(n)) for op, n in terms]
    questions = QUESTIONS + ((LEFT_QUESTION,) if terms[-1][0] == "-" else ())
    question = rng.choice(questions).format(obj=obj, pron=pron, name=name)
    story = f"{name} has {write(a)} {obj}. {pron.capitalize()} {actions[0]}"
    if len(actions) == 2:
        story += f" and then {actions[1]}" if rng.random() < 0.5 else f". Then {pron} {actions[1]}"
    key = (a, *(x for term in terms for x in term))
    value = values[-1]
    working = f"{a} " + " ".join(f"{op} {n}" for op, n in terms) + f" = {value}"
    return Problem(f"{cfg.example}Question: {story}. {question}\nAnswer: {name} has", str(value), key=key,
                   solutions={"terse": f" {value}", "step": f" {working} {obj}.", "sentence": f" {value} {obj} now."})


def word_problem_facts(problem: Problem) -> tuple[tuple, ...]:
    """What a word problem asks, step by step: ``(a, op1, b)`` and, for two steps, ``(a op1 b, op2, c)``. A task held
    out by these facts never trains on a problem whose first step is a held-out one-step problem."""
    a, *rest = problem.content_key
    facts, value = [], a
    for op, n in zip(rest[::2], rest[1::2], strict=True):
        facts.append((value, op, n))
        value = value + n if op == "+" else value - n
    return tuple(facts)


_WORDS_FACT = re.compile(r"([a-z]+) (plus|minus|times) ([a-z]+)")


def words_fact(problem: Problem) -> tuple[tuple[int, str, int], ...]:
    """The one fact ``(a, op, b)`` an ``arith-words`` problem asks ("What is seven plus five?" -> (7, '+', 5))."""
    match = _WORDS_FACT.search(problem.prompt)
    if match is None:
        raise ConfigError(f"not an arith-words prompt (no 'A plus/minus/times B'): {problem.prompt!r}")
    words = {number_words(n): n for n in range(20)}
    a, op, b = match.groups()
    return ((words[a], {"plus": "+", "minus": "-", "times": "*"}[op], words[b]),)


def heldout_sharing_train(task, facts: Callable[[Problem], Iterable[Hashable]]) -> int:
    """How many of ``task``'s held-out problems ask a fact that some train problem also asks (``arith-words``: 189 of
    200 with :func:`words_fact`; a task held out by its facts: 0)."""
    seen = {f for p in task.problems("train") for f in facts(p)}
    return sum(not seen.isdisjoint(facts(p)) for p in task.problems("heldout"))


_NEW_QUESTION = re.compile(r"^\s*(?:question|q\s*:|q\d|problem\b|example\b)", re.IGNORECASE)
_CARRY_ON = re.compile(r"^\s*(?:=|so\b|then\b|now\b|that\b|this\b|therefore\b|thus\b|which\b|and\b|after\b|"
                       r"finally\b|in total\b|total\b|the answer\b|answer\b)", re.IGNORECASE)
_UNITS = {w: i for i, w in enumerate(_NUMBER_WORDS)}
_TENS_VALUE = {w: 10 * i for i, w in enumerate(_TENS) if w}
_OPERATOR = r"(?:[-+*/×÷=]|(?<![a-z])x\b|\bplus\b|\bminus\b|\btimes\b|\bdivided by\b)"
_BEFORE_OPERATOR = re.compile(_OPERATOR.replace("=", "") + r"\s*$", re.IGNORECASE)
_AFTER_OPERATOR = re.compile(r"^\s*" + _OPERATOR, re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n")
_TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|[a-z]+", re.IGNORECASE)


def stated_numbers(text: str) -> list[tuple[float, int, int]]:
    """The numbers ``text`` states, in order, as ``(value, start, end)``: digits ("30", "1,200", "7.5") and English
    words ("thirty", "thirty-one", "thirty one", "one hundred and five"). Whole numbers are ints."""
    out: list[tuple[float, int, int]] = []
    tokens = [(m.group(0).lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    i = 0
    while i < len(tokens):
        word, start, end = tokens[i]
        if word[0].isdigit():
            value = float(word.replace(",", ""))
            out.append((int(value) if value.is_integer() else value, start, end))
            i += 1
            continue
        value, j = _words_value(tokens, i, text)
        if j == i:
            i += 1
            continue
        out.append((value, start, tokens[j - 1][2]))
        i = j
    return out


def _words_value(tokens: list[tuple[str, int, int]], i: int, text: str) -> tuple[int, int]:
    """The value of the number words from token ``i`` on, and the index after them (``i`` when none)."""
    value, j = 0, i
    if j < len(tokens) and tokens[j][0] in _UNITS and j + 1 < len(tokens) and tokens[j + 1][0] == "hundred":
        value, j = 100 * _UNITS[tokens[j][0]], j + 2
        if j + 1 < len(tokens) and tokens[j][0] == "and" and _starts_number(tokens[j + 1][0]):
            j += 1
        elif j >= len(tokens) or not _starts_number(tokens[j][0]):
            return value, j
    if j < len(tokens) and tokens[j][0] in _TENS_VALUE:
        value, j = value + _TENS_VALUE[tokens[j][0]], j + 1
        gap = text[tokens[j - 1][2]:tokens[j][1]] if j < len(tokens) else ""
        if j < len(tokens) and gap in ("-", " ") and tokens[j][0] in _UNITS and 0 < _UNITS[tokens[j][0]] < 10:
            value, j = value + _UNITS[tokens[j][0]], j + 1
    elif j < len(tokens) and tokens[j][0] in _UNITS:
        value, j = value + _UNITS[tokens[j][0]], j + 1
    return value, j


def _starts_number(word: str) -> bool:
    return word in _UNITS or word in _TENS_VALUE


def read_answer(completion: str) -> float | None:
    """The number an answer states, read as a person reads it (None when it states none, or stops mid-sum).

    - The answer ends where a new question starts (a line beginning "Question", "Q:", "Problem" or "Example").
    - Its first non-empty line is read, and each next line while it carries the working on: a line with an
      equation ("so she has 38 - 8 = 30"), one that starts with the number the line before ended on ("23 + 15 =
      38" then "38 - 8 = 30"), or with "so", "then", "now", "that", "this", "therefore", "thus", "which", "and",
      "after", "finally", "total" or "the answer". A line that does none of these (a restated story, a new
      topic) ends the answer.
    - The answer is the final number stated there, in digits or words: "23 + 15 - 8 = 30" gives 30 (the operands
      before the result are restated, not answered), "The answer is 30 apples." and "Maya has thirty apples now."
      give 30. A sentence whose final number stands next to an operator ("So she has 38 - 8", "23 + 15 =") is a
      sum left unfinished and states nothing: the answer is then the final number of the last finished sentence
      before it ("Maya has 1 + 3 + 2 = 6 apples. She has 1 + 3 +" gives 6).
    - A sentence that only retells a step of the story ("She picks up two more.") does not override a result
      stated before it: the answer is the last finished sentence that states a result (:func:`_states_result`:
      an equation's result, a number after "has", "is", "keeps", "leaves"..., a number before "left", "now", "in
      total", a sentence opening with "so", "therefore", "the answer"..., or a number standing alone), and only
      when none does, the final number of the last finished sentence ("Jonas has 9 - 6 = 3 pencils left. He gives
      away 6 pencils." gives 3).
    """
    lines = [line for line in completion.splitlines() if line.strip()]
    if not lines:
        return None
    read = [lines[0]]
    for line in lines[1:]:
        if _NEW_QUESTION.match(line):
            break
        before, now = stated_numbers(read[-1]), stated_numbers(line)
        continues = bool(before and now and now[0][1] == len(line) - len(line.lstrip()) and now[0][0] == before[-1][0])
        if not (continues or "=" in line or _CARRY_ON.match(line)):
            break
        read.append(line)
    fallback = None
    for sentence in reversed(_SENTENCE_END.split("\n".join(read))):
        numbers = stated_numbers(sentence)
        if not numbers:
            continue
        value, start, end = numbers[-1]
        if _BEFORE_OPERATOR.search(sentence[:start]) or _AFTER_OPERATOR.match(sentence[end:]):
            continue
        if _states_result(sentence, start, end):
            return value
        fallback = value if fallback is None else fallback
    return fallback


_RESULT_BEFORE = re.compile(r"(?:=|\b(?:has|have|had|is|are|was|were|keeps|leaves|leaving|equals|makes|left with|"
                            r"total of)\s+(?:only\s+|now\s+|just\s+)?)\s*$", re.IGNORECASE)
_RESULT_AFTER = re.compile(r"^\s*(?:[a-z-]+\s+){0,2}(?:left|now|remaining|in total|altogether|in all)\b", re.IGNORECASE)
_RESULT_OPENING = re.compile(r"^\s*(?:so\b|therefore\b|thus\b|now\b|that\b|this\b|which\b|finally\b|in total\b|"
                             r"total\b|the answer\b|answer\b)", re.IGNORECASE)


def _states_result(sentence: str, start: int, end: int) -> bool:
    """Whether a sentence whose final number spans ``start:end`` states a result rather than retelling a step of the
    story: that number ends an equation ("= 30"), follows "has", "is", "keeps", "leaves"... ("she has 30"), comes
    before "left", "now", "in total"... ("30 apples left"), or stands alone ("30.", "Answer: thirty"), or the
    sentence opens with "so", "therefore", "the answer"...."""
    before = sentence[:start]
    return bool(_RESULT_BEFORE.search(before) or _RESULT_AFTER.match(sentence[end:])
                or _RESULT_OPENING.match(sentence) or not before.strip() or before.strip().lower() == "answer:")


def word_problem_verifier(completion: str, answer: str) -> float:
    """1.0 when the number the completion states (:func:`read_answer`) is the reference answer, else 0.0."""
    value = read_answer(completion)
    return float(value is not None and str(value) == answer.strip())


__all__ = ["ARITH2_WORDS", "EXAMPLE", "GAINS", "LOSSES", "NAMES", "OBJECTS", "QUESTIONS", "WordProblemConfig",
           "heldout_sharing_train", "number_words", "read_answer", "sample_word_problem", "stated_numbers",
           "word_problem_facts", "word_problem_verifier", "words_fact"]
