"""Populating the search space: teachers (and the primary) propose children, merged into slates.

The :class:`Expander` composes proposers that know nothing of the tree; the tree knows nothing
of models. Expanding a node asks every model for its next-token distribution at the node's
context (one batched, KV-cached forward per model for all nodes expanded together; a cache hit
costs nothing), draws right and wrong proposals, and merges them into a slate.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tokentree_env.errors import ConfigError
from tokentree_env.teachers.base import Teacher, propose
from tokentree_env.tree.slate import Slate, merge_proposals
from tokentree_env.tree.tree import ROOT, TokenTree


@dataclass(frozen=True)
class ExpansionConfig:
    """How children are proposed. Defaults fit the zoo's ~100-token vocabularies; the seed's
    scale for real models is ``k_right=50, k_wrong=50`` per model."""

    width: int = 16
    """K: the most children a slate holds (the action space size)."""
    k_right: int = 4
    """Likely children each model proposes (its top-k)."""
    k_wrong: int = 2
    """Deliberately unlikely children each model proposes (from its tail)."""
    top_p: float = 0.9
    """Wrong children are drawn from outside the smallest set holding this much mass."""
    wrong_slots: int | None = None
    """Slots kept for wrong children when the slate overflows (default ``width // 4``)."""
    primary_proposes: bool = True
    """Whether the primary proposes children too (the seed: "from the primary as well")."""
    seed: int = 0
    """Seed of the wrong-direction draws (each node's draw depends only on seed and context)."""

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ConfigError(f"ExpansionConfig.width (K) must be >= 1, got {self.width}")
        if self.k_right < 1:
            raise ConfigError(f"ExpansionConfig.k_right must be >= 1, got {self.k_right}")
        if self.k_wrong < 0:
            raise ConfigError(f"ExpansionConfig.k_wrong must be >= 0, got {self.k_wrong}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"ExpansionConfig.top_p must be in (0, 1], got {self.top_p}")


class Expander:
    """Expands token-tree nodes with a stack of teachers and the primary.

    Args:
        teachers: 1 or more teachers (any :class:`Teacher`); the primary may be one of them,
            in which case one forward serves both roles.
        primary: the primary model (the policy), whose tokenizer is the canonical vocabulary.
        config: proposal counts and slate width.
    """

    def __init__(self, teachers: Sequence[Teacher], primary: Teacher, primary_tokenizer,
                 config: ExpansionConfig = ExpansionConfig()) -> None:
        if not teachers:
            raise ConfigError("the teacher list is empty; pass at least one teacher (e.g. 'zoo:teacher-llama')")
        self.teachers = list(teachers)
        self.primary = primary
        self.tokenizer = primary_tokenizer
        self.config = config
        self.models: list[Teacher] = list(dict.fromkeys([*self.teachers, primary]))  # one entry per object
        self.proposer_columns = [i for i, m in enumerate(self.models) if m in self.teachers or config.primary_proposes]
        self.primary_column = self.models.index(primary)
        self.teacher_columns = [self.models.index(t) for t in self.teachers]
        for model in self.models:
            model.bind(primary_tokenizer)
        size = max(len(primary_tokenizer), max(primary_tokenizer.get_vocab().values()) + 1)
        self.allowed = np.ones(size, dtype=bool)  # tokens a proposer may propose: no specials but EOS
        self.allowed[[i for i in primary_tokenizer.all_special_ids if i != primary_tokenizer.eos_token_id]] = False
        self.eos_id = primary_tokenizer.eos_token_id

    # -- trees ----------------------------------------------------------------------------------
    def decode(self, ids: Sequence[int]) -> str:
        """Text of primary token ids (special tokens dropped)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def prompt_text(self, prompt: str) -> str:
        """The primary's input for ``prompt``: its chat template applied when it has one (instruct
        models), else the prompt itself. Foreign teachers read this text as the context's start."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    def new_tree(self, prompt: str, *, references: bool = True, max_new_tokens: int = 48) -> TokenTree:
        """A tree for ``prompt``, with each teacher's greedy reference answer inserted."""
        return self.new_trees([prompt], references=references, max_new_tokens=max_new_tokens)[0]

    def new_trees(self, prompts: Sequence[str], *, references: bool = True,
                  max_new_tokens: int = 48) -> list[TokenTree]:
        """Trees for many prompts; each teacher answers them all in one batched call
        (:meth:`Teacher.answers`), so building N trees costs far less than N calls of :meth:`new_tree`."""
        trees = []
        for prompt in prompts:
            text = self.prompt_text(prompt)
            templated = text != prompt
            trees.append(TokenTree(prompt, self.tokenizer(text, add_special_tokens=not templated)["input_ids"],
                                   root_text=text))
        if references:
            for teacher in self.teachers:
                for tree, text in zip(trees, teacher.answers(list(prompts), max_new_tokens=max_new_tokens),
                                      strict=True):
                    ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                    tree.add_reference(teacher.name, [*ids, self.eos_id])
        return trees

    def is_fresh(self, tree: TokenTree, node: int) -> bool:
        """Whether the node has a slate computed with the current primary."""
        slate = tree.nodes[node].slate
        return slate is not None and slate.primary_version == self.primary.version

    # -- expansion ------------------------------------------------------------------------------
    def expand(self, tree: TokenTree, nodes: Sequence[int] = (ROOT,)) -> list[Slate]:
        """Slates of ``nodes``, computing the missing or stale ones in one batch per model."""
        todo = list(dict.fromkeys(n for n in nodes if not self.is_fresh(tree, n)))
        if todo:
            contexts = [tree.context(n, self.decode) for n in todo]
            logprobs = torch.stack([m.next_logprobs(contexts) for m in self.models])  # (M, B, V_p)
            for b, node in enumerate(todo):
                tree.set_slate(node, self._slate(tree, node, logprobs[:, b]))
        return [tree.nodes[n].slate for n in nodes]

    def _slate(self, tree: TokenTree, node: int, logprobs: torch.Tensor) -> Slate:
        rng = random.Random(hash((self.config.seed, tree.nodes[node].ids)))  # int tuples hash the same everywhere
        c = self.config
        logprobs = logprobs.numpy()  # (M, V_p), once per node
        drawn = iter(propose(logprobs[self.proposer_columns], k_right=c.k_right, k_wrong=c.k_wrong,
                             top_p=c.top_p, rng=rng, allowed=self.allowed))
        proposals = [next(drawn) if m in self.proposer_columns else ([], []) for m in range(len(self.models))]
        return merge_proposals(proposals, logprobs, width=c.width, wrong_slots=c.wrong_slots,
                               reference_tokens=sorted(tree.reference_children.get(node, ())),
                               primary_version=self.primary.version)

    def costs(self) -> dict[str, dict[str, int]]:
        """Forward calls, forwarded and generated tokens per model so far."""
        return {m.name: m.counters.as_dict() for m in self.models}
