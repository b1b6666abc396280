"""Specification of the token tree: weightage rule, persistence, merging."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokentree_env.tree import TokenTree, WeightageRule, merge_proposals


def _slate(right=(True, True, False, False), first=10, version=0):
    n = len(right)
    lp = torch.log_softmax(torch.zeros(1, 40), -1)
    proposals = [([first + i for i in range(n) if right[i]], [first + i for i in range(n) if not right[i]])]
    return merge_proposals(proposals, lp, width=n, wrong_slots=n, primary_version=version, panel=lambda x: x.mean(1))


def _tree_with_slate(right=(True, True, False, False)):
    tree = TokenTree("p", [1, 5])
    tree.set_slate(0, _slate(right))
    return tree


def _factor(tree, token, node=0):
    return tree.factor(node, token)


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
    assert _factor(tree, int(tree.nodes[0].slate.tokens[0])) == pytest.approx(2.0)


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


def test_a_wrong_childs_stored_factor_survives_slate_recomputation_and_never_rises():
    """The invariant is on stored factors, keyed by child token: a wrong child that leaves the slate (the
    primary was trained) and comes back keeps its lowered factor instead of restarting at 1."""
    tree = _tree_with_slate()
    wrong = int(tree.nodes[0].slate.tokens[2])
    tree.apply_weightage([(0, 2)], 0.0)
    lowered = _factor(tree, wrong)
    assert lowered < 1.0
    tree.set_slate(0, _slate((True, True), first=10, version=1))  # the wrong child left the slate
    assert wrong not in tree.nodes[0].slate.tokens.tolist()
    tree.set_slate(0, _slate(version=2))  # ... and came back
    assert _factor(tree, wrong) == pytest.approx(lowered)
    assert tree.weightage(0)[2] == pytest.approx(lowered / 4)


def test_merging_applies_each_workers_updates_once_relative_to_its_base(tmp_path):
    base = _tree_with_slate()
    base.apply_weightage([(0, 2)], 0.0)  # the checkpoint's own history
    base.save(tmp_path / "checkpoint.json")
    driver, w1, w2 = (TokenTree.load(tmp_path / "checkpoint.json") for _ in range(3))
    for tree in (driver, w1, w2):
        tree.rebase()  # each starts from the checkpoint
    w1.apply_weightage([(0, 3)], 0.0)  # worker 1 lowers wrong child 13
    w2.apply_weightage([(0, 2)], 0.0)  # worker 2 lowers wrong child 12 again
    driver.merge(w1)
    driver.merge(w2)
    assert _factor(driver, 13) == pytest.approx(0.8)
    assert _factor(driver, 12) == pytest.approx(0.8 * 0.8)  # checkpoint once, worker 2 once


def test_merging_two_copies_of_one_checkpoint_changes_nothing(tmp_path):
    base = _tree_with_slate()
    base.apply_weightage([(0, 2)], 0.0)
    base.apply_weightage([(0, 0)], 1.0)
    base.save(tmp_path / "checkpoint.json")
    a, b = TokenTree.load(tmp_path / "checkpoint.json"), TokenTree.load(tmp_path / "checkpoint.json")
    a.rebase()
    b.rebase()
    before = a.to_json()
    a.merge(b)
    assert a.to_json() == before


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3), st.floats(-10, 10)), max_size=30))
def test_merged_wrong_children_never_rise(episodes):
    driver, worker = _tree_with_slate(), _tree_with_slate()
    wrong = [int(t) for t in driver.nodes[0].slate.tokens[~driver.nodes[0].slate.right]]
    for who, index, ret in episodes:
        (driver if who == 0 else worker).apply_weightage([(0, index)], ret)
    before = [_factor(driver, t) for t in wrong]
    driver.merge(worker)
    assert all(_factor(driver, t) <= b + 1e-12 for t, b in zip(wrong, before, strict=True))


def test_last_return_merges_by_its_documented_rule():
    driver, worker = _tree_with_slate(), _tree_with_slate()
    worker.apply_weightage([(0, 0)], 0.7)
    driver.merge(worker)
    assert driver.last_return == 0.7  # only the worker played: its return is taken
    other = _tree_with_slate()
    other.apply_weightage([(0, 0)], 0.3)
    driver.merge(other)
    assert driver.last_return == 0.7  # both played: the larger
    unplayed = _tree_with_slate()
    driver.merge(unplayed)
    assert driver.last_return == 0.7


def test_merging_copies_new_nodes():
    a, b = _tree_with_slate(), _tree_with_slate()
    b.child(0, 10)
    a.merge(b)
    assert a.find((1, 5, 10)) is not None


def test_a_tree_built_by_other_models_is_refused_with_the_differences_named():
    from tokentree_env.errors import TreeMismatchError

    tree = TokenTree("p", [1, 5], built_by={"teachers": [["zoo:a", "h1"]], "primary_tokenizer": "t"})
    tree.check_built_by({"teachers": [["zoo:a", "h1"]], "primary_tokenizer": "t"})  # the same models: accepted
    with pytest.raises(TreeMismatchError, match="teachers"):
        tree.check_built_by({"teachers": [["zoo:b", "h2"]], "primary_tokenizer": "t"})


def test_merging_trees_of_different_prompts_is_refused():
    from tokentree_env.errors import ConfigError

    with pytest.raises(ConfigError, match="different prompts"):
        TokenTree("a", [1]).merge(TokenTree("b", [1]))
