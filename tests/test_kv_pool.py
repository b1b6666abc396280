"""Specification of the KV pool under HFTeacher: contexts of different prompts gathered into one forward (and its
attention mask), each row's new positions written back in place or copy-on-write, rows reused, nothing leaked."""

import pytest
import torch

from tests.helpers import char_primary, full_recompute, loaded, text_context
from tokentree_env.teachers import HFTeacher


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_contexts_of_different_prompts_are_gathered_into_one_forward_and_match_separate_forwards(arch):
    """Lockstep play: contexts whose cached prefixes differ (other prompts, other depths) run in one padded batch
    with the gap masked; their log-probs, and those of the contexts that extend them, match a full recompute
    within 1e-5 (the tolerance of a padded batch's reordered sums)."""
    primary = char_primary()
    teacher = HFTeacher(loaded(primary, arch))
    teacher.bind(primary)
    prompts = ["12+35=", "7+1=", "99+99+99="]
    teacher.next_logprobs([text_context(primary, p) for p in prompts])  # three prefixes, cached
    calls = teacher.counters.forward_calls
    longer = [p + d for p, d in zip(prompts, "481", strict=True)]
    batched = teacher.next_logprobs([text_context(primary, t) for t in longer])
    assert teacher.counters.forward_calls == calls + 1  # one forward for three prefixes
    for text, row in zip(longer, batched, strict=True):
        assert torch.allclose(row, full_recompute(teacher, primary, text), atol=1e-5)
    again = [t + "2" for t in longer]  # the gathered contexts are contiguous views that extend again
    for text, row in zip(again, teacher.next_logprobs([text_context(primary, t) for t in again]), strict=True):
        assert torch.allclose(row, full_recompute(teacher, primary, text), atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "llama-gqa"])
def test_a_gathered_batch_builds_the_mask_transformers_would_and_reads_the_same_log_probs_exactly(arch):
    """A gathered forward builds its 4D boolean mask itself (transformers' general mask builder costs about a tenth of
    a small model's forward): its log-probs equal, bit for bit, those of the 2D mask transformers expands, for rows of
    different prefixes and suffixes of several tokens; and where no position is masked (prefixes of one length, one
    new token each) transformers gets the 2D mask and passes none, as it would have (grouped-query attention takes
    another path with a mask)."""
    primary = char_primary()
    own = HFTeacher(loaded(primary, arch))
    theirs = HFTeacher(own.lm)
    theirs._mask = lambda keep, prefix, width: keep.long()  # transformers builds the mask
    plans = [(["12+35=", "7+1=", "99+99+99="], ["4", "81", "1+2="]),  # gaps and padding: the 4D mask
             (["12+35=", "21+53="], ["7", "9"])]  # nothing masked: no mask
    for prompts, suffixes in plans:
        out = []
        for teacher in (own, theirs):
            teacher.bind(primary)
            teacher.next_logprobs([text_context(primary, p) for p in prompts])
            out.append(teacher.next_logprobs([text_context(primary, p + x) for p, x in zip(prompts, suffixes, strict=True)]))
        assert torch.equal(out[0], out[1])
    keep = torch.ones(3, 6, dtype=torch.bool)
    keep[0, 1] = False
    assert own._mask(keep, 4, 2).shape == (3, 1, 2, 6)
    assert not own._mask(keep, 4, 2)[1, 0, 0, 5]  # causal: the first new token does not read the second
    assert own._mask(torch.ones(3, 6, dtype=torch.bool), 5, 1).shape == (3, 6)  # nothing masked: transformers' call


def test_a_model_with_a_window_the_batch_reaches_or_an_unchecked_architecture_gets_transformers_mask(monkeypatch):
    primary = char_primary()
    teacher = HFTeacher(loaded(primary))
    keep = torch.ones(3, 6, dtype=torch.bool)
    keep[0, 1] = False
    config = teacher.model.config.get_text_config()
    monkeypatch.setattr(config, "sliding_window", 5, raising=False)
    assert teacher._mask(keep, 4, 2).shape == (3, 6)  # the batch reaches past the window
    assert teacher._mask(keep[:, :4], 2, 2).dim() == 4  # within it the two masks are the same
    monkeypatch.setattr(config, "sliding_window", None)
    monkeypatch.setattr(config, "model_type", "falcon")  # its mask feeds ALiBi: not built here
    assert teacher._mask(keep, 4, 2).shape == (3, 6)


