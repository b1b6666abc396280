"""Training data for the primary, built from the episode store (public: drive TRL yourself).

- :func:`sft_dataset`: the best path per prompt (expert iteration): ``{"prompt", "completion"}``.
- :func:`dpo_dataset`: sibling pairs along successful paths: chosen = the child taken and the rest of
  the answer, rejected = a sibling valued lower by the search, or a wrong-direction child.
- :func:`distillation_dataset`: per node, the context ids, the children and the search's visit
  distribution (AlphaZero policy targets).
- :func:`general_dataset`: general-task data (the built-in ``reverse`` task) for replay.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from datasets import Dataset

from tokentree_env.tasks import builtin_task


def _best_per_prompt(records: Iterable[dict], min_hard_reward: float) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for r in records:
        if r["hard_reward"] < min_hard_reward:
            continue
        key = (r["hard_reward"], r["episode_return"])
        if r["prompt"] not in best or key > (best[r["prompt"]]["hard_reward"], best[r["prompt"]]["episode_return"]):
            best[r["prompt"]] = r
    return best


def sft_dataset(records: Iterable[dict], *, min_hard_reward: float = 1.0) -> Dataset:
    """The best episode of each prompt that reached ``min_hard_reward``, as prompt/completion pairs."""
    best = _best_per_prompt(records, min_hard_reward)
    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in best.values()]
    return Dataset.from_list(rows) if rows else _empty(["prompt", "completion"])


def dpo_dataset(records: Iterable[dict], tokenizer, *, min_hard_reward: float = 1.0, max_pairs_per_step: int = 1
                ) -> Dataset:
    """Sibling preference pairs along each prompt's best successful path.

    At step ``i`` the prompt is ``prompt + answer[:i]``; chosen is the rest of the answer; rejected
    is a sibling token the search valued lower (lowest Q among visited), else a wrong-direction one.
    """
    rows = []
    for r in _best_per_prompt(records, min_hard_reward).values():
        tokens = r["tokens"]
        for i, step in enumerate(r["records"]):
            chosen_token = tokens[i] if i < len(tokens) else None
            if chosen_token is None:
                break
            siblings = [(q, t) for t, q in zip(step["candidates"], step["q_values"] or [None] * len(step["candidates"]),
                                               strict=True) if t != chosen_token]
            valued = sorted((q, t) for q, t in siblings if q is not None and q != 0.0)
            wrong = [t for t, d in zip(step["candidates"], step["directions"], strict=True)
                     if d == "wrong" and t != chosen_token]
            rejected = [t for _, t in valued[:max_pairs_per_step]] or wrong[:max_pairs_per_step]
            prefix = tokenizer.decode(tokens[:i], skip_special_tokens=True)
            rest = tokenizer.decode(tokens[i:], skip_special_tokens=True)
            for t in rejected:
                text = tokenizer.decode([t], skip_special_tokens=True)
                if text and rest and not rest.startswith(text):
                    rows.append({"prompt": r["prompt"] + prefix, "chosen": rest, "rejected": text})
    return Dataset.from_list(rows) if rows else _empty(["prompt", "chosen", "rejected"])


def distillation_dataset(records: Iterable[dict]) -> Dataset:
    """Per searched node: ``input_ids`` (prompt ids + answer so far), ``children`` and ``visits``."""
    rows = []
    for r in records:
        for i, step in enumerate(r["records"]):
            if not step["visits"] or i >= len(r["tokens"]):
                continue
            rows.append({"input_ids": r["prompt_ids"] + r["tokens"][:i], "children": step["candidates"],
                         "visits": step["visits"]})
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "children", "visits"])


def general_dataset(n: int, *, seed: int = 0, task: str = "reverse") -> Dataset:
    """``n`` prompt/completion pairs of the general task, for replay."""
    rng = random.Random(seed)
    general = builtin_task(task)
    rows = []
    for _ in range(n):
        p = general.sample(rng)
        rows.append({"prompt": p.prompt, "completion": p.solutions["step"]})
    return Dataset.from_list(rows)


def _empty(columns: list[str]) -> Dataset:
    return Dataset.from_dict({c: [] for c in columns})
