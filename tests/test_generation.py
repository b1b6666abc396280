"""Specification of batched sampling: a prompt is read once however many samples it gets, draws are seeded, and the
caller's random stream is left alone."""

import torch

from tokentree_env.models import load_model
from tokentree_env.models.generation import greedy_ids, sample_rows


def _rows(tok):
    return [tok("12+35+20=")["input_ids"], tok("1+2+3=")["input_ids"]]


def test_a_prompt_is_forwarded_once_and_its_samples_tokens_each_once():
    lm = load_model("zoo:teacher-llama")
    rows = _rows(lm.tokenizer)
    shapes = []
    hook = lm.model.register_forward_hook(lambda module, args, kwargs, out: shapes.append(kwargs["input_ids"].shape),
                                          with_kwargs=True)
    samples, forwarded = sample_rows(lm.model, lm.tokenizer, rows, n=4, max_new_tokens=12, seed=3)
    hook.remove()
    for row, news, fed in zip(rows, samples, forwarded, strict=True):
        cut = [len(new) - (len(new) == 12) for new in news]  # a sample cut at the limit never feeds its last token
        assert fed == len(row) + sum(cut)
    prefill, *steps = shapes
    assert prefill == (2, max(len(r) for r in rows))  # each prompt read once, not once per sample
    assert all(shape == (2 * 4, 1) for shape in steps)  # then every sample decodes a token per step


def test_near_zero_temperature_sampling_is_greedy_and_a_seed_repeats_its_draws():
    lm = load_model("zoo:teacher-llama")
    rows = _rows(lm.tokenizer)
    cold, _ = sample_rows(lm.model, lm.tokenizer, rows, n=2, max_new_tokens=12, seed=0, temperature=1e-4)
    assert [news[0] for news in cold] == greedy_ids(lm.model, lm.tokenizer, rows, max_new_tokens=12)
    state = torch.random.get_rng_state()
    first, _ = sample_rows(lm.model, lm.tokenizer, rows, n=3, max_new_tokens=12, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's stream is untouched
    assert first == sample_rows(lm.model, lm.tokenizer, rows, n=3, max_new_tokens=12, seed=5)[0]
