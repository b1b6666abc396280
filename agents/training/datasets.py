"""Training data for the primary, built from the episode store (public: drive TRL yourself).

**One route for training text.** Every row is token ids in the prompt format the search played: the episode's
``prompt_ids`` (the primary's format, :func:`tokentree_env.models.prompts.prompt_ids`: its chat template when it
has one) and the answer's ``tokens``, never text decoded and tokenised again (a BPE would merge across the
boundary). Rows that come as text (teachers' answers, general-task replay) are encoded once, the way the env
encodes a teacher's reference answer. The RL signals' prompts are in TRL's conversational format for a primary
with a chat template (TRL applies it) and plain text otherwise (TRL adds the special tokens), which yields the
same ids (tested).

- :func:`sft_dataset`: the best path per prompt (expert iteration): ``{"input_ids", "completion_mask"}``.
- :func:`dpo_dataset`: sibling pairs along successful paths: ``{"prompt_ids", "chosen_ids", "rejected_ids"}``;
  chosen = the child taken and the rest of the answer, rejected = the continuation the search played after a
  sibling it valued lower.
- :func:`distillation_dataset`: per node, the context ids, the children and the search's visit
  distribution (AlphaZero policy targets).
- :func:`general_dataset`, :func:`general_preferences`, :func:`self_distillation_dataset`: general-task
  replay rows in the SFT, DPO and distillation formats.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from datasets import Dataset

from tokentree_env.models.prompts import has_chat_template, prompt_ids
from tokentree_env.tasks import builtin_task


def answer_ids(tokenizer, text: str) -> list[int]:
    """An answer given as text in the primary's ids, as the env encodes a teacher's reference answer."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def episode_ids(record: dict, tokenizer) -> tuple[list[int], list[int]]:
    """A record's prompt ids and answer ids: those the search played (``prompt_ids``, ``tokens``), or, for a record
    that holds text only (a teacher's answer), the prompt in the primary's format and the answer encoded once."""
    prompt = record.get("prompt_ids") or prompt_ids(tokenizer, record["prompt"])
    answer = record["tokens"] if "tokens" in record else answer_ids(tokenizer, record["completion"])
    return list(prompt), list(answer)


def _closed(answer: list[int], eos: int) -> list[int]:
    """The answer ending with EOS (the primary learns to stop)."""
    return answer if answer and answer[-1] == eos else [*answer, eos]


def completion_row(prompt: list[int], answer: list[int], eos: int) -> dict:
    """An SFT row: the ids of prompt + answer (EOS last), the loss on the answer's ids only."""
    answer = _closed(answer, eos)
    return {"input_ids": [*prompt, *answer], "completion_mask": [0] * len(prompt) + [1] * len(answer)}


def trl_prompt(tokenizer, prompt: str):
    """An RL row's prompt: TRL's conversational format for a primary with a chat template, else the text."""
    return [{"role": "user", "content": prompt}] if has_chat_template(tokenizer) else prompt


def _best_per_prompt(records: Iterable[dict], min_hard_reward: float) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for r in records:
        if r["hard_reward"] < min_hard_reward:
            continue
        key = (r["hard_reward"], r["episode_return"])
        if r["prompt"] not in best or key > (best[r["prompt"]]["hard_reward"], best[r["prompt"]]["episode_return"]):
            best[r["prompt"]] = r
    return best


def sft_dataset(records: Iterable[dict], tokenizer, *, min_hard_reward: float = 1.0, distinct: bool = False
                ) -> Dataset:
    """The best episode of each prompt that reached ``min_hard_reward``, as the ids it played (loss on the answer);
    with ``distinct``, every distinct verified answer instead: each such episode's, and every answer its search saw the
    verifier pass (``verified_answers``: a tree is data, rollouts included)."""
    records = list(records)
    if not distinct:
        best = _best_per_prompt(records, min_hard_reward)
        rows = [completion_row(*episode_ids(r, tokenizer), tokenizer.eos_token_id) for r in best.values()]
        return Dataset.from_list(rows) if rows else _empty(["input_ids", "completion_mask"])
    seen, rows = set(), []
    for r in records:
        prompt, answer = episode_ids(r, tokenizer)
        answers = ([answer] if r["hard_reward"] >= min_hard_reward else []) + list(r.get("verified_answers") or [])
        for a in answers:
            key = (tuple(prompt), tuple(_closed(list(a), tokenizer.eos_token_id)))
            if key not in seen:
                seen.add(key)
                rows.append(completion_row(prompt, list(a), tokenizer.eos_token_id))
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "completion_mask"])


