"""Specification of HFTeacher: KV-cached proposals equal a full recompute, cheap revisits, errors."""

import pytest
import torch

from tests.helpers import char_primary, full_recompute, loaded, pair_tokenizer, text_context
from tokentree_env.errors import ConfigError, ContextTooLongError, ModelOutputError
from tokentree_env.teachers import HFTeacher
from tokentree_env.tree import Expander, TokenTree


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("foreign", [False, True])
def test_cached_step_by_step_logprobs_equal_a_full_recompute(arch, foreign):
    primary = char_primary()
    teacher = HFTeacher(loaded(pair_tokenizer() if foreign else primary, arch), heal=False)
    teacher.bind(primary)
    text = "12+35="
    for piece in ["4", "7", "+", "1", "3", "=", "1", "2", "."]:
        text += piece
        cached = teacher.next_logprobs([text_context(primary, text)])[0]
        full = full_recompute(teacher, primary, text)
        finite = torch.isfinite(full)
        assert torch.equal(finite, torch.isfinite(cached))
        assert torch.allclose(cached[finite], full[finite], atol=1e-5)


def test_siblings_are_forwarded_in_one_batch_and_match_separate_forwards():
    primary = char_primary()
    teacher = HFTeacher(loaded(primary))
    teacher.bind(primary)
    teacher.next_logprobs([text_context(primary, "12+35=")])
    calls = teacher.counters.forward_calls
    siblings = [text_context(primary, "12+35=" + d) for d in "0123456789"]
    batched = teacher.next_logprobs(siblings)
    assert teacher.counters.forward_calls == calls + 1
    assert teacher.counters.forwarded_tokens == len(primary("12+35=")["input_ids"]) + 10  # no re-encoding
    for context, row in zip(siblings, batched, strict=True):
        assert torch.allclose(row, full_recompute(teacher, primary, context.text), atol=1e-5)


def test_a_revisited_context_makes_no_model_call():
    primary = char_primary()
    teacher = HFTeacher(loaded(primary))
    teacher.bind(primary)
    first = teacher.next_logprobs([text_context(primary, "1+1=")])
    calls = teacher.counters.as_dict()
    again = teacher.next_logprobs([text_context(primary, "1+1=")])
    assert teacher.counters.as_dict() == calls
    assert torch.equal(first, again)


def test_a_revisited_tree_node_makes_no_model_call():
    primary = char_primary()
    teachers = [HFTeacher(loaded(primary, seed=1)), HFTeacher(loaded(pair_tokenizer(), seed=2))]
    expander = Expander(teachers, HFTeacher(loaded(primary, seed=3)), primary)
    tree = expander.new_tree("12+35=", references=False)
    expander.expand(tree, [0])
    costs = expander.costs()
    expander.expand(tree, [0])
    assert expander.costs() == costs


def test_the_cache_is_bounded_in_bytes():
    primary = char_primary()
    teacher = HFTeacher(loaded(primary), cache_bytes=200_000)
    teacher.bind(primary)
    for i in range(40):
        teacher.next_logprobs([text_context(primary, f"{i}+{i}=")])
    assert teacher.store.bytes <= 200_000 and 1 < len(teacher.store) < 40  # what it keeps fits; the rest was let go


def test_a_context_longer_than_the_window_names_the_model():
    primary = char_primary()
    teacher = HFTeacher(loaded(primary, name="tiny-window"))
    teacher.bind(primary)
    with pytest.raises(ContextTooLongError, match="tiny-window"):
        teacher.next_logprobs([text_context(primary, "1" * 100)])


def test_nan_logits_raise_a_typed_error_naming_the_model():
    primary = char_primary()
    lm = loaded(primary, name="broken")
    with torch.no_grad():
        lm.model.lm_head.weight.fill_(float("nan"))
    teacher = HFTeacher(lm)
    teacher.bind(primary)
    with pytest.raises(ModelOutputError, match="broken"):
        teacher.next_logprobs([text_context(primary, "1+1=")])


