"""Specification of vocabulary alignment: teacher pieces mapped into the primary's vocabulary."""

import math

import torch

from tests.helpers import bpe_primary, char_primary, loaded, pair_tokenizer
from tokentree_env.teachers import UNMAPPED_LOGPROB, HFTeacher, piece_to_primary_map, to_primary_logprobs
from tokentree_env.teachers.base import Context
from tokentree_env.tree import TokenTree


def test_a_piece_spanning_two_primary_tokens_maps_to_its_first():
    primary, teacher = char_primary(), pair_tokenizer()
    mapping = piece_to_primary_map(teacher, primary)
    assert mapping[teacher.convert_tokens_to_ids("12")] == primary.convert_tokens_to_ids("1")
    assert mapping[teacher.convert_tokens_to_ids("35")] == primary.convert_tokens_to_ids("3")


def test_pieces_colliding_on_one_primary_token_have_their_probabilities_summed():
    primary, teacher = char_primary(), pair_tokenizer()
    mapping = piece_to_primary_map(teacher, primary)
    probs = torch.full((len(teacher),), 1e-12)
    probs[teacher.convert_tokens_to_ids("12")] = 0.3
    probs[teacher.convert_tokens_to_ids("13")] = 0.2
    probs[teacher.convert_tokens_to_ids("1")] = 0.1
    probs[teacher.convert_tokens_to_ids("+")] = 0.4
    out = to_primary_logprobs(probs.log()[None], mapping, len(primary))[0].exp()
    assert math.isclose(out[primary.convert_tokens_to_ids("1")].item(), 0.6, rel_tol=1e-4)
    assert math.isclose(out[primary.convert_tokens_to_ids("+")].item(), 0.4, rel_tol=1e-4)
    assert math.isclose(out.sum().item(), 1.0, rel_tol=1e-4)


def test_eos_maps_to_the_primary_eos_and_other_specials_map_nowhere():
    primary, teacher = char_primary(), pair_tokenizer()
    mapping = piece_to_primary_map(teacher, primary)
    assert mapping[teacher.eos_token_id] == primary.eos_token_id
    assert mapping[teacher.bos_token_id] == -1 and mapping[teacher.pad_token_id] == -1


def test_a_primary_token_no_piece_maps_to_is_unreachable_and_floored_in_scores():
    primary, teacher = char_primary(), pair_tokenizer()
    teacher_model = HFTeacher(loaded(teacher))
    teacher_model.bind(primary)
    context = Context(tuple(primary("12+")["input_ids"]), "12+")
    logprobs = teacher_model.next_logprobs([context])[0]
    assert logprobs[primary.convert_tokens_to_ids("z")] == float("-inf")  # no teacher piece starts with z
    assert UNMAPPED_LOGPROB > -21 and math.isfinite(UNMAPPED_LOGPROB)


def test_a_bpe_primary_state_is_never_retokenised_across_the_boundary():
    primary = bpe_primary()
    assert primary("35", add_special_tokens=False)["input_ids"] == [primary.convert_tokens_to_ids("35")]
    tree = TokenTree("12+", primary("12+")["input_ids"])
    three, five = primary.convert_tokens_to_ids("3"), primary.convert_tokens_to_ids("5")
    node = tree.child(tree.child(0, three), five)
    assert tree.path_tokens(node) == (three, five)  # not merged into "35"
    teacher = HFTeacher(loaded(primary))
    teacher.bind(primary)
    context = tree.context(node, lambda ids: primary.decode(list(ids)))
    assert context.text == "12+35"
    assert teacher.own_ids(context) == context.ids  # same tokenizer: the state's ids, as they are