def dpo_dataset(records: Iterable[dict], tokenizer, *, min_hard_reward: float = 1.0, max_pairs_per_step: int = 1
                ) -> Dataset:
    """Preference pairs of whole answers along each prompt's best successful path, in ids.

    At step ``i`` the prompt is the episode's prompt ids + ``answer[:i]``; chosen is the rest of the answer; rejected
    is the whole continuation the search played after a sibling it valued lower (lowest Q first), so both sides are
    complete answers (EOS last). Where the search saw the verifier (self-play records ``continuation_scores``), a
    sibling is a negative only when its continuation was **verified wrong**: a right answer in another style is not
    one. Steps where no sibling was completed give no pair. A record of sampled answers (coverage-first sampling)
    pairs its verified answer with its samples verified wrong, whole answers both.
    """
    rows, eos = [], tokenizer.eos_token_id
    for r in _best_per_prompt(records, min_hard_reward).values():
        prompt, tokens = episode_ids(r, tokenizer)
        for i, step in enumerate(r["records"]):
            if i >= len(tokens):
                break
            rest = _closed(tokens[i:], eos)
            continuations = step.get("continuations") or []
            q_values = step.get("q_values") or []
            chosen_q = next((q for t, q in zip(step["candidates"], q_values, strict=False) if t == tokens[i]), None)
            scores = step.get("continuation_scores") or [None] * len(continuations)
            siblings = sorted((q, c) for t, q, c, s in zip(step["candidates"], q_values, continuations, scores,
                                                          strict=False)
                              if t != tokens[i] and c and (chosen_q is None or q < chosen_q)
                              and (s is None if not any(x is not None for x in scores) else s is not None and s < 0.5))
            for _, continuation in siblings[:max_pairs_per_step]:
                rejected = _closed(list(continuation), eos)
                if rejected != rest:
                    rows.append({"prompt_ids": [*prompt, *tokens[:i]], "chosen_ids": rest, "rejected_ids": rejected})
        for wrong in (r.get("wrong_answers") or [])[:max_pairs_per_step]:  # sampled answers verified wrong
            if (rejected := _closed(list(wrong), eos)) != _closed(tokens, eos):
                rows.append({"prompt_ids": prompt, "chosen_ids": _closed(tokens, eos), "rejected_ids": rejected})
    return Dataset.from_list(rows) if rows else _empty(["prompt_ids", "chosen_ids", "rejected_ids"])


def distillation_dataset(records: Iterable[dict], *, target: str = "visits", min_visits: int = 1) -> Dataset:
    """Per searched node with at least ``min_visits`` visits: ``input_ids`` (prompt ids + answer so far),
    ``children`` and ``visits``, the policy target: the search's visit distribution, or with ``target="improved"``
    the improved policy ``softmax(panel logits + σ(completed Q))`` (Gumbel MuZero's target, for any search:
    :func:`improved_target`)."""
    rows = []
    for r in records:
        for i, step in enumerate(r["records"]):
            if not step.get("visits") or i >= len(r["tokens"]) or step.get("visit_total", min_visits) < min_visits:
                continue
            policy = improved_target(step) if target == "improved" else step["visits"]
            if not policy:
                continue
            rows.append({"input_ids": r["prompt_ids"] + r["tokens"][:i], "children": step["candidates"],
                         "visits": policy})
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "children", "visits"])