def test_an_empty_teacher_list_is_refused():
    primary = char_primary()
    with pytest.raises(ConfigError, match="teacher list is empty"):
        Expander([], HFTeacher(loaded(primary)), primary)


def test_after_the_primary_is_trained_its_slates_are_recomputed_but_teacher_caches_stay():
    primary_tok = char_primary()
    teacher, primary = HFTeacher(loaded(primary_tok, seed=1)), HFTeacher(loaded(primary_tok, seed=2))
    expander = Expander([teacher], primary, primary_tok)
    tree = TokenTree("1+1=", primary_tok("1+1=")["input_ids"])
    expander.expand(tree, [0])
    teacher_calls = teacher.counters.forward_calls
    primary.mark_updated()
    assert not expander.is_fresh(tree, 0)
    expander.expand(tree, [0])
    assert expander.is_fresh(tree, 0)
    assert teacher.counters.forward_calls == teacher_calls  # the teacher's cache was still valid


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_branching_copies_on_write_so_siblings_never_corrupt_each_other(arch):
    primary = char_primary()
    teacher = HFTeacher(loaded(primary, arch))
    teacher.bind(primary)
    for text in ["12+3", "12+35", "12+34", "12+35=", "12+34=", "12+35=4", "12+3"]:
        cached = teacher.next_logprobs([text_context(primary, text)])[0]
        assert torch.allclose(cached, full_recompute(teacher, primary, text), atol=1e-5), text


def test_a_linear_path_shares_one_pool_row_instead_of_a_cache_per_node():
    primary = char_primary()
    teacher = HFTeacher(loaded(primary))
    teacher.bind(primary)
    text = "12+35="
    for piece in "47+13=60.":
        text += piece
        teacher.next_logprobs([text_context(primary, text)])
    rows = {(state.kv.capacity, state.kv.row) for state in teacher.store._entries.values()}
    assert len(rows) <= 2  # one chain: the prompt's row, moved to a larger one once at most


def test_a_same_tokenizer_teachers_reference_answer_matches_generate_and_leaves_its_path_cached():
    teacher = HFTeacher("zoo:teacher-qwen2")
    primary = HFTeacher("zoo:primary")
    expander = Expander([teacher], primary, primary.tokenizer)
    prompt = "12+35+20="
    ids = teacher.tokenizer(prompt, return_tensors="pt")["input_ids"]
    generated = teacher.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=16,
                                       do_sample=False, pad_token_id=teacher.tokenizer.pad_token_id,
                                       eos_token_id=teacher.tokenizer.eos_token_id)
    expected = teacher.tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)
    tree = expander.new_tree(prompt, max_new_tokens=16)
    assert expander.decode(tree.reference_paths[teacher.name][:-1]) == expected
    calls = teacher.counters.forward_calls
    node, nodes = 0, [0]
    for token in tree.reference_paths[teacher.name][:-1]:
        node = tree.child(node, token)
        nodes.append(node)
    expander.expand(tree, nodes)
    assert teacher.counters.forward_calls == calls  # the whole reference path was already cached


def test_batched_reference_answers_equal_answers_one_prompt_at_a_time():
    from tokentree_env.tasks import load_task

    primary = HFTeacher("zoo:primary")
    prompts = [p.prompt for task in ("add2", "chain3") for p in load_task(task).problems("train")[:12]]
    batched, single = HFTeacher("zoo:teacher-gpt2"), HFTeacher("zoo:teacher-gpt2")  # a foreign tokenizer
    for teacher in (batched, single):
        teacher.bind(primary.tokenizer)
    answers = batched.answers(prompts, max_new_tokens=24, batch_size=8)  # prompts of several lengths, left-padded
    assert answers == [single.answer(p, max_new_tokens=24) for p in prompts]
    assert batched.counters == single.counters  # the same work charged per prompt


