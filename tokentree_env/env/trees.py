"""The env's tree store: one token tree per prompt, built one at a time or in batches, saved, loaded
and merged exactly, with each batch's preparation cost charged to the prompt's first episode.

Compute accounting (DESIGN §10, ``docs/design.md``): building a tree at ``reset`` happens inside the
episode's cost window. :meth:`TreeStore.prepare` builds many trees ahead of their episodes in batches;
what each prompt's rows forwarded there (its teachers' reference answers, the judge's working) is
recorded per prompt (with ``roots``, its root's slate too) and charged to **the first episode played on that
prompt** (:meth:`take_pending`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from tokentree_env.env.state import tree_filename
from tokentree_env.errors import EnvStateError
from tokentree_env.teachers.base import splitting_calls
from tokentree_env.tree import ROOT, Expander, TokenTree, WeightageRule


class TreeStore:
    """Token trees by prompt, and the preparation cost each prompt's first episode still owes.

    Args:
        expander: builds trees (reference answers) and knows the models that fill them.
        judge: prepares its workings with the trees (``Judge.prepare``), or None.
        references: insert the teachers' greedy reference answers into new trees.
        max_new_tokens: the longest reference answer.
        allow_lossy_prompts: accept prompts the primary's tokenizer cannot encode faithfully.
    """

    _instances = itertools.count()

    def __init__(self, expander: Expander, *, judge=None, references: bool = True, max_new_tokens: int = 32,
                 allow_lossy_prompts: bool = False, rule: WeightageRule = WeightageRule()) -> None:
        self.uid = next(TreeStore._instances)
        self.expander, self.judge, self.references = expander, judge, references
        self.max_new_tokens, self.allow_lossy_prompts, self.rule = max_new_tokens, allow_lossy_prompts, rule
        self.trees: dict[str, TokenTree] = {}
        self.pending: dict[str, dict[str, dict[str, int]]] = {}  # prompt -> model -> work owed by its first episode
        self.updates = {"lowered": 0, "raised": 0, "episodes": 0}  # the weightage rule's effect so far

    def __getitem__(self, prompt: str) -> TokenTree:
        try:
            return self.trees[prompt]
        except KeyError:
            raise EnvStateError(f"no token tree for prompt {prompt!r}; reset() on it (or prepare()) first") from None

    def __contains__(self, prompt: str) -> bool:
        return prompt in self.trees

    def owner(self, prompt: str) -> tuple[int, str]:
        """The key a prompt's episodes are charged under: this store's id and the prompt (two stores sharing models,
        e.g. a vector env's sub-envs, never mix their charges)."""
        return (self.uid, prompt)

    def ensure(self, prompt: str) -> TokenTree:
        """The prompt's tree, built now if it does not exist (the caller charges the work to the episode)."""
        tree = self.trees.get(prompt)
        if tree is None:
            tree = self.expander.new_tree(prompt, references=self.references, max_new_tokens=self.max_new_tokens,
                                          allow_lossy=self.allow_lossy_prompts)
            self.trees[prompt] = tree
        tree.owner = self.owner(prompt)
        return tree

    def apply_weightage(self, prompt: str, path, episode_return: float):
        """Apply the weightage rule along an episode's path on the prompt's tree; count its effect."""
        count = self[prompt].apply_weightage(path, episode_return, self.rule)
        self.updates["lowered"] += count.lowered
        self.updates["raised"] += count.raised
        self.updates["episodes"] += 1
        return count

    def prepare(self, prompts: Sequence[str], *, verdicts: bool = True, roots: bool = False) -> int:
        """Build the trees of many prompts in batches, the judge's workings when ``verdicts``, and with ``roots`` every
        root's slate (one batch per model, for prompts about to be played: a reset would expand each alone); record
        each prompt's share of the work for its first episode, the calls it alone would have made included. Returns
        how many trees it built."""
        prompts = list(dict.fromkeys(prompts))
        todo = [p for p in prompts if p not in self.trees]
        owners = [("prepare", p) for p in todo]
        if not todo:
            return 0
        trees = self.expander.new_trees(todo, references=self.references, max_new_tokens=self.max_new_tokens,
                                        owners=owners, allow_lossy=self.allow_lossy_prompts)
        self.trees.update(zip(todo, trees, strict=True))
        try:  # whatever fails below, the work done so far is owed by each prompt's first episode, once
            if roots:
                for tree, owner in zip(trees, owners, strict=True):  # the roots' rows are preparation too
                    tree.owner = owner
                with splitting_calls(self._counters().values()):
                    self.expander.expand_many([(tree, ROOT) for tree in trees])
            if self.judge is not None and verdicts and hasattr(self.judge, "prepare"):
                self.judge.prepare(todo, owners=owners)
        finally:
            for tree in trees:
                tree.owner = self.owner(tree.prompt)
            for prompt, owner in zip(todo, owners, strict=True):
                self.pending[prompt] = {name: counters.take(owner) for name, counters in self._counters().items()}
        return len(todo)

    def take_pending(self, prompt: str) -> dict[str, dict[str, int]]:
        """The preparation work the prompt's first episode owes, per model (then forgotten)."""
        return self.pending.pop(prompt, {})

    def _counters(self) -> dict:
        out = {m.name: m.counters for m in self.expander.models}
        if self.judge is not None:
            out[f"judge:{self.judge.name}"] = self.judge.counters
        return out

    # -- files ----------------------------------------------------------------------------------
    def save(self, folder: str | Path, prompts: Sequence[str] | None = None) -> None:
        """Save every tree (or those of ``prompts``) as JSON files in ``folder``, one per prompt, each with
        its factors and the base it started from (which an exact merge needs)."""
        for prompt in self.trees if prompts is None else prompts:
            self[prompt].save(Path(folder) / tree_filename(prompt))

    def load(self, folder: str | Path, *, merge: bool = True, prompts: Sequence[str] | None = None) -> int:
        """Load trees saved by :meth:`save`. With ``merge``, a tree this store already has takes the saved
        tree's own updates (:meth:`TokenTree.merge`); otherwise the saved tree replaces it and becomes a
        start point (its factors are its new base). A tree built by other models raises
        :class:`~tokentree_env.errors.TreeMismatchError`. Returns how many trees were read."""
        paths = (sorted(Path(folder).glob("*.json")) if prompts is None
                 else [Path(folder) / tree_filename(p) for p in prompts])
        return sum(self.absorb(TokenTree.load(path), merge=merge, where=f" in {path}") for path in paths if path.exists())

    def export(self, prompts: Sequence[str] | None = None) -> list[dict]:
        """Every tree (or those of ``prompts``) as plain data (:meth:`TokenTree.to_json`): what :meth:`save`
        writes, for a transport that is not a shared disk (an object store)."""
        return [self[prompt].to_json() for prompt in (self.trees if prompts is None else prompts)]

    def read(self, source, *, merge: bool = True, prompts: Sequence[str] | None = None) -> int:
        """:meth:`load` a folder, or :meth:`absorb` each tree of a list (other workers' exports)."""
        if isinstance(source, (list, tuple)):
            return sum(self.absorb(tree, merge=merge) for tree in source)
        return self.load(source, merge=merge, prompts=prompts)

    def absorb(self, tree: TokenTree | dict, *, merge: bool = True, where: str = "") -> int:
        """Take one tree (a :class:`TokenTree` or its :meth:`export` data) as :meth:`load` takes a file's; 1."""
        tree = TokenTree.from_json(tree) if isinstance(tree, dict) else tree
        tree.check_built_by(self.expander.built_by(), where)
        tree.restamp_panel(self.expander.panel.describe())  # slates another panel ranked are re-ranked on visit
        tree.owner = self.owner(tree.prompt)
        if merge and tree.prompt in self.trees:
            self.trees[tree.prompt].merge(tree, self.rule)
        else:
            tree.rebase()
            self.trees[tree.prompt] = tree
        return 1
