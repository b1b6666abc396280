"""When does an answer end? (DESIGN §4)

- Termination ``"eos"``: the chosen child is the primary's EOS (every teacher's EOS maps to it).
- Termination ``"judge"``: the chosen token's text ends with a terminal punctuation mark
  (``.``, ``!``, ``?``, newline by default) **and** the judge says the answer is complete:
  P(EOS | context) under the judge >= ``threshold``.
- Truncation ``"max_new_tokens"``: the length limit is reached (TimeLimit semantics).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokentree_env.errors import ConfigError


@dataclass(frozen=True)
class TerminalConfig:
    """Terminal-detection settings."""

    punctuation: str = ".!?\n"
    """Characters that make a token a candidate end of the answer (asked to the judge)."""
    threshold: float = 0.5
    """Judge P(EOS | context) at or above which the answer is complete."""
    max_new_tokens: int = 32
    """Generated tokens after which the episode is truncated."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"TerminalConfig.threshold must be in (0, 1], got {self.threshold}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"TerminalConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")


class TerminalDetector:
    """Applies the terminal rules; the judge is any object with ``p_complete(context)`` (or None)."""

    def __init__(self, config: TerminalConfig, eos_id: int, token_text, judge=None) -> None:
        self.config, self.eos_id, self.token_text, self.judge = config, eos_id, token_text, judge

    def check(self, token: int, context, length: int) -> tuple[bool, bool, str | None]:
        """``(terminated, truncated, reason)`` after choosing ``token``, reaching ``context`` of
        ``length`` generated tokens."""
        if token == self.eos_id:
            return True, False, "eos"
        text = self.token_text(token)
        if (self.judge is not None and text and text[-1] in self.config.punctuation
                and self.judge.p_complete(context) >= self.config.threshold):
            return True, False, "judge"
        if length >= self.config.max_new_tokens:
            return False, True, "max_new_tokens"
        return False, False, None
