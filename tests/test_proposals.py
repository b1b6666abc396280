"""Specification of proposals and slates: right/wrong children, labels, widths, provenance."""

import random

import numpy as np
import pytest
import torch

from tokentree_env.errors import ConfigError
from tokentree_env.teachers import propose
from tokentree_env.tree import ExpansionConfig, merge_proposals


def _logprobs(probs):
    return torch.tensor(probs, dtype=torch.float64).log()


def mean_panel(lp):
    """A panel for slates built by hand: the mean log-prob over every column."""
    return lp.mean(1)


def test_right_children_are_the_top_k():
    lp = _logprobs([0.5, 0.3, 0.1, 0.05, 0.03, 0.02])
    right, _ = propose(lp, k_right=2, k_wrong=0, top_p=0.9, rng=random.Random(0))
    assert right == [0, 1]


def test_wrong_children_come_from_outside_the_top_p_mass_and_are_reproducible():
    lp = _logprobs([0.5, 0.3, 0.1, 0.05, 0.03, 0.02])
    draws = {tuple(propose(lp, k_right=1, k_wrong=2, top_p=0.85, rng=random.Random(s))[1])
             for s in range(20)}
    assert all(set(d) <= {3, 4, 5} for d in draws)  # 0.5+0.3+0.1 >= 0.85: tokens 0-2 are the nucleus
    assert len(draws) > 1
    again = propose(lp, k_right=1, k_wrong=2, top_p=0.85, rng=random.Random(7))
    assert again == propose(lp, k_right=1, k_wrong=2, top_p=0.85, rng=random.Random(7))


def test_wrong_children_are_what_sampling_the_sorted_tail_itself_draws():
    """The wrong children are ``random.sample`` of the tail (the tokens past the nucleus, most likely first), with
    the generator left where that draw leaves it: a seed gives the same children whatever reads the tail."""
    rs = np.random.RandomState(0)
    for trial in range(50):
        lp = rs.randn(2, 40) * 3
        lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
        lp[0, rs.rand(40) < 0.3] = -np.inf
        got_rng, want_rng = random.Random(trial), random.Random(trial)
        got = propose(lp, k_right=2, k_wrong=3, top_p=0.8, rng=got_rng)
        for (right, wrong), row in zip(got, lp, strict=True):
            order = [int(t) for t in np.argsort(-row, kind="stable") if np.isfinite(row[t])]
            nucleus = int((np.cumsum(np.exp(row[order])) < 0.8).sum()) + 1
            tail = order[max(nucleus, 2):]
            assert right == order[:2]
            assert wrong == want_rng.sample(tail, min(3, len(tail)))
        assert got_rng.random() == want_rng.random()


def test_unreachable_and_disallowed_tokens_are_never_proposed():
    lp = _logprobs([0.6, 0.4, 0.0, 0.0])
    allowed = torch.tensor([True, False, True, True])
    right, wrong = propose(lp, k_right=3, k_wrong=3, top_p=0.5, rng=random.Random(0), allowed=allowed)
    assert right == [0] and wrong == []


def test_direction_is_right_if_any_proposer_ranks_it_top_k_and_wrong_only_if_all_drew_it_from_the_tail():
    lp = torch.log_softmax(torch.randn(2, 10), -1)
    slate = merge_proposals([([1, 2], [7]), ([2, 7], [8])], lp, width=8, panel=mean_panel)
    labels = dict(zip(slate.tokens.tolist(), slate.right.tolist(), strict=True))
    assert labels == {1: True, 2: True, 7: True, 8: False}
    votes = dict(zip(slate.tokens.tolist(), slate.votes.tolist(), strict=True))
    assert votes[2] == 2 and votes[8] == 0
    proposed = dict(zip(slate.tokens.tolist(), slate.proposed.tolist(), strict=True))
    assert proposed[7] == [True, True] and proposed[8] == [False, True]


def test_slate_keeps_every_models_logprob_of_every_child():
    lp = torch.log_softmax(torch.randn(3, 10), -1)
    slate = merge_proposals([([1], []), ([2], []), ([3], [])], lp, width=8, panel=mean_panel)
    for i, t in enumerate(slate.tokens):
        assert np.allclose(slate.logprobs[i], lp[:, t].numpy(), atol=1e-6)


def test_an_overfull_slate_keeps_reference_children_and_wrong_slots():
    lp = torch.log_softmax(torch.randn(1, 40), -1)
    slate = merge_proposals([(list(range(10)), list(range(20, 30)))], lp, width=8, wrong_slots=2,
                            reference_tokens=[35], panel=mean_panel)
    assert len(slate) == 8
    assert slate.tokens[0] == 35 and slate.reference[0] and slate.right[0]
    assert int((~slate.right).sum()) == 2


def test_an_overfull_slate_is_ranked_by_the_panel_and_keeps_each_teachers_top_choice():
    # teacher 0 is sure of token 9, which the other two find unlikely: by the mean log-prob (the product) it would
    # be cut from a slate of 3; kept as teacher 0's top-1, and the others ranked by the panel given
    probs = np.full((3, 12), 1e-4)
    probs[0, 9] = 0.9
    probs[1, [1, 2, 3]] = [0.5, 0.3, 0.15]
    probs[2, [1, 2, 3]] = [0.45, 0.35, 0.15]
    lp = np.log(probs / probs.sum(1, keepdims=True))
    proposals = [([9, 1], []), ([1, 2, 3], []), ([1, 2, 3], [])]
    cut = merge_proposals(proposals, lp, width=3, panel=mean_panel)
    kept = merge_proposals(proposals, lp, width=3, panel=mean_panel, keep_tokens=[9, 1, 1])
    assert 9 not in cut.tokens.tolist()
    assert set(kept.tokens.tolist()) == {9, 1, 2}
    assert np.allclose(kept.panel, mean_panel(kept.logprobs), atol=1e-6)
    assert list(kept.panel) == sorted(kept.panel, reverse=True)


@pytest.mark.parametrize("field,value", [("k_right", 0), ("width", 0), ("k_wrong", -1), ("top_p", 0.0)])
def test_bad_expansion_config_raises_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        ExpansionConfig(**{field: value})
