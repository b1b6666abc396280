"""Specification of the token tree: weightage rule, persistence, merging."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokentree_env.tree import TokenTree, WeightageRule, merge_proposals


def _tree_with_slate(right=(True, True, False, False)):
    tree = TokenTree("p", [1, 5])
    n = len(right)
    lp = torch.log_softmax(torch.zeros(1, 20), -1)
    proposals = [([10 + i for i in range(n) if right[i]], [10 + i for i in range(n) if not right[i]])]
    tree.set_slate(0, merge_proposals(proposals, lp, width=n, wrong_slots=n))
    return tree


def test_weightage_starts_at_one_over_n():
    tree = _tree_with_slate()
    assert np.allclose(tree.weightage(0), 0.25)


def test_a_wrong_child_on_the_path_is_lowered():
    tree = _tree_with_slate()
    wrong = int(np.flatnonzero(~tree.nodes[0].slate.right)[0])
    tree.apply_weightage([(0, wrong)], 1.0, WeightageRule(eta=0.5))
    assert tree.weightage(0)[wrong] == pytest.approx(0.125)


def test_a_right_child_rises_only_when_the_return_improved():
    tree = _tree_with_slate()
    rule = WeightageRule(eta=0.5, cap=10)
    tree.apply_weightage([(0, 0)], 1.0, rule)  # first episode: nothing to beat
    assert tree.weightage(0)[0] == pytest.approx(0.25)
    tree.apply_weightage([(0, 0)], 0.5, rule)  # worse
    assert tree.weightage(0)[0] == pytest.approx(0.25)
    assert tree.apply_weightage([(0, 0)], 2.0, rule)  # better
    assert tree.weightage(0)[0] == pytest.approx(0.375)


def test_a_right_child_is_capped():
    tree = _tree_with_slate()
    for r in range(20):
        tree.apply_weightage([(0, 0)], float(r), WeightageRule(eta=0.5, cap=2.0))
    assert tree.nodes[0].factors[0] == pytest.approx(2.0)


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(-10, 10)), max_size=30))
def test_a_wrong_child_never_goes_up(episodes):
    tree = _tree_with_slate()
    wrong = ~tree.nodes[0].slate.right
    before = tree.weightage(0)[wrong].copy()
    for index, ret in episodes:
        tree.apply_weightage([(0, index)], ret)
        assert (tree.weightage(0)[wrong] <= before + 1e-12).all()
        before = tree.weightage(0)[wrong].copy()


def test_save_and_load_roundtrip_keeps_slates_weightage_and_references(tmp_path):
    tree = _tree_with_slate()
    tree.add_reference("teacher-a", [11, 12, 2])
    tree.apply_weightage([(0, 2)], 1.0)
    tree.save(tmp_path / "tree.json")
    back = TokenTree.load(tmp_path / "tree.json")
    assert back.to_json() == tree.to_json()
    assert back.min_reference_length == 3
    assert np.allclose(back.weightage(0), tree.weightage(0))


def test_merging_trees_multiplies_factors_so_wrong_children_still_never_rise():
    a, b = _tree_with_slate(), _tree_with_slate()
    wrong = int(np.flatnonzero(~a.nodes[0].slate.right)[0])
    a.apply_weightage([(0, wrong)], 0.0)
    b.apply_weightage([(0, 0)], 0.0)
    b.apply_weightage([(0, 0)], 1.0)  # improved: right child 0 rises in b
    b.child(0, 10)
    a.merge(b)
    assert a.nodes[0].factors[wrong] < 1.0
    assert a.nodes[0].factors[0] == pytest.approx(b.nodes[0].factors[0])
    assert a.find((1, 5, 10)) is not None


def test_merging_trees_of_different_prompts_is_refused():
    from tokentree_env.errors import ConfigError

    with pytest.raises(ConfigError, match="different prompts"):
        TokenTree("a", [1]).merge(TokenTree("b", [1]))
