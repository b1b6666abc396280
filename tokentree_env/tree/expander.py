"""Populating the search space: teachers (and the primary) propose children, merged into slates.

The :class:`Expander` composes proposers that know nothing of the tree; the tree knows nothing
of models. Expanding a node asks every model for its next-token distribution at the node's
context (one batched, KV-cached forward per model for all nodes expanded together; a cache hit
costs nothing), draws right and wrong proposals, and merges them into a slate ranked by the teacher panel
(:class:`~tokentree_env.scoring.panel.Panel`, which the expander owns: it keeps each node's panel weights).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tokentree_env.errors import ConfigError, PromptError
from tokentree_env.models.prompts import has_chat_template, prompt_ids, prompt_text
from tokentree_env.scoring.panel import Panel, PanelConfig
from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB
from tokentree_env.teachers.base import Teacher, propose_many
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
        panel: how the teachers' log-probs combine (a :class:`PanelConfig`, a rule name or a dict; default: the
            mixture). It ranks the slates and gives each child's panel log-prob.
    """

    def __init__(self, teachers: Sequence[Teacher], primary: Teacher, primary_tokenizer,
                 config: ExpansionConfig = ExpansionConfig(), panel: PanelConfig | str | dict | None = None) -> None:
        if not teachers:
            raise ConfigError("the teacher list is empty; pass at least one teacher (e.g. 'zoo:teacher-llama')")
        self.teachers = list(teachers)
        self.panel = Panel(panel, len(self.teachers))
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
        self._built_by: dict | None = None
        self._threads = None  # for remote teachers' concurrent requests, made on first use

    # -- trees ----------------------------------------------------------------------------------
    def decode(self, ids: Sequence[int]) -> str:
        """Text of primary token ids (special tokens dropped)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def prompt_text(self, prompt: str) -> str:
        """The primary's input for ``prompt`` (:func:`tokentree_env.models.prompts.prompt_text`: its chat template
        when it has one, else the prompt). Foreign teachers read this text as the context's start."""
        return prompt_text(self.tokenizer, prompt)

    def check_prompt(self, prompt: str, *, allow_lossy: bool = False) -> None:
        """Refuse a prompt the primary's tokenizer cannot read faithfully, with a :class:`PromptError`
        naming what is wrong: special-token text of any model (never read as a real special token), or
        characters the primary's tokenizer drops or maps to its unknown token (unless ``allow_lossy``)."""
        specials = sorted({s for tok in self._tokenizers() for s in tok.all_special_tokens if s and s in prompt})
        if specials:
            raise PromptError(f"prompt {prompt[:60]!r} contains special-token text {specials}; a prompt is read as "
                              "plain text and never as special tokens: remove or rewrite it")
        if allow_lossy or self.decode_keep(self.tokenizer(prompt, add_special_tokens=False)["input_ids"]) == prompt:
            return
        bad = sorted({c for c in prompt if self.decode_keep(self.tokenizer(c, add_special_tokens=False)["input_ids"]) != c})
        raise PromptError(f"prompt {prompt[:60]!r} has characters the primary's tokenizer cannot encode: "
                          f"{bad or 'its text does not round-trip'}; remove them, or pass allow_lossy_prompts=True "
                          "to run on the prompt as the primary reads it (those characters dropped)")

    def decode_keep(self, ids: Sequence[int]) -> str:
        """Text of primary ids with special tokens kept (an unknown token shows as its own text)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def _tokenizers(self) -> list:
        found = [self.tokenizer]
        for model in self.models:
            for attr in ("tokenizer", "teacher_tokenizer"):
                tok = getattr(model, attr, None)
                if tok is not None and tok not in found:
                    found.append(tok)
        return found

    def built_by(self) -> dict:
        """What fills this expander's trees: each teacher's spec and tokenizer hash, and the primary's
        tokenizer hash (not its weights: a trained primary still reads its trees, whose stale slates are
        recomputed). Saved with every tree and compared on load (:meth:`TokenTree.check_built_by`)."""
        if self._built_by is None:
            self._built_by = self._describe()
        return self._built_by

    def _describe(self) -> dict:
        return {"teachers": [[t.name, tokenizer_hash(getattr(t, "tokenizer", None) or getattr(t, "teacher_tokenizer", None))]
                             for t in self.teachers],
                "primary_tokenizer": tokenizer_hash(self.tokenizer)}

    def new_tree(self, prompt: str, *, references: bool = True, max_new_tokens: int = 48,
                 allow_lossy: bool = False) -> TokenTree:
        """A tree for ``prompt``, with each teacher's greedy reference answer inserted."""
        return self.new_trees([prompt], references=references, max_new_tokens=max_new_tokens,
                              allow_lossy=allow_lossy)[0]

    def new_trees(self, prompts: Sequence[str], *, references: bool = True, max_new_tokens: int = 48,
                  owners: Sequence[Hashable] | None = None, allow_lossy: bool = False) -> list[TokenTree]:
        """Trees for many prompts; each teacher answers them all in one batched call
        (:meth:`Teacher.answers`), so building N trees costs far less than N calls of :meth:`new_tree`.
        With ``owners``, each prompt's reference answers are charged to its owner (``CostCounter.ledger``)."""
        trees, built_by = [], self.built_by()
        for prompt in prompts:
            self.check_prompt(prompt, allow_lossy=allow_lossy)
            text, ids = self.prompt_text(prompt), prompt_ids(self.tokenizer, prompt)
            templated = has_chat_template(self.tokenizer)
            root_text = text if not allow_lossy else self.tokenizer.decode(ids, skip_special_tokens=not templated)
            trees.append(TokenTree(prompt, ids, root_text=root_text, built_by=built_by, panel=self.panel.describe()))
        if references:
            for teacher in self.teachers:
                texts = teacher.answers(list(prompts), max_new_tokens=max_new_tokens, owners=owners)
                for tree, text in zip(trees, texts, strict=True):
                    ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                    tree.add_reference(teacher.name, [*ids, self.eos_id])
        return trees

    def is_fresh(self, tree: TokenTree, node: int) -> bool:
        """Whether the node has a slate computed with the current primary (and ranked by a panel)."""
        slate = tree.nodes[node].slate
        return slate is not None and slate.primary_version == self.primary.version and slate.panel is not None

    # -- the panel's weights ----------------------------------------------------------------------
    def log_weights(self, tree: TokenTree, node: int) -> np.ndarray:
        """The panel's log-weights over the teachers at ``node``, ``(K,)``: π at the root, then the panel's update
        (:meth:`Panel.child_log_weights`) by each path node's **evidence**: every teacher's log-prob of that node's
        token, kept on the node from its creation (:meth:`child`), so the weights never depend on whether an
        ancestor's slate was recomputed. Cached on the node under every model's version."""
        key = self.versions()
        chain, n = [], node
        while True:
            cached = tree.nodes[n].log_weights
            if cached is not None and cached[0] == key:
                weights = cached[1]
                break
            if n == ROOT:
                weights = self.panel.root_log_weights
                tree.nodes[ROOT].log_weights = (key, weights)
                break
            chain.append(n)
            n = tree.nodes[n].parent
        for n in reversed(chain):
            weights = self.panel.child_log_weights(weights, np.asarray(self.evidence(tree, n), dtype=np.float64))
            tree.nodes[n].log_weights = (key, weights)
        return weights

    def versions(self) -> tuple[int, ...]:
        """Every model's version (teachers, then the primary): the key of what is cached from them."""
        return (*(t.version for t in self.teachers), self.primary.version)

    def evidence(self, tree: TokenTree, node: int) -> tuple[float, ...]:
        """Each teacher's log-prob of ``node``'s token at its parent (floored, as on a slate): kept on the node once
        known; read from the parent's slate, or from the teachers' (cached) distributions at the parent when the
        token is not on it (a reference answer's token, or a slate recomputed for a trained primary)."""
        n = tree.nodes[node]
        if n.evidence is None:
            parent = n.parent
            slate = tree.nodes[parent].slate
            index = slate.index_of(n.token) if slate is not None else None
            if index is not None:
                n.evidence = tuple(float(x) for x in slate.logprobs[index, self.teacher_columns])
            else:
                rows = torch.stack([t.next_logprobs([tree.context(parent, self.decode)])[0] for t in self.teachers])
                floored = np.maximum(rows[:, n.token].numpy(), UNMAPPED_LOGPROB).astype(np.float32)
                n.evidence = tuple(float(x) for x in floored)
        return n.evidence

    def child(self, tree: TokenTree, node: int, index: int) -> int:
        """``node``'s child by its slate's child ``index`` (created if new), with its evidence kept from the slate."""
        slate = tree.nodes[node].slate
        child = tree.child(node, int(slate.tokens[index]))
        if tree.nodes[child].evidence is None:
            tree.nodes[child].evidence = tuple(float(x) for x in slate.logprobs[index, self.teacher_columns])
        return child

    def writer(self, tree: TokenTree, node: int) -> int:
        """The index of the teacher with the largest panel weight at ``node`` (who is writing)."""
        return int(np.argmax(self.log_weights(tree, node)))

    # -- expansion ------------------------------------------------------------------------------
    def expand(self, tree: TokenTree, nodes: Sequence[int] = (ROOT,)) -> list[Slate]:
        """Slates of ``nodes``, computing the missing or stale ones in one batch per model."""
        return self.expand_many([(tree, n) for n in nodes])

    def expand_many(self, pairs: Sequence[tuple[TokenTree, int]]) -> list[Slate]:
        """Slates of ``(tree, node)`` pairs of any trees (lockstep play over many prompts): the missing or stale
        ones in one batch per model, however many prompts they come from."""
        todo = list(dict.fromkeys((id(t), n) for t, n in pairs if not self.is_fresh(t, n)))
        trees = {id(t): t for t, _ in pairs}
        if todo:
            contexts = [trees[t].context(n, self.decode) for t, n in todo]
            logprobs = self._all_logprobs(contexts).numpy()  # (M, B, V_p)
            c = self.config
            rngs = [random.Random(hash((c.seed, trees[t].nodes[n].ids))) for t, n in todo]  # int tuples hash alike
            drawn = propose_many(logprobs[self.proposer_columns].transpose(1, 0, 2), k_right=c.k_right,
                                 k_wrong=c.k_wrong, top_p=c.top_p, rngs=rngs, allowed=self.allowed)
            for b, (t, node) in enumerate(todo):
                trees[t].set_slate(node, self._slate(trees[t], node, logprobs[:, b], iter(drawn[b])))
        return [t.nodes[n].slate for t, n in pairs]

    def _all_logprobs(self, contexts: list) -> torch.Tensor:
        """Every model's next-token log-probs of ``contexts``: remote teachers' requests all in flight at once
        (threads), while the local models run here."""
        far = [m for m in self.models if getattr(m, "remote", False)]
        if not far:
            return torch.stack([m.next_logprobs(contexts) for m in self.models])
        if self._threads is None:
            from concurrent.futures import ThreadPoolExecutor

            self._threads = ThreadPoolExecutor(max_workers=len(far), thread_name_prefix="tokentree-teachers")
        futures = {id(m): self._threads.submit(m.next_logprobs, contexts) for m in far}
        near = {id(m): m.next_logprobs(contexts) for m in self.models if id(m) not in futures}
        return torch.stack([futures[id(m)].result() if id(m) in futures else near[id(m)] for m in self.models])

    def _slate(self, tree: TokenTree, node: int, logprobs: np.ndarray, drawn) -> Slate:
        """A node's slate from every model's log-probs ``(M, V_p)`` and the proposers' proposals (in column order)."""
        c = self.config
        proposals = [next(drawn) if m in self.proposer_columns else ([], []) for m in range(len(self.models))]
        weights, columns = self.log_weights(tree, node), self.teacher_columns
        keepers = dict.fromkeys([*columns, *([self.primary_column] if c.primary_proposes else [])])
        return merge_proposals(proposals, logprobs, width=c.width, wrong_slots=c.wrong_slots,
                               panel=lambda lp: self.panel.logprobs(weights, lp[:, columns]),
                               reference_tokens=sorted(tree.reference_children.get(node, ())),
                               keep_tokens=[proposals[m][0][0] for m in keepers if proposals[m][0]],
                               primary_version=self.primary.version)

    def costs(self) -> dict[str, dict[str, int]]:
        """Forward calls, forwarded and generated tokens per model so far."""
        return {m.name: m.counters.as_dict() for m in self.models}

    def close(self) -> None:
        """Stop the threads that send remote teachers' requests (made on first use); the models are the env's."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None


def tokenizer_hash(tokenizer) -> str | None:
    """A short hash of a tokenizer's vocabulary and special tokens (None when there is no tokenizer)."""
    if tokenizer is None:
        return None
    vocab = sorted(tokenizer.get_vocab().items())
    specials = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
    return hashlib.sha256(json.dumps([vocab, specials]).encode()).hexdigest()[:16]