def test_a_gathered_batch_writes_each_row_back_in_place_where_its_prefix_ends_at_the_rows_tip():
    """Contexts of different prompts extended in one gathered forward keep their rows (no prefix copied again); a
    sibling of an already extended context gets a fresh row, and both read their own prefix."""
    primary = char_primary()
    teacher = HFTeacher(loaded(primary))
    teacher.bind(primary)
    prompts = ["12+35=", "7+1=", "99+99+99="]
    teacher.next_logprobs([text_context(primary, p) for p in prompts])
    rows = [teacher.store.get(text_context(primary, p).ids).kv for p in prompts]
    longer = [p + d for p, d in zip(prompts, "481", strict=True)]
    teacher.next_logprobs([text_context(primary, t) for t in longer])
    extended = [teacher.store.get(text_context(primary, t).ids).kv for t in longer]
    assert [(r.capacity, r.row) for r in extended] == [(r.capacity, r.row) for r in rows]
    assert [r.length for r in extended] == [r.length + 1 for r in rows]
    sibling = prompts[0] + "5"
    cached = teacher.next_logprobs([text_context(primary, sibling)])[0]
    assert teacher.store.get(text_context(primary, sibling).ids).kv.row != extended[0].row
    assert torch.allclose(cached, full_recompute(teacher, primary, sibling), atol=1e-5)
    assert torch.allclose(teacher.next_logprobs([text_context(primary, longer[0] + "7")])[0],
                          full_recompute(teacher, primary, longer[0] + "7"), atol=1e-5)


def test_rows_the_cache_lets_go_are_reused_and_read_correctly_after_reuse():
    """A small cache evicts; the rows it frees go back to the pool and are written again (the pool does not grow
    with the contexts read), and a context read into a reused row still matches a full recompute."""
    primary = char_primary()
    teacher = HFTeacher(loaded(primary), cache_bytes=60_000)
    teacher.bind(primary)
    texts = [f"{i}+{2 * i}=" for i in range(60)]
    for text in texts:
        teacher.next_logprobs([text_context(primary, text)])
    rows = sum(teacher.pool.fresh.values())  # rows ever handed out
    assert teacher.store.bytes <= 60_000 or len(teacher.store) == 1
    assert rows < len(texts) / 4
    for text in texts[:3]:  # long evicted: read again into reused rows
        assert torch.allclose(teacher.next_logprobs([text_context(primary, text)])[0],
                              full_recompute(teacher, primary, text), atol=1e-5)


def test_forwards_run_one_prefix_at_a_time_never_overwrite_a_later_ones_prefix_under_cache_pressure():
    """With ``batch_across`` off, contexts of different prompts run one forward per prefix; a small cache evicts the
    later prefixes' entries while the first runs, and their rows must not be handed to another context before they
    are read."""
    primary = char_primary()
    teacher = HFTeacher(loaded(primary))
    teacher.bind(primary)
    teacher.batch_across = False
    prompts = ["12+35=", "7+1=", "99+99+99=", "40+2="]
    teacher.next_logprobs([text_context(primary, p) for p in prompts])
    teacher.store.max_bytes = teacher.pool.row_bytes(64) + 4_000  # one row and its log-probs
    longer = [p + d for p, d in zip(prompts, "4812", strict=True)]
    for text, row in zip(longer, teacher.next_logprobs([text_context(primary, t) for t in longer]), strict=True):
        assert torch.allclose(row, full_recompute(teacher, primary, text), atol=1e-5), text


def test_every_pool_row_is_either_pointed_into_by_the_cache_or_free_after_mixed_reads():
    primary = char_primary()
    teacher = HFTeacher(loaded(primary), cache_bytes=150_000)
    teacher.bind(primary)
    for i in range(12):
        text = f"{i}+{i + 1}="
        teacher.next_logprobs([text_context(primary, text), text_context(primary, text + "1")])
        teacher.path_logprobs([text_context(primary, text + "1"), text_context(primary, text + "12")], [1, 1])
    pool, store = teacher.pool, teacher.store
    assert len(store._rows) + sum(len(rows) for rows in pool.free.values()) == sum(pool.fresh.values())
    teacher.close()
    assert len(store) == 0 and store.bytes == 0


