"""The token tree: cached expansions, slates with provenance, weightage, and the expander."""

from tokentree_env.tree.expander import Expander, ExpansionConfig
from tokentree_env.tree.slate import Slate, merge_proposals
from tokentree_env.tree.tree import NO_PARENT, ROOT, Node, TokenTree, WeightageRule

__all__ = [
           "NO_PARENT",
           "ROOT",
           "Expander",
           "ExpansionConfig",
           "Node",
           "Slate",
           "TokenTree",
           "WeightageRule",
           "merge_proposals",
]
