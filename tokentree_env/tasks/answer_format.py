"""How a task's answers are laid out, declared as data: answer styles and step boundaries.

- **Styles.** An answer is in style ``s`` when it equals the task's rendering of the problem's own operands in
  style ``s``, for some list of claimed partial results (right or wrong). A style is a regular expression with
  *operand slots*: ``{t1}``, ``{t2}``, ... are the prompt's numbers and ``{o1}``, ``{o2}``, ... its operators, in
  the order the task's ``operands`` pattern reads them; ``{n}`` is any claimed number. The whole answer must match
  (trailing whitespace aside). For ``chain5`` the step style is ``{n}{o2}{t3}={n}{o3}{t4}={n}{o4}{t5}={n}\\.``.
- **Step boundaries.** A regular expression: the answer so far is at a step boundary when its text ends with a
  match (``chain5``: after ``=``, ``,`` and ``.``; text tasks: a newline or a sentence end). Search over steps
  (``mcts-steps``) chooses the next step's writer there.

A user task declares both in its JSONL file's header line (``{"task": {"styles": {...}, "operands": "...",
"step_boundaries": "..."}}``), never as code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from tokentree_env.errors import ConfigError

NUMBER = r"-?\d+"
TEXT_BOUNDARIES = r"\n|[.!?]"
"""The default step boundary: a newline or a sentence end."""
_SLOT = re.compile(r"\{(?:(?P<kind>[to])(?P<index>\d+)|n)\}")


@dataclass(frozen=True)
class AnswerFormat:
    """A task's answer styles and step boundaries (see the module docstring)."""

    styles: Mapping[str, str] = field(default_factory=dict)
    """Style name -> a regular expression with operand slots ``{t1}``, ``{o1}``, ``{n}``."""
    operands: str = r"(?P<t>\d+)|(?P<o>[-+*/x])"
    """How the prompt's operands are read, in order: a match of group ``t`` is a number, of group ``o`` an operator."""
    step_boundaries: str = TEXT_BOUNDARIES
    """A regular expression: a step ends where the answer's text ends with a match."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "styles", dict(self.styles))
        for what, pattern in (("operands", self.operands), ("step_boundaries", self.step_boundaries),
                              *((f"styles[{name!r}]", _SLOT.sub("0", p)) for name, p in self.styles.items())):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"AnswerFormat.{what} is not a valid regular expression ({exc}): {pattern!r}") from exc
        if not {"t", "o"} <= set(re.compile(self.operands).groupindex):
            raise ConfigError(f"AnswerFormat.operands must name the groups 't' (numbers) and 'o' (operators), got "
                              f"{self.operands!r}")

    @classmethod
    def from_data(cls, data: Mapping | None, where: str = "") -> AnswerFormat:
        """A format from plain data (a task file's header); unknown keys raise :class:`ConfigError`."""
        data = dict(data or {})
        unknown = set(data) - {"styles", "operands", "step_boundaries"}
        if unknown:
            raise ConfigError(f"{where}unknown answer-format keys {sorted(unknown)}; known: operands, step_boundaries, "
                              "styles")
        return cls(**data)

    # -- styles ---------------------------------------------------------------------------------
    def operand_slots(self, prompt: str) -> dict[str, str]:
        """The prompt's operands by slot name: ``{"t1": "47", "o1": "-", "t2": "12", ...}``."""
        slots, counts = {}, {"t": 0, "o": 0}
        for match in re.finditer(self.operands, prompt):
            kind = "t" if match.group("t") is not None else "o"
            counts[kind] += 1
            slots[f"{kind}{counts[kind]}"] = match.group(kind)
        return slots

    def style_of(self, prompt: str, answer: str, styles: Iterable[str] | None = None) -> str | None:
        """The first of ``styles`` (default: every declared style) that ``answer`` is in, or None."""
        slots = self.operand_slots(prompt)
        for name in self.styles if styles is None else styles:
            pattern = _compiled(self.styles[name], tuple(sorted(slots.items())))
            if pattern is not None and pattern.fullmatch(answer.rstrip()):
                return name
        return None

    # -- steps ----------------------------------------------------------------------------------
    def at_boundary(self, text: str) -> bool:
        """Whether an answer whose text so far is ``text`` has just finished a step."""
        return bool(text) and _boundary(self.step_boundaries).search(text) is not None


@lru_cache(maxsize=4096)
def _compiled(template: str, slots: tuple[tuple[str, str], ...]) -> re.Pattern | None:
    """A style's regular expression with the prompt's operands in its slots (None when it names an operand the
    prompt lacks)."""
    values = dict(slots)

    def fill(match: re.Match) -> str:
        if match.group(0) == "{n}":
            return NUMBER
        name = f"{match.group('kind')}{match.group('index')}"
        if name not in values:
            raise KeyError(name)
        return re.escape(values[name])

    try:
        return re.compile(_SLOT.sub(fill, template))
    except KeyError:
        return None


@lru_cache(maxsize=64)
def _boundary(pattern: str) -> re.Pattern:
    return re.compile(f"(?:{pattern})$")


def chain_format(n_terms: int) -> AnswerFormat:
    """The styles of the built-in chain tasks (``chain3``, ``chain5``): step, explicit, partials, terse, as
    :func:`tokentree_env.tasks.builtin.render` writes them; steps end after ``=``, ``,`` and ``.``."""
    chain = "".join(f"{{n}}{{o{i}}}{{t{i + 1}}}=" for i in range(2, n_terms))
    return AnswerFormat(styles={
        "step": chain + r"{n}\.",
        "explicit": r"{t1}{o1}{t2}=" + chain + r"{n}\.",
        "partials": ",".join(["{n}"] * (n_terms - 1)) + r"\.",
        "terse": r"{n}\.",
    }, step_boundaries=r"[=,.]")


__all__ = ["TEXT_BOUNDARIES", "AnswerFormat", "chain_format"]