def improved_target(step: dict) -> list[float]:
    """``softmax(logits + σ(q̂))`` over a node's valid children from its record (Danihelka et al. 2022): the logits
    are the panel's log-probs of the children (or the improved policy a Gumbel search recorded); ``q̂`` is a visited
    child's Q and, for an unvisited one, the prior-weighted mean Q of the visited children (the mixed value without
    the node's own estimate), rescaled to [0, 1]; ``σ = (c_visit + max N) · c_scale`` with the visit counts."""
    import numpy as np

    from agents.search.gumbel import C_SCALE, C_VISIT

    if step.get("improved"):
        return list(step["improved"])
    logits = np.asarray(step.get("panel_logprobs") or [], dtype=np.float64)
    shares, q = np.asarray(step["visits"], dtype=np.float64), np.asarray(step.get("q_values") or [], dtype=np.float64)
    if not len(logits) or len(logits) != len(shares) or len(q) != len(shares):
        return []
    counts = shares * step.get("visit_total", 1)
    prior = np.exp(logits - logits.max())
    prior /= prior.sum()
    seen = counts > 0
    mixed = float((prior[seen] * q[seen]).sum() / prior[seen].sum()) if seen.any() else 0.0
    completed = np.where(seen, q, mixed)
    span = completed.max() - completed.min()
    completed = (completed - completed.min()) / span if span > 1e-8 else np.zeros_like(completed)
    scores = logits + (C_VISIT + counts.max()) * C_SCALE * completed
    policy = np.exp(scores - scores.max())
    return (policy / policy.sum()).tolist()


def _problems(problems, seed: int, task: str) -> list:
    """A list of problems, or ``n`` fresh ones sampled from the built-in ``task``."""
    if not isinstance(problems, int):
        return list(problems)
    rng, general = random.Random(seed), builtin_task(task)
    return [general.sample(rng) for _ in range(problems)]


def general_answer(problem) -> str:
    """A general-task problem's answer text (its step solution, or the answer and a full stop)."""
    return problem.solutions.get("step", problem.answer + ".")


def general_dataset(problems, tokenizer, *, seed: int = 0, task: str = "reverse") -> Dataset:
    """SFT rows of general-task ``problems`` (or of ``n`` sampled ones), for replay, in the primary's format."""
    rows = [completion_row(prompt_ids(tokenizer, p.prompt), answer_ids(tokenizer, general_answer(p)),
                           tokenizer.eos_token_id) for p in _problems(problems, seed, task)]
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "completion_mask"])


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


def general_preferences(problems, tokenizer, *, seed: int = 0, task: str = "reverse") -> Dataset:
    """DPO replay rows: each general problem's answer preferred over a wrong one, in the primary's format."""
    rng, eos = random.Random(seed), tokenizer.eos_token_id
    rows = [{"prompt_ids": prompt_ids(tokenizer, p.prompt),
             "chosen_ids": _closed(answer_ids(tokenizer, general_answer(p)), eos),
             "rejected_ids": _closed(answer_ids(tokenizer, wrong_answer(p.answer, rng) + "."), eos)}
            for p in _problems(problems, seed, task)]
    return Dataset.from_list(rows) if rows else _empty(["prompt_ids", "chosen_ids", "rejected_ids"])


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
            prompt = prompt_ids(tokenizer, p.prompt)
            ids = completion_row(prompt, answer_ids(tokenizer, general_answer(p)), tokenizer.eos_token_id)["input_ids"]
            logits = model(input_ids=torch.tensor([ids[:-1]], device=model.device)).logits[0].float()  # (T, V)
            for i in range(len(prompt) - 1, len(ids) - 1):
                probs, top = torch.softmax(logits[i], -1).topk(k)
                rows.append({"input_ids": ids[:i + 1], "children": top.tolist(),
                             "visits": (probs / probs.sum()).tolist()})
    model.train(was_training)
    return Dataset.from_list(rows) if rows else _empty(["input_ids", "children", "visits"])


def _empty(columns: list[str]) -> Dataset:
    return Dataset.from_dict({c: [] for c in columns})
