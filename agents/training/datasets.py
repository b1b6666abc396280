"""Training data for the primary, built from the episode store (public: drive TRL yourself).

- :func:`sft_dataset`: the best path per prompt (expert iteration): ``{"prompt", "completion"}``.
- :func:`dpo_dataset`: sibling pairs along successful paths: chosen = the child taken and the rest of
  the answer, rejected = a sibling valued lower by the search, or a wrong-direction child.
- :func:`distillation_dataset`: per node, the context ids, the children and the search's visit
  distribution (AlphaZero policy targets).
- :func:`general_dataset`, :func:`general_preferences`, :func:`self_distillation_dataset`: general-task
  replay rows in the SFT, DPO and distillation formats.
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
    """Preference pairs of whole answers along each prompt's best successful path.

    At step ``i`` the prompt is ``prompt + answer[:i]``; chosen is the rest of the answer; rejected is the whole
    continuation the search played after a sibling it valued lower (lowest Q first), so both sides are
    complete answers. Steps where no sibling was completed give no pair.
    """
    rows = []
    for r in _best_per_prompt(records, min_hard_reward).values():
        tokens = r["tokens"]
        for i, step in enumerate(r["records"]):
            if i >= len(tokens):
                break
            rest = tokenizer.decode(tokens[i:], skip_special_tokens=True)
            continuations = step.get("continuations") or []
            q_values = step.get("q_values") or []
            chosen_q = next((q for t, q in zip(step["candidates"], q_values, strict=False) if t == tokens[i]), None)
            siblings = sorted((q, c) for t, q, c in zip(step["candidates"], q_values, continuations, strict=False)
                              if t != tokens[i] and c and (chosen_q is None or q < chosen_q))
            prefix = tokenizer.decode(tokens[:i], skip_special_tokens=True)
            for _, continuation in siblings[:max_pairs_per_step]:
                text = tokenizer.decode(continuation, skip_special_tokens=True)
                if text and rest and text != rest:
                    rows.append({"prompt": r["prompt"] + prefix, "chosen": rest, "rejected": text})
    return Dataset.from_list(rows) if rows else _empty(["prompt", "chosen", "rejected"])


def distillation_dataset(records: Iterable[dict], *, target: str = "visits") -> Dataset:
    """Per searched node: ``input_ids`` (prompt ids + answer so far), ``children`` and ``visits``, the policy
    target: the search's visit distribution, or with ``target="improved"`` Gumbel MuZero's improved policy
    where the episode recorded one (else its visits)."""
    rows = []
    for r in records:
        for i, step in enumerate(r["records"]):
            policy = (step.get("improved") or step["visits"]) if target == "improved" else step["visits"]
            if not policy or i >= len(r["tokens"]):
                continue
            rows.append({"input_ids": r["prompt_ids"] + r["tokens"][:i], "children": step["candidates"],
                         "visits": policy})
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "children", "visits"])


def _problems(problems, seed: int, task: str) -> list:
    """A list of problems, or ``n`` fresh ones sampled from the built-in ``task``."""
    if not isinstance(problems, int):
        return list(problems)
    rng, general = random.Random(seed), builtin_task(task)
    return [general.sample(rng) for _ in range(problems)]


def general_dataset(problems, *, seed: int = 0, task: str = "reverse") -> Dataset:
    """Prompt/completion pairs of general-task ``problems`` (or of ``n`` sampled ones), for SFT replay."""
    rows = [{"prompt": p.prompt, "completion": p.solutions.get("step", p.answer + ".")}
            for p in _problems(problems, seed, task)]
    return Dataset.from_list(rows) if rows else _empty(["prompt", "completion"])


def wrong_answer(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: a number moved a little, or a text with two characters swapped."""
    if answer.lstrip("-").isdigit():
        return str(int(answer) + rng.choice([-10, -2, -1, 1, 2, 10]))
    chars = list(answer)
    if len(set(chars)) < 2:
        return answer + answer[-1:] or "x"
    while "".join(chars) == answer:
        i, j = rng.sample(range(len(chars)), 2)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def general_preferences(problems, *, seed: int = 0, task: str = "reverse") -> Dataset:
    """DPO replay rows: each general problem's answer preferred over a wrong one."""
    rng = random.Random(seed)
    rows = [{"prompt": p.prompt, "chosen": p.solutions.get("step", p.answer + "."),
             "rejected": wrong_answer(p.answer, rng) + "."} for p in _problems(problems, seed, task)]
    return Dataset.from_list(rows) if rows else _empty(["prompt", "chosen", "rejected"])


def self_distillation_dataset(model, tokenizer, problems, *, k: int = 4, seed: int = 0,
                              task: str = "reverse") -> Dataset:
    """Distillation replay rows: at every position of each general problem's answer, the model's own top-``k``
    next tokens and their probabilities (renormalised), so distillation keeps the pre-round distribution."""
    import torch

    rows = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for p in _problems(problems, seed, task):
            prompt_ids = tokenizer(p.prompt)["input_ids"]
            answer_ids = tokenizer(p.solutions.get("step", p.answer + "."), add_special_tokens=False)["input_ids"]
            ids = prompt_ids + answer_ids + [tokenizer.eos_token_id]
            logits = model(input_ids=torch.tensor([ids[:-1]], device=model.device)).logits[0].float()  # (T, V)
            for i in range(len(prompt_ids) - 1, len(ids) - 1):
                probs, top = torch.softmax(logits[i], -1).topk(k)
                rows.append({"input_ids": ids[:i + 1], "children": top.tolist(),
                             "visits": (probs / probs.sum()).tolist()})
    model.train(was_training)
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "children", "visits"])


def _empty(columns: list[str]) -> Dataset:
    return Dataset.from_dict({c: [] for c in columns})