def test_a_row_a_new_state_points_into_is_never_freed_by_the_entry_it_replaces():
    from tokentree_env.teachers.kvstore import CachedState, KVPool, KVRef, KVStore

    pool, store = KVPool(n_layers=1, max_positions=64), KVStore()
    like = torch.zeros(1, 2, 1, 1, 4, 2)  # (layers, 2, B, heads, T, head_dim)
    kept, other = pool.alloc(64, like), pool.alloc(64, like)
    logprobs = torch.zeros(3)
    store.put(CachedState((1, 2), KVRef(pool, 64, kept, 2), logprobs))
    # one forward's states: (1, 2) now in another row, and (1, 2, 3) written in place in the row (1, 2) was in
    store.put_many([CachedState((1, 2), KVRef(pool, 64, other, 2), logprobs),
                    CachedState((1, 2, 3), KVRef(pool, 64, kept, 3), logprobs)])
    assert kept not in pool.free[64] and other not in pool.free[64]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_a_row_is_never_read_past_what_was_written_into_it(arch, monkeypatch):
    """Rows are handed out unzeroed: a pool whose fresh memory is all NaN reads the same log-probs as a full
    recompute, through gathered batches of rows of different lengths, in-place extensions, copy-on-write siblings,
    every prefix of a path, and rows reused after eviction."""
    from tokentree_env.teachers import kvstore

    primary = char_primary()
    new_empty = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda self, *a, **k: new_empty(self, *a, **k).fill_(float("nan")))
    monkeypatch.setattr(kvstore, "SPARE_ROWS", 1)  # a small slab, so that it doubles while rows are written
    teacher = HFTeacher(loaded(primary, arch), cache_bytes=120_000)
    teacher.bind(primary)
    teacher.next_logprobs([text_context(primary, "1")])
    reserved = teacher.pool.slabs[64].shape[0]
    prompts = ["12+35=", "7+1=", "99+99+99+99+99+99+99=", "40+2="]
    reads = [list(prompts), [p + "4" for p in prompts], [p + "48" for p in prompts], [p + "5" for p in prompts]]
    for round_ in reads:
        for text, row in zip(round_, teacher.next_logprobs([text_context(primary, t) for t in round_]), strict=True):
            assert torch.isfinite(row).any() and torch.allclose(row, full_recompute(teacher, primary, text),
                                                                 atol=1e-5), text
    path = text_context(primary, prompts[1] + "123")
    specials = len(path.ids) - len(path.text)  # the tokenizer's own tokens before the text (one character a token)
    for k, row in enumerate(teacher.path_logprobs([path], [5])[0]):  # after each prefix of 5 tokens and more
        assert torch.allclose(row, full_recompute(teacher, primary, path.text[: 5 + k - specials]), atol=1e-5)
    assert teacher.pool.slabs[64].shape[0] > reserved  # the slab grew (into poisoned memory) while rows were written
    assert torch.isnan(teacher.pool.slabs[64][-1]).all()  # the poison was there to read


def test_top_tokens_computed_when_read_are_the_whole_batchs_bit_for_bit_and_counted_as_kept_ones():
    """A state holding its forward's logits (:class:`OwnLogits`) gives, when read, exactly the top tokens the whole
    batch's log-softmax and top-k give its row (ties included), and the cache counts it as the kept tokens, so it
    evicts as it did when they were kept."""
    from tokentree_env.teachers.kvstore import CachedState, KVPool, KVRef, OwnLogits

    torch.manual_seed(0)
    ref = KVRef(KVPool(n_layers=1, max_positions=64), 64, 0, 1)
    for vocabulary, scale in [(100, 1.0), (288, 4.0), (262, 0.0)]:  # scale 0: every logit ties
        logits = (torch.randn(7, vocabulary) * scale).round(decimals=1)
        k = min(256, vocabulary)
        batch = torch.log_softmax(logits, dim=-1).topk(k)
        lp = torch.zeros(7, 5)
        for row in range(7):
            lazy = CachedState((row,), ref, lp, OwnLogits(logits, k), row)
            kept = CachedState((row,), ref, lp, (batch.indices, batch.values), row)
            assert torch.equal(lazy.top[0], batch.indices[row]) and torch.equal(lazy.top[1], batch.values[row])
            assert lazy.own_nbytes == kept.own_nbytes
