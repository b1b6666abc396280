"""A teacher's temperature samples of many prompts, each prompt read once (its cache expanded across the samples:
:func:`tokentree_env.models.generation.sample_rows`), every row charged to its owner: what coverage-first sampling
(the no-search control of a comparison) asks of the teachers."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from tokentree_env.errors import ConfigError


def teacher_samples(teacher, prompts: Sequence[str], *, n: int, temperature: float = 1.0, max_new_tokens: int,
                    seed: int = 0, owners: Sequence[Hashable] | None = None) -> list[list[str]]:
    """``n`` samples at ``temperature`` of each prompt's answer by ``teacher`` (a local model: an
    :class:`~tokentree_env.teachers.HFTeacher`), in its own prompt format, as texts. Each row is charged what it
    forwarded (its prompt once, then each sample's tokens), to ``owners[i]`` as well when given. The draws come from
    a generator seeded by ``seed`` (the same prompts, seed and batch give the same samples)."""
    from tokentree_env.models.generation import sample_rows

    if getattr(teacher, "model", None) is None or not hasattr(teacher, "prompt_ids"):
        raise ConfigError(f"teacher {getattr(teacher, 'name', teacher)!r} cannot be sampled here: sampling reads a "
                          "local model's logits (an HFTeacher); a remote teacher has none")
    if n < 1 or temperature <= 0:
        raise ConfigError(f"sampling needs n >= 1 and temperature > 0, got n={n}, temperature={temperature}")
    owners = list(owners) if owners is not None else [None] * len(prompts)
    rows = [teacher.prompt_ids(p) for p in prompts]
    drawn, forwarded = sample_rows(teacher.model, teacher.tokenizer, rows, n=n, temperature=temperature,
                                   max_new_tokens=max_new_tokens, seed=seed)
    for samples, tokens, owner in zip(drawn, forwarded, owners, strict=True):
        steps = max(len(s) for s in samples) + 1
        teacher.counters.add(calls=steps, forwarded=tokens, generated=sum(len(s) + 1 for s in samples), owner=owner)
    return [[teacher.tokenizer.decode(s, skip_special_tokens=True) for s in samples] for samples in drawn]
