"""One prompt format per model: how a model reads a task prompt, everywhere it reads one.

A model with a chat template (an instruction model) reads the prompt as the user turn of its template, with the
generation prompt after it (the assistant turn starts); a model without one (a base model, the zoo) reads the bare
prompt, with its tokenizer's special tokens (a BOS). The env's trees, the primary's training rows and its
evaluation all use :func:`prompt_ids`, so the primary is searched, trained and evaluated in one format.
"""

from __future__ import annotations


def has_chat_template(tokenizer) -> bool:
    """Whether ``tokenizer`` carries a chat template (an instruction model)."""
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_text(tokenizer, prompt: str) -> str:
    """The text a model reads for ``prompt``: its chat template's user turn and generation prompt, or the prompt."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The token ids a model reads for ``prompt``: the templated text as it stands (the template writes its own
    special tokens), or the bare prompt with the tokenizer's special tokens."""
    templated = has_chat_template(tokenizer)
    return list(tokenizer(prompt_text(tokenizer, prompt), add_special_tokens=not templated)["input_ids"])


__all__ = ["has_chat_template", "prompt_ids", "prompt_text"]
