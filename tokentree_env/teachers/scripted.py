"""``ScriptedTeacher``: a deterministic table-driven teacher for unit tests (no model)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from tokentree_env.teachers.base import Context, Teacher


class ScriptedTeacher(Teacher):
    """Next-token log-probs from a function of the context text; answers from a dict.

    ``distribution(text) -> {primary_token_id: probability}``; unlisted tokens get probability 0.
    Counts one forward call and one forwarded token per context, like a cached model would.
    """

    def __init__(self, distribution: Callable[[str], dict[int, float]], vocab_size: int, *,
                 answers: dict[str, str] | None = None, name: str = "scripted") -> None:
        super().__init__()
        self.distribution, self.vocab_size, self.name = distribution, vocab_size, name
        self.answer_table: dict[str, str] = dict(answers or {})  # not ``answers``: that is the batched method

    def next_logprobs(self, contexts: Sequence[Context]) -> torch.Tensor:
        out = torch.full((len(contexts), self.vocab_size), float("-inf"))
        for i, context in enumerate(contexts):
            for token, p in self.distribution(context.text).items():
                out[i, token] = torch.tensor(p).log()
        self.counters.call([context.owner for context in contexts])
        for context in contexts:
            self.counters.add(forwarded=1, owner=context.owner)
        return out

    def answer(self, prompt: str, *, max_new_tokens: int = 64) -> str:
        return self.answer_table.get(prompt, "")
