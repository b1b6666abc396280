"""``Judge``: completeness from P(EOS | context), and an LMGT-style yes/no verdict.

Completeness reuses :class:`~tokentree_env.teachers.hf.HFTeacher` (KV-cached, its EOS mapped to
the primary's EOS), so asking after each punctuation token costs one cached 1-token forward.

Verdicts follow the zoo judge's protocol (see :mod:`tokentree_env.zoo.catalog`): the judge works
the problem up to ``;``, the proposed answer is appended with ``>``, and P(y) is compared with
P(n). Other judges use a plain yes/no prompt (``verdict_template``) and compare P(" yes") with
P(" no").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tokentree_env.models.generation import greedy_complete, next_token_logprobs
from tokentree_env.models.loader import LoadedModel
from tokentree_env.tasks.base import extract_final_answer
from tokentree_env.teachers.base import Context
from tokentree_env.teachers.hf import HFTeacher
from tokentree_env.zoo.catalog import JUDGE_ANSWER_END, JUDGE_CHECK_PREFIX, JUDGE_WORK_END

PLAIN_VERDICT_TEMPLATE = "Question: {prompt}\nProposed answer: {answer}\nIs the proposed answer correct? Answer yes or no:"


def worked_checks(lm: LoadedModel, prompts: Sequence[str], max_work_tokens: int = 24, counters=None) -> list[str]:
    """The zoo judge's own working of each prompt, up to its end marker (batched greedy decoding).

    The working depends on the prompt only, so a caller checking many answers to one prompt works
    it once. With ``counters``, charges the ``generate`` per row (the prefill, then one forward per
    further token).
    """
    checks = [JUDGE_CHECK_PREFIX + p for p in prompts]
    works = greedy_complete(lm.model, lm.tokenizer, checks, max_new_tokens=max_work_tokens)
    if counters is not None:
        for check, work in zip(checks, works, strict=True):
            generated = max(1, len(lm.tokenizer(work, add_special_tokens=False)["input_ids"]) + 1)  # + EOS
            counters.forward_calls += generated
            counters.forwarded_tokens += len(lm.tokenizer(check)["input_ids"]) + generated - 1
            counters.generated_tokens += generated
    return [w.split(JUDGE_WORK_END)[0] for w in works]


def worked_verdicts(lm: LoadedModel, prompts: Sequence[str], answers: Sequence[str],
                    max_work_tokens: int = 24, counters=None, works: Sequence[str] | None = None) -> list[float]:
    """P(yes) of the zoo judge's worked verdict on each proposed answer (batched).

    ``works`` are the prompts' workings from :func:`worked_checks` (computed here when not given).
    With ``counters``, charges what ran per row, the final forward over the whole context included.
    """
    if works is None:
        works = worked_checks(lm, prompts, max_work_tokens, counters)
    contexts = [JUDGE_CHECK_PREFIX + p + w + JUDGE_WORK_END + extract_final_answer(a) + JUDGE_ANSWER_END
                for p, w, a in zip(prompts, works, answers, strict=True)]
    if counters is not None:
        counters.forward_calls += len(contexts)
        counters.forwarded_tokens += sum(len(lm.tokenizer(c)["input_ids"]) for c in contexts)
    logp = next_token_logprobs(lm.model, lm.tokenizer, contexts)
    yes, no = (lm.tokenizer.convert_tokens_to_ids(t) for t in ("y", "n"))
    return torch.sigmoid(logp[:, yes] - logp[:, no]).tolist()


class Judge:
    """A small LM that says whether an answer is complete, and whether it is right.

    Args:
        model: hub id, local path, ``zoo:NAME`` or a :class:`LoadedModel`.
        verdict_template: ``None`` for the zoo protocol (worked verdict), or a format string with
            ``{prompt}`` and ``{answer}`` whose next token is " yes" or " no".
    """

    def __init__(self, model: str | LoadedModel, *, verdict_template: str | None = None) -> None:
        self.teacher = HFTeacher(model)
        self.name = self.teacher.name
        if verdict_template is None and self.teacher.tokenizer.convert_tokens_to_ids("y") is None:
            verdict_template = PLAIN_VERDICT_TEMPLATE
        self.verdict_template = verdict_template
        self._verdicts: dict[tuple[str, str], float] = {}  # verdicts are deterministic: ask once
        self._works: dict[str, str] = {}  # the judge's working of each prompt (zoo protocol)

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

    def verdict(self, prompt: str, answer: str) -> float:
        """P(yes): the judge's belief that ``answer`` answers ``prompt`` correctly (cached: a search
        reaches the same answers again and again)."""
        key = (prompt, answer)
        if key not in self._verdicts:
            if len(self._verdicts) > 100_000:
                self._verdicts.clear()
            self._verdicts[key] = self._ask(prompt, answer)
        return self._verdicts[key]

    def prepare(self, prompts: Sequence[str], *, batch_size: int = 64) -> None:
        """Work many prompts at once (batched decoding), ahead of their verdicts. The zoo protocol's
        working depends on the prompt alone; other judges have nothing to prepare."""
        if self.verdict_template is not None:
            return
        todo = list(dict.fromkeys(p for p in prompts if p not in self._works))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            with torch.no_grad():
                self._works.update(zip(chunk, worked_checks(self.teacher.lm, chunk, counters=self.counters),
                                       strict=True))

    @torch.no_grad()
    def _ask(self, prompt: str, answer: str) -> float:
        lm = self.teacher.lm
        if self.verdict_template is None:
            if prompt not in self._works:
                if len(self._works) > 100_000:
                    self._works.clear()
                self._works[prompt] = worked_checks(lm, [prompt], counters=self.counters)[0]
            return worked_verdicts(lm, [prompt], [answer], counters=self.counters, works=[self._works[prompt]])[0]
        text = self.verdict_template.format(prompt=prompt, answer=answer)
        logp = next_token_logprobs(lm.model, lm.tokenizer, [text])[0]
        self.counters.forward_calls += 1
        self.counters.forwarded_tokens += len(lm.tokenizer(text)["input_ids"])
        ids = [lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" yes", " no")]
        return float(torch.sigmoid(logp[ids[0]] - logp[ids[1]]))

    def close(self) -> None:
        self.teacher.close()
        self._verdicts.clear()
        self._works.clear()