def test_a_same_tokenizer_teachers_answers_decoded_in_lockstep_equal_one_at_a_time_and_charge_each_prompt_alike():
    from tokentree_env.tasks import load_task

    prompts = [p.prompt for task in ("add2", "chain3") for p in load_task(task).problems("train")[:10]]
    together, alone = HFTeacher("zoo:teacher-qwen2"), HFTeacher("zoo:teacher-qwen2")
    answers = together.answers(prompts, max_new_tokens=24, batch_size=8, owners=prompts)
    assert answers == [alone.answers([p], max_new_tokens=24, owners=[p])[0] for p in prompts]
    assert together.counters.ledger == alone.counters.ledger  # per prompt: its tokens, its calls, what it generated
    assert together.counters.forward_calls < alone.counters.forward_calls  # a batched forward per step


def test_a_measurement_reads_a_same_tokenizer_teachers_answers_in_batches_without_warming_its_cache():
    from tokentree_env.tasks import load_task

    prompts = [p.prompt for p in load_task("chain3").problems("train")[:12]]
    measured, warmed = HFTeacher("zoo:teacher-qwen2"), HFTeacher("zoo:teacher-qwen2")
    assert measured.answers(prompts, max_new_tokens=24, batch_size=8, warm_cache=False) == \
        warmed.answers(prompts, max_new_tokens=24)
    assert len(measured.store) == 0 < len(warmed.store)
    assert (measured.counters.forwarded_tokens, measured.counters.generated_tokens) == \
        (warmed.counters.forwarded_tokens, warmed.counters.generated_tokens)  # the same tokens charged


def test_batched_generation_and_batched_forwards_warn_about_no_attention_mask(caplog):
    """Ragged batches are left-padded with a mask (``generate``) or right-padded with each row's own last token
    (cached forwards), so transformers never warns that padded ids came without an attention mask."""
    import logging

    from transformers.utils import logging as hf_logging

    from tokentree_env.env import TokenTreeEnv

    hf_logging.set_verbosity_warning()
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            env = TokenTreeEnv(teachers=["zoo:teacher-gpt2", "zoo:teacher-llama"], primary="zoo:teacher-gpt2",
                               max_new_tokens=8)
            env.prepare(["12+35+20=", "1+2+3=", "11+22+33+44+55="])
            for prompt in ("12+35+20=", "1+2+3="):
                _obs, _ = env.reset(options={"prompt": prompt})
                env.expander.expand(env.trees[prompt], list(range(len(env.trees[prompt]))))
            from tokentree_env.models.generation import greedy_ids, sample_ids

            lm = env.primary.lm  # a GPT-2; inputs of one length (no mask needed), answers of different lengths
            rows = [lm.tokenizer(p)["input_ids"] for p in ("99+99+99=", "10+10+10=", "50+50+50=")]  # no padding
            greedy_ids(lm.model, lm.tokenizer, rows, max_new_tokens=12)
            sample_ids(lm.model, lm.tokenizer, rows, n=4, max_new_tokens=12)
    finally:
        hf_logging.disable_propagation()
        hf_logging.set_verbosity_error()
    assert not [r for r in caplog.records if "attention_mask" in r.getMessage()]


