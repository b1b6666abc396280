"""Specification of populating the search space with the zoo stack on 200 held-out prompts."""

import numpy as np

from tokentree_env.tasks import builtin_task
from tokentree_env.teachers import HFTeacher
from tokentree_env.tree import Expander, ExpansionConfig
from tokentree_env.zoo import DEFAULT_TEACHERS


def test_proposals_for_200_heldout_prompts_are_valid_children_with_provenance_and_references():
    teachers = [HFTeacher(name) for name in DEFAULT_TEACHERS]
    primary = HFTeacher("zoo:primary")
    assert sum(not t.shares_primary_tokenizer for t in teachers) == 0  # not bound yet
    expander = Expander(teachers, primary, primary.tokenizer, ExpansionConfig())
    assert sum(not t.shares_primary_tokenizer for t in teachers) == 2  # llama and gpt2 read text
    tok = primary.tokenizer
    specials = set(tok.all_special_ids) - {tok.eos_token_id}
    directions = set()
    task = builtin_task("chain3")
    for problem in task.problems("heldout")[:200]:
        tree = expander.new_tree(problem.prompt)
        slate, = expander.expand(tree, [0])
        assert 1 <= len(slate) <= expander.config.width
        assert len(set(slate.tokens.tolist())) == len(slate)  # deduplicated
        assert all(0 <= t < len(tok) and t not in specials for t in slate.tokens.tolist())
        assert slate.proposed.shape == slate.logprobs.shape == (len(slate), len(expander.models))
        assert np.isfinite(slate.logprobs).all()
        assert (slate.right == ((slate.votes > 0) | slate.reference)).all()
        directions |= set(slate.right.tolist())
        assert set(tree.reference_paths) == {t.name for t in teachers}
        for path in tree.reference_paths.values():
            assert path[-1] == tok.eos_token_id
            assert path[0] in slate.tokens  # the first step of every reference answer is a child
        assert tree.min_reference_length == min(len(p) for p in tree.reference_paths.values())
    assert directions == {True, False}  # both right- and wrong-direction children occur
