"""``Judge``: completeness from P(EOS | context), and an LMGT-style yes/no verdict.

Completeness reuses :class:`~tokentree_env.teachers.hf.HFTeacher` (KV-cached, its EOS mapped to
the primary's EOS), so asking after each punctuation token costs one cached 1-token forward.

The verdict follows one of four protocols (``Judge.protocol``):

- ``"likelihood"`` (the ``chain5`` zoo judge): the judge reads the prompt and the whole proposed answer once
  and its verdict is its own per-token likelihood of that answer, ``exp(mean log P(token | before))`` over the
  answer's tokens and EOS. It generates nothing and works nothing out before it compares: a fallible checker,
  not a second solver (its ROC AUC is reported wherever it is used).
- ``"check"``: ``check {prompt};{answer}>`` then P(y) against P(n), the whole answer shown (a y/n checker).
- ``"worked"`` (the ``chain3`` zoo judge): the judge works the problem itself up to ``;``, greedily,
  then the final answer is appended with ``>`` and P(y) is compared with P(n). This re-solves the
  problem: on ``chain3`` it is a verifier in disguise, kept for reproducibility.
- ``"yesno"`` (every other model): a plain question, ``verdict_template``, after which the verdict is
  ``P(yes) / (P(yes) + P(no))`` over the model's " yes" and " no" tokens.
- ``"fewshot"``: the same question after worked examples (``examples``: right and wrong answers to train problems,
  each followed by its verdict), for a base model that needs to see what is asked.
- ``"chat"``: the question as the user turn of the model's own chat template (an instruction model), the verdict
  read from the first token of the assistant's reply ("Yes"/"yes" against "No"/"no").

A judge is a fallible checker: its ROC AUC is measured wherever it is used (``python -m benchmarks.real_models
--judge`` chooses a real model's protocol on train-split answers and reports it on held-out ones).

The zoo protocols are read from the model folder's ``zoo_card.json``; any other model gets ``"yesno"``.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch

from tokentree_env.errors import ConfigError
from tokentree_env.judge.protocol import JUDGE_ANSWER_END, JUDGE_CHECK_PREFIX, JUDGE_WORK_END
from tokentree_env.models.generation import greedy_complete, next_token_logprobs
from tokentree_env.models.loader import LoadedModel
from tokentree_env.tasks.base import extract_final_answer
from tokentree_env.teachers.base import Context
from tokentree_env.teachers.hf import HFTeacher

PLAIN_VERDICT_TEMPLATE = "Question: {prompt}\nProposed answer: {answer}\nIs the proposed answer correct? Answer yes or no:"
PROTOCOLS = ("likelihood", "check", "worked", "yesno", "fewshot", "chat")
FEWSHOT_EXAMPLE = PLAIN_VERDICT_TEMPLATE + " {verdict}\n\n"
YES, NO = ("yes", " yes", "Yes", " Yes"), ("no", " no", "No", " No")
CACHE_LIMIT = 100_000


def worked_checks(lm: LoadedModel, prompts: Sequence[str], max_work_tokens: int = 24, counters=None,
                  owners: Sequence[Hashable] | None = None) -> list[str]:
    """The zoo judge's own working of each prompt, up to its end marker (batched greedy decoding).

    The working depends on the prompt only, so a caller checking many answers to one prompt works
    it once. With ``counters``, charges each row what it forwarded (the prefill, then one token per
    further step), to ``owners[i]`` as well when given.
    """
    checks = [JUDGE_CHECK_PREFIX + p for p in prompts]
    works = greedy_complete(lm.model, lm.tokenizer, checks, max_new_tokens=max_work_tokens)
    if counters is not None:
        owners = owners if owners is not None else [None] * len(checks)
        for check, work, owner in zip(checks, works, owners, strict=True):
            generated = max(1, len(lm.tokenizer(work, add_special_tokens=False)["input_ids"]) + 1)  # + EOS
            counters.add(calls=generated, forwarded=len(lm.tokenizer(check)["input_ids"]) + generated - 1,
                         generated=generated, owner=owner)
    return [w.split(JUDGE_WORK_END)[0] for w in works]


def worked_verdicts(lm: LoadedModel, prompts: Sequence[str], answers: Sequence[str],
                    max_work_tokens: int = 24, counters=None, works: Sequence[str] | None = None) -> list[float]:
    """P(yes) of the zoo judge's verdict on each proposed answer (batched).

    ``works`` are the prompts' workings from :func:`worked_checks` (computed here when not given). With
    ``counters``, charges the final forward per row.
    """
    if works is None:
        works = worked_checks(lm, prompts, max_work_tokens, counters)
    contexts = [JUDGE_CHECK_PREFIX + p + w + JUDGE_WORK_END + extract_final_answer(a) + JUDGE_ANSWER_END
                for p, w, a in zip(prompts, works, answers, strict=True)]
    return _yes_no(lm, contexts, counters)


def checked_verdicts(lm: LoadedModel, prompts: Sequence[str], answers: Sequence[str], counters=None,
                     owners: Sequence | None = None) -> list[float]:
    """P(yes) of the ``"check"`` judge on each whole answer (batched; no working of its own)."""
    contexts = [JUDGE_CHECK_PREFIX + p + JUDGE_WORK_END + a.strip() + JUDGE_ANSWER_END
                for p, a in zip(prompts, answers, strict=True)]
    return _yes_no(lm, contexts, counters, owners)


def _yes_no(lm: LoadedModel, contexts: list[str], counters, owners: Sequence | None = None) -> list[float]:
    """P(y) against P(n) after each context (one batched forward), each row charged to its owner in ``counters``."""
    if counters is not None:
        for context, owner in zip(contexts, owners or [None] * len(contexts), strict=True):
            counters.add(calls=1, forwarded=len(lm.tokenizer(context)["input_ids"]), owner=owner)
    logp = next_token_logprobs(lm.model, lm.tokenizer, contexts)
    yes, no = (lm.tokenizer.convert_tokens_to_ids(t) for t in ("y", "n"))
    return torch.sigmoid(logp[:, yes] - logp[:, no]).tolist()


def likelihood_verdicts(lm: LoadedModel, prompts: Sequence[str], answers: Sequence[str], counters=None,
                        owners: Sequence | None = None) -> list[float]:
    """The ``"likelihood"`` verdict of each answer: ``exp`` of the judge's mean log-probability of the answer's
    tokens and EOS after the prompt (one forward for up to 64 answers, right-padded; no generation)."""
    tok = lm.tokenizer
    rows, spans = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        head = tok(prompt)["input_ids"]
        tail = tok(answer.strip(), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append(head + tail)
        spans.append((len(head), len(tail)))
    if counters is not None:
        for row, owner in zip(rows, owners or [None] * len(rows), strict=True):
            counters.add(calls=1, forwarded=len(row) - 1, owner=owner)
    out = []
    with torch.no_grad():  # right-padded batches: under causal attention the padding never reaches a real position
        for first in range(0, len(rows), 64):
            chunk, chunk_spans = rows[first:first + 64], spans[first:first + 64]
            width = max(len(r) - 1 for r in chunk)
            ids = torch.tensor([r[:-1] + [r[-2]] * (width - len(r) + 1) for r in chunk], device=lm.model.device)
            logp = torch.log_softmax(lm.model(input_ids=ids).logits.float(), dim=-1)  # (B, T, V)
            for b, (row, (start, n)) in enumerate(zip(chunk, chunk_spans, strict=True)):
                targets = torch.tensor(row[start:], device=logp.device)
                out.append(float(logp[b, start - 1:start - 1 + n].gather(1, targets[:, None]).mean().exp()))
    return out


def _first_tokens(tokenizer, words: Sequence[str]) -> list[int]:
    """The first token of each spelling of a word (distinct ids)."""
    return sorted({tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words})


def zoo_protocol(lm: LoadedModel) -> str | None:
    """The verdict protocol a zoo judge was trained for (its ``zoo_card.json``), or None for other models."""
    card = Path(lm.path) / "zoo_card.json" if lm.path else None
    if card is None or not card.is_file():
        return None
    spec = json.loads(card.read_text()).get("spec", {})
    return spec.get("verdict_protocol", "worked") if spec.get("role") == "judge" else None


class Judge:
    """A small LM that says whether an answer is complete, and whether it is right.

    Args:
        model: hub id, local path, ``zoo:NAME`` or a :class:`LoadedModel`.
        protocol: one of :data:`PROTOCOLS` (default: the zoo card's, else ``"yesno"``).
        verdict_template: the yes/no question, a format string with ``{prompt}`` and ``{answer}``.
        examples: the ``"fewshot"`` protocol's worked examples, ``(prompt, answer, right)`` triples (draw them from
            problems kept out of any set the judge is measured on).
    """

    def __init__(self, model: str | LoadedModel, *, protocol: str | None = None,
                 verdict_template: str = PLAIN_VERDICT_TEMPLATE, examples: Sequence[tuple[str, str, bool]] = (),
                 device: str | None = None, dtype=None) -> None:
        self.teacher = HFTeacher(model, device=device, dtype=dtype)
        self.teacher.every_prefix = True  # it reads whole answers now and then: siblings share their beginning
        self.parameters = self.teacher.parameters
        self.name = self.teacher.name
        self.protocol = protocol or zoo_protocol(self.teacher.lm) or "yesno"
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"Judge protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        self.verdict_template = verdict_template
        if self.protocol == "fewshot" and not examples:
            raise ConfigError("the 'fewshot' judge protocol needs examples=[(prompt, answer, right), ...]")
        self.preamble = "".join(FEWSHOT_EXAMPLE.format(prompt=p, answer=a, verdict="yes" if ok else "no")
                                for p, a, ok in examples) if self.protocol == "fewshot" else ""
        self._verdicts: dict[tuple[str, str], float] = {}  # verdicts are deterministic: ask once
        self._works: dict[str, str] = {}  # the judge's working of each prompt ("worked" protocol)
        self._heads: dict[str, list[int]] = {}  # each prompt's ids ("likelihood" protocol), encoded once

    @property
    def counters(self):
        return self.teacher.counters

    def bind(self, primary_tokenizer) -> None:
        """Map the judge's EOS onto the primary's (the judge may use another tokenizer)."""
        self.teacher.bind(primary_tokenizer)
        self._eos = primary_tokenizer.eos_token_id

    def p_complete(self, context: Context) -> float:
        """P(EOS | context) under the judge: high once an answer is finished."""
        return float(self.teacher.next_logprobs([context])[0, self._eos].exp())

    def verdict(self, prompt: str, answer: str, owner=None) -> float:
        """P(yes): the judge's belief that ``answer`` answers ``prompt`` correctly (cached: a search
        reaches the same answers again and again); the work is charged to ``owner``."""
        key = (prompt, answer)
        if key not in self._verdicts:
            if len(self._verdicts) > CACHE_LIMIT:
                self._verdicts.clear()
            with self.counters.charging(owner):
                self._verdicts[key] = self._ask(prompt, answer)
        return self._verdicts[key]

    def verdicts(self, prompts: Sequence[str], answers: Sequence[str], owners: Sequence | None = None) -> list[float]:
        """:meth:`verdict` of many answers (one batched forward for the uncached ones), each charged to its owner."""
        owners = list(owners) if owners is not None else [None] * len(prompts)
        todo = list(dict.fromkeys((p, a) for p, a in zip(prompts, answers, strict=True) if (p, a) not in self._verdicts))
        if todo and self.protocol == "likelihood" and self.teacher.shares_primary_tokenizer:
            owner_of = dict(zip(zip(prompts, answers, strict=True), owners, strict=True))
            self._verdicts.update(zip(todo, self._path_likelihoods(todo, [owner_of[k] for k in todo]), strict=True))
            todo = []
        batched = {"check": checked_verdicts, "likelihood": likelihood_verdicts}.get(self.protocol)
        if todo and batched is not None:
            owner_of = dict(zip(zip(prompts, answers, strict=True), owners, strict=True))
            with torch.no_grad():  # one batch; each answer's share charged to its owner
                values = batched(self.teacher.lm, [p for p, _ in todo], [a for _, a in todo], counters=self.counters,
                                 owners=[owner_of[key] for key in todo])
            self._verdicts.update(zip(todo, values, strict=True))
        return [self.verdict(p, a, o) for p, a, o in zip(prompts, answers, owners, strict=True)]

    def _path_likelihoods(self, pairs: Sequence[tuple[str, str]], owners: Sequence) -> list[float]:
        """The ``"likelihood"`` verdicts of ``(prompt, answer)`` pairs read through the judge's KV cache (a judge that
        shares the primary's tokenizer): :func:`likelihood_verdicts`'s value, but a prompt is read once and answers
        that share a beginning (a search's siblings) share its forward."""
        teacher, contexts, starts, tails = self.teacher, [], [], []
        for (prompt, answer), owner in zip(pairs, owners, strict=True):
            if prompt not in self._heads:
                if len(self._heads) > CACHE_LIMIT:
                    self._heads.clear()
                self._heads[prompt] = list(teacher.encode(prompt))
            head = self._heads[prompt]
            tail = [*teacher.encode(answer.strip(), special=False), teacher.tokenizer.eos_token_id]
            contexts.append(Context(tuple(head + tail[:-1]), prompt + answer.strip(), owner))
            starts.append(len(head))
            tails.append(tail)
        with torch.no_grad():
            rows = self.teacher.path_logprobs(contexts, starts)
        return [float(lp[torch.arange(len(tail)), torch.tensor(tail)].mean().exp()) for lp, tail in zip(rows, tails,
                                                                                                        strict=True)]

    def prepare(self, prompts: Sequence[str], *, batch_size: int = 64, owners: Sequence[Hashable] | None = None) -> None:
        """Work many prompts at once (batched decoding), ahead of their verdicts. Only the ``"worked"``
        protocol has anything to prepare. Each prompt's working is charged to ``owners[i]`` when given."""
        if self.protocol != "worked":
            return
        owner_of = dict(zip(prompts, owners, strict=True)) if owners is not None else {}
        todo = list(dict.fromkeys(p for p in prompts if p not in self._works))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            with torch.no_grad():
                works = worked_checks(self.teacher.lm, chunk, counters=self.counters,
                                      owners=[owner_of.get(p) for p in chunk])
            self._works.update(zip(chunk, works, strict=True))

    @torch.no_grad()
    def _ask(self, prompt: str, answer: str) -> float:
        lm = self.teacher.lm
        if self.protocol == "likelihood":
            return likelihood_verdicts(lm, [prompt], [answer], counters=self.counters)[0]
        if self.protocol == "check":
            return checked_verdicts(lm, [prompt], [answer], counters=self.counters)[0]
        if self.protocol == "worked":
            if prompt not in self._works:
                if len(self._works) > CACHE_LIMIT:
                    self._works.clear()
                self._works[prompt] = worked_checks(lm, [prompt], counters=self.counters)[0]
            return worked_verdicts(lm, [prompt], [answer], counters=self.counters, works=[self._works[prompt]])[0]
        question = self.verdict_template.format(prompt=prompt, answer=answer.strip())
        if self.protocol == "chat":
            text = lm.tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                    add_generation_prompt=True)
            ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = lm.tokenizer(self.preamble + question)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids], device=lm.model.device)).logits[0, -1]
                                     .float(), dim=-1)
        self.counters.add(calls=1, forwarded=len(ids))
        if self.protocol == "yesno":
            yes, no = (lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" yes", " no"))
            return float(torch.sigmoid(logp[yes] - logp[no]))  # = P(yes) / (P(yes) + P(no))
        yes, no = (torch.logsumexp(logp[_first_tokens(lm.tokenizer, words)], 0) for words in (YES, NO))
        return float(torch.sigmoid(yes - no))

    def clear_caches(self) -> None:
        """Forget cached verdicts, workings and forwards (the next ones are computed again and charged)."""
        self.teacher.clear_caches()
        self._verdicts.clear()
        self._works.clear()

    def close(self) -> None:
        self.teacher.close()
        self._verdicts.clear()
        self._works.clear()