def test_token_healing_scores_the_rest_of_a_merged_token_after_a_mid_token_context():
    """A teacher whose tokenizer merges "35" into one token reads "...=3" as ending mid-token; healing backs
    off to "...=" and gives "5" the mass of "35" there, instead of what the teacher says after a split it never
    saw in training."""
    from tokentree_env.teachers.alignment import TokenHealer, piece_texts

    primary, teacher_tok = char_primary(), pair_tokenizer()
    texts = piece_texts(teacher_tok)
    healer = TokenHealer(texts, primary)
    three, thirty_five, twelve = (teacher_tok.convert_tokens_to_ids(t) for t in ("3", "35", "12"))
    assert healer.extendable(three) and not healer.extendable(teacher_tok.convert_tokens_to_ids("="))
    top = (torch.tensor([thirty_five, three, twelve]), torch.tensor([0.9, 0.05, 0.05]).log())  # q0 after "...="
    unhealed = torch.full((len(primary),), -30.0)
    unhealed[primary.convert_tokens_to_ids("7")] = 0.0  # q1 after the unseen split "...=3": all on "7"
    healed = healer.heal(three, top, unhealed)
    five, seven = primary.convert_tokens_to_ids("5"), primary.convert_tokens_to_ids("7")
    assert healed[five].exp() == pytest.approx(0.9 / 0.95, rel=1e-5)  # "35" continues with "5"
    assert healed[seven].exp() == pytest.approx(0.05 / 0.95, rel=1e-4)  # "3" exactly, then q1
    assert healed.exp().sum() == pytest.approx(1.0, rel=1e-4)


def test_a_healing_teacher_reads_the_prefix_state_and_returns_a_distribution():
    primary = char_primary()
    teacher = HFTeacher(loaded(pair_tokenizer()))
    teacher.bind(primary)
    out = teacher.next_logprobs([text_context(primary, "12+3")])[0]
    unhealed = HFTeacher(teacher.lm, heal=False)
    unhealed.bind(primary)
    plain = unhealed.next_logprobs([text_context(primary, "12+3")])[0]
    assert 0.0 < out.exp().sum() <= 1.0 + 1e-4  # mass on pieces that map nowhere (specials) stays off the vocabulary
    assert not torch.allclose(out, plain)
    assert teacher.store.get(tuple(teacher.tokenizer("12+")["input_ids"])) is not None  # q0 came from "12+"


@pytest.mark.parametrize("top_k", [4, 256])
def test_a_states_top_tokens_are_its_models_own_top_log_probs_kept_or_computed_when_read(top_k, monkeypatch):
    """Healing reads a cached state's own top tokens: the top ``k`` of the model's log-softmax after the context.
    A forward keeps them, or (where its logits take no more memory) keeps its logits and computes a row's top tokens
    when read; both give the model's own."""
    from tokentree_env.teachers import hf
    from tokentree_env.teachers.kvstore import OwnLogits

    monkeypatch.setattr(hf, "HEAL_TOP_K", top_k)
    primary = char_primary()
    teacher = HFTeacher(loaded(pair_tokenizer()))
    teacher.bind(primary)
    texts = ["12+3", "7+1=", "13+35="]
    teacher.next_logprobs([text_context(primary, t) for t in texts])
    for text in texts:
        ids = teacher.own_ids(text_context(primary, text))
        state = teacher.store.get(ids)
        with torch.no_grad():
            logits = teacher.model(torch.tensor([ids])).logits[0, -1].float()
        k = min(top_k, logits.shape[-1])
        assert isinstance(state.tops, OwnLogits) == (logits.shape[-1] * 4 <= k * 12)  # computed when read: k = 256
        want, (ids_got, values_got) = torch.log_softmax(logits, dim=-1).topk(k), state.top
        assert torch.equal(ids_got[:3], want.indices[:3]) and torch.allclose(values_got, want.values, atol=1e-5)


def test_reference_answers_decoded_inside_an_episodes_charging_charge_it_each_call_once():
    from tokentree_env.tasks import load_task

    prompts = [p.prompt for p in load_task("chain3").problems("train")[:8]]
    together, alone = HFTeacher("zoo:teacher-qwen2"), HFTeacher("zoo:teacher-qwen2")
    with together.counters.charging("episode"):
        together.answers(prompts, max_new_tokens=24, batch_size=8)
    with alone.counters.charging("episode"):
        for prompt in prompts:
            alone.answers([prompt], max_new_tokens=24)
    assert alone.counters.ledger["episode"]["forward_calls"] == alone.counters.forward_calls  # a call is one call
    assert together.counters.ledger == alone.counters.ledger
