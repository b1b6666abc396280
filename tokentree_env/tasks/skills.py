"""``chain5-skills``: five 2-digit numbers joined by ``+`` or ``-``, whose steps are of declared **kinds**.

The test-bed where teachers must combine (DESIGN.md section 12, issue 38). A problem reads like ``chain5``'s
(``"47-12+85-30+19="``) and is answered as one chain, the first operation written out
(``"47-12=35+85=120-30=90+19=109."``). Each step ``P op T = R`` (``P`` the partial result so far, ``T`` the next
term) is of one kind, by where column arithmetic carries or borrows:

- ``"plain"``: no carry, no borrow, no hundred crossed (``35+12=47``, ``120-10=110``);
- ``"carry"``: an addition whose units carry into the tens, no hundred crossed (``47+25=72``);
- ``"borrow"``: a subtraction whose units borrow from the tens, no hundred crossed (``52-17=35``);
- ``"hundred"``: the result crosses a hundred (the tens carry into, or borrow from, the hundreds) with no carry
  or borrow in the units (``85+43=128``, ``120-30=90``).

A step that carries in both columns is ``"mixed"``; the sampler never draws one, so every step has at most one
kind of difficulty. Partial results stay in 0-199. The sampler draws each step's kind first
(:data:`KIND_WEIGHTS`), then a term and operator of that kind, so most problems hold steps of several kinds.

:func:`column_step` is column arithmetic with optional **bugs**, the consistent wrong rules the test-bed's
teachers learn: ``"carry"`` drops the units carry, ``"borrow"`` never borrows in the units (it takes the smaller
units digit from the larger), ``"hundred"`` keeps the hundreds digit of ``P``. Without bugs it is exact.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from functools import cache

from tokentree_env.errors import ConfigError

STEP_KINDS: tuple[str, ...] = ("plain", "carry", "borrow", "hundred")
"""The kinds a sampled step can be of (a ``"mixed"`` step, carrying in two columns, is never drawn)."""
BUGS: tuple[str, ...] = ("carry", "borrow", "hundred")
"""The wrong rules :func:`column_step` knows; each bites on the step kind of the same name."""
KIND_WEIGHTS: dict[str, float] = {"plain": 0.3, "carry": 0.25, "borrow": 0.25, "hundred": 0.2}
"""How often the sampler asks for each kind of step, among the kinds possible from the partial result (a plain step
is always possible, so plain steps come out more often than asked: about 38 % of steps, the others about 20 % each)."""
MAX_PARTIAL = 199
"""Every partial result of a problem lies in 0..MAX_PARTIAL."""
TERMS = range(10, 100)


def column_step(p: int, op: str, t: int, bugs: Collection[str] = ()) -> int:
    """The result of ``p op t`` by column arithmetic (units, tens, hundreds), with the named ``bugs`` applied.

    - ``"carry"``: an addition's units carry is dropped (``47+85`` gives 122, not 132);
    - ``"borrow"``: a subtraction never borrows in the units; the smaller units digit is taken from the larger
      (``52-17`` gives 45, not 35);
    - ``"hundred"``: a carry into, or a borrow from, the hundreds is dropped: the result keeps ``p``'s hundreds
      digit (``85+43`` gives 28, ``120-30`` gives 190).

    With no bugs the result is ``p + t`` or ``p - t``. Raises :class:`ConfigError` on a negative operand, an
    operator other than ``+``/``-``, an unknown bug, or a subtraction that would go below zero.
    """
    if p < 0 or t < 0:
        raise ConfigError(f"column_step needs whole numbers >= 0, got p={p}, t={t}")
    if op not in "+-" or len(op) != 1:
        raise ConfigError(f"column_step's operator must be '+' or '-', got {op!r}")
    unknown = set(bugs) - set(BUGS)
    if unknown:
        raise ConfigError(f"unknown bug(s) {sorted(unknown)}; known: {list(BUGS)}")
    head, tens_p, units_p = p // 100, (p // 10) % 10, p % 10
    if op == "+":
        units = units_p + t % 10
        carry = units // 10 if "carry" not in bugs else 0
        tens = tens_p + (t // 10) % 10 + carry
        head = head + t // 100 + (tens // 10 if "hundred" not in bugs else 0)
        return head * 100 + (tens % 10) * 10 + units % 10
    if p < t:
        raise ConfigError(f"column_step: {p}-{t} goes below zero")
    units, borrow = units_p - t % 10, 0
    if units < 0:
        units, borrow = (-units, 0) if "borrow" in bugs else (units + 10, 1)
    tens = tens_p - (t // 10) % 10 - borrow
    head -= t // 100
    if tens < 0:
        tens += 10
        head -= 0 if "hundred" in bugs else 1
    if head < 0:
        raise ConfigError(f"column_step: {p}-{t} with bugs {sorted(bugs)} goes below zero")
    return head * 100 + tens * 10 + units


def step_kind(p: int, op: str, t: int) -> str:
    """The kind of the step ``p op t`` (see the module docstring): ``"plain"``, ``"carry"``, ``"borrow"``,
    ``"hundred"`` or ``"mixed"``."""
    right = column_step(p, op, t)
    units = (p % 10 + t % 10 >= 10) if op == "+" else (p % 10 < t % 10)
    crosses = right // 100 != p // 100
    if units and crosses:
        return "mixed"
    if crosses:
        return "hundred"
    if units:
        return "carry" if op == "+" else "borrow"
    return "plain"


def chain_partials(terms: Sequence[int], ops: Sequence[str], bugs: Collection[str] = ()) -> list[int]:
    """The partial results of a chain worked step by step from its own written results with ``bugs`` (the first
    term first): what a writer with those bugs writes. Raises :class:`ConfigError` if a partial goes below zero."""
    partials = [terms[0]]
    for op, term in zip(ops, terms[1:], strict=True):
        partials.append(column_step(partials[-1], op, term, bugs))
    return partials


def chain_kinds(terms: Sequence[int], ops: Sequence[str]) -> list[str]:
    """The kind of each step of a chain, worked right."""
    partials = chain_partials(terms, ops)
    return [step_kind(p, op, t) for p, op, t in zip(partials[:-1], ops, terms[1:], strict=True)]


@cache
def _choices(p: int, kind: str) -> tuple[tuple[str, int], ...]:
    """Every ``(op, term)`` that makes a step of ``kind`` from ``p`` with its result in range (computed once)."""
    return tuple((op, t) for op in "+-" for t in TERMS
            if (p + t if op == "+" else p - t) in range(MAX_PARTIAL + 1) and step_kind(p, op, t) == kind)


def sample_skills_chain(rng: random.Random, n_terms: int = 5, weights: Mapping[str, float] | None = None
                        ) -> tuple[list[int], list[str]]:
    """The terms and operators of a ``chain5-skills`` chain of ``n_terms`` terms: each step's kind drawn by
    ``weights`` (default :data:`KIND_WEIGHTS`) among the kinds possible from the partial result, then a term and
    operator of that kind, uniformly (:func:`tokentree_env.tasks.builtin.sample_skills` makes it a problem)."""
    weights = dict(KIND_WEIGHTS if weights is None else weights)
    if set(weights) - set(STEP_KINDS) or n_terms < 2:
        raise ConfigError(f"sample_skills needs n_terms >= 2 and kinds among {STEP_KINDS}; got n_terms={n_terms}, "
                          f"weights={weights}")
    terms, ops = [rng.choice(TERMS)], []
    partial = terms[0]
    for _ in range(n_terms - 1):
        options = {kind: _choices(partial, kind) for kind, w in weights.items() if w > 0}
        options = {kind: found for kind, found in options.items() if found}
        if not options:
            raise ConfigError(f"sample_skills: no step of the kinds {sorted(weights)} can follow {partial}")
        kind = rng.choices(list(options), weights=[weights[k] for k in options])[0]
        op, term = rng.choice(options[kind])
        ops.append(op)
        terms.append(term)
        partial = column_step(partial, op, term)
    return terms, ops


__all__ = ["BUGS", "KIND_WEIGHTS", "MAX_PARTIAL", "STEP_KINDS", "chain_kinds", "chain_partials", "column_step",
           "sample_skills_chain", "step_kind"]
