"""AlphaZero-style MCTS over TokenTree-v0, using only the env's public planner API.

``search`` = repeat(``simulate`` (select down) -> ``expand`` (one ``env.simulate``) -> leaf value ->
``backward``), then act on the root's statistics. Two searches, chosen by :class:`MCTSConfig`:

- **PUCT** (Silver et al. 2017; :mod:`agents.search.puct`): the default, with Dirichlet noise
  ``(1 - ε) P + ε Dir(α)`` on the root prior in self-play; acting on the root's visit counts; the visit
  distribution is the policy target. Options for MuZero's exact form: the visit-dependent ``c_base``
  schedule, mctx's ``"parent_and_siblings"`` Q transform, and the root's own value counted as its first
  visit (``root_value``).
- **Gumbel MuZero** (Danihelka et al. 2022; :mod:`agents.search.gumbel`): Gumbel-top-m at the root with
  sequential halving, completed Q with the mixed value, deterministic interior selection; acting on the
  best considered action; the improved policy is the policy target.

``P`` is the env's prior (normalised weightage × similarity), by default mixed with the teacher panel's
probabilities. Leaf values (``leaf_value``): a fast rollout scored by the env's reward (in evaluation the
env withholds the verifier; in self-play with ``planner_verifier`` it scores the leaves), the judge's
verdict on the rollout's answer, or a ``value_fn`` (e.g. :class:`~agents.search.value.ValueHead`).
``reuse_subtree`` keeps the chosen child's subtree between moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from agents.base import PANEL_LOGPROB, PRIMARY_LOGPROB, PRIOR, Agent, features
from agents.search import gumbel as gmz
from agents.search.driver import check_leaf_source, run_searches
from agents.search.puct import Q_TRANSFORMS, puct_scores
from agents.search.rollout import leaf_values
from agents.search.tree import ROOT_INDEX, UNVISITED, SearchTree
from tokentree_env.errors import ConfigError

PRIORS = ("env", "uniform", "primary")
LEAF_VALUES = ("rollout", "judge")
ROLLOUTS = ("teacher", "prior", "writer")


@dataclass(frozen=True)
class MCTSConfig:
    """Hyperparameters of the search (keyword-only in use; every default reproduces the earlier search)."""

    num_simulations: int = 16
    """Simulations (expansions) per real step."""
    c_puct: float = 1.25
    """Exploration constant ``c`` of PUCT (``c_1`` of MuZero's schedule when ``c_base`` is set)."""
    c_base: float | None = None
    """MuZero's ``c_2``: ``c(s) = c_puct + log((N(s) + c_base + 1) / c_base)``; None keeps ``c`` constant."""
    q_transform: str = "minmax"
    """PUCT's Q transform: "minmax" (search-wide bounds) or "parent_and_siblings" (mctx's MuZero default)."""
    root_value: bool = False
    """Count the root's own value estimate as its first visit (MuZero / mctx semantics)."""
    dirichlet_alpha: float = 0.3
    """Concentration of the root Dirichlet noise."""
    dirichlet_fraction: float = 0.0
    """ε: weight of the root noise (0 in evaluation; 0.25 is AlphaZero's self-play value)."""
    temperature: float = 0.0
    """Temperature of the action choice from visit counts (0 = most visited)."""
    rollout_depth: int = 48
    """Most steps of a leaf rollout (the env's own length limit ends it earlier)."""
    rollout: str = "teacher"
    """The rollout policy of a leaf's value: "teacher" (greedy on the teacher panel: the child with the highest panel
    log-prob, step by step through the tree), "prior" (greedy on the prior) or "writer" (AlphaGo's fast rollout
    policy: the leaf's writing teacher finishes the answer with its own batched ``generate``, re-tokenised; its value
    counts the end's terms and the length cost, not the panel's per-token term:
    :class:`tokentree_env.env.rollouts.WriterRollouts`)."""
    leaf_value: str = "rollout"
    """A leaf's value when no ``value_fn`` is given: "rollout" (the rollout's return under the env's reward)
    or "judge" (the judge's verdict ``2 P(yes) - 1`` on the rollout's answer; needs the judge on)."""
    gumbel: bool = False
    """Gumbel MuZero instead of PUCT."""
    gumbel_actions: int = 4
    """m: root actions considered by Gumbel MuZero."""
    gumbel_scale: float = 0.0
    """Scale of the root Gumbel noise: 0 decodes deterministically; 1 samples (self-play exploration)."""
    teacher_mix: float = 0.5
    """λ: prior = (1 - λ) · env prior (weightage × similarity) + λ · the teacher panel's probabilities of the
    children (softmax of their panel log-probs over the slate). 0 is the design's prior alone; on a fresh tree
    its weightage is uniform and similarity barely tells digits apart, so with fewer simulations than children
    the right child is often never tried (see the ablation ``mcts-design-prior`` in benchmarks/README.md)."""
    prior: str = "env"
    """Where the prior comes from: "env" (mixed with the panel by ``teacher_mix``), "uniform" or "primary"."""
    reuse_subtree: bool = False
    """Keep the chosen child's subtree and its statistics for the next move's search (PUCT only)."""
    leaf_batch: int = 1
    """Leaves selected per round (PUCT): each selection adds a virtual loss along its path so the next one
    diverges, and the round's expansions run in one batched forward per model. 1 = one leaf at a time (exact
    AlphaZero order); virtual loss changes the search by design."""
    virtual_loss: float = 1.0
    """The value a pending leaf counts as, once, on every edge of its path, until its real value is backed up."""
    update_weightage: bool = False
    """Also apply the weightage rule along each simulated rollout (self-play only; the env ignores it in
    evaluation mode). Off by default: the env applies it to the episode actually played."""
    widening: float = 0.0
    """Progressive widening (PUCT; Couëtoux et al. 2011): a node may choose among its first
    ``max(widening_min, ⌈N(s)^widening⌉)`` valid children, in slate order, so later children join as the node is
    visited. 0: every child from the first visit."""
    widening_min: int = 1
    """The children a node may always choose among when widening is on."""
    stop_at_verified: bool = False
    """Coverage-first self-play: stop the search at the first leaf whose answer the verifier passes (shown to
    planners on train prompts only) and play that answer out; off outside that mode."""

    def __post_init__(self) -> None:
        checks = [(self.num_simulations >= 1, "num_simulations must be >= 1"), (self.c_puct > 0, "c_puct must be > 0"),
                  (0.0 <= self.dirichlet_fraction <= 1.0, "dirichlet_fraction must be in [0, 1]"),
                  (0.0 <= self.teacher_mix <= 1.0, "teacher_mix must be in [0, 1]"),
                  (self.prior in PRIORS, f"prior must be one of {PRIORS}"),
                  (self.rollout in ROLLOUTS, f"rollout must be one of {ROLLOUTS}"),
                  (not (self.rollout == "writer" and self.update_weightage),
                   "update_weightage walks a rollout through the tree; a writer's rollout leaves it"),
                  (self.leaf_value in LEAF_VALUES, f"leaf_value must be one of {LEAF_VALUES}"),
                  (self.q_transform in Q_TRANSFORMS, f"q_transform must be one of {Q_TRANSFORMS}"),
                  (self.c_base is None or self.c_base > 0, "c_base must be > 0 (or None)"),
                  (self.gumbel_actions >= 1, "gumbel_actions must be >= 1"),
                  (self.leaf_batch >= 1, "leaf_batch must be >= 1"),
                  (not (self.gumbel and self.leaf_batch > 1), "leaf_batch applies to PUCT, not Gumbel MuZero"),
                  (not (self.gumbel and self.reuse_subtree), "reuse_subtree applies to PUCT, not Gumbel MuZero"),
                  (self.widening >= 0.0, "widening must be >= 0"), (self.widening_min >= 1, "widening_min must be >= 1"),
                  (not (self.gumbel and self.widening > 0), "widening applies to PUCT, not Gumbel MuZero")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"MCTSConfig: {message}; got {self}")
        for name, acts in self.inert():
            raise ConfigError(f"MCTSConfig: {name}={getattr(self, name)!r} would not act: {acts}; leave it at its "
                              f"default ({DEFAULTS[name]!r}) or set what it needs")

    def inert(self) -> list[tuple[str, str]]:
        """Settings away from their default that this search would ignore, with why (each is refused: every field
        acts or is refused, never dropped in silence)."""
        out = []
        if self.gumbel:  # Gumbel MuZero selects by sequential halving and its improved policy (Danihelka et al.)
            for name in ("c_puct", "c_base", "q_transform", "dirichlet_alpha", "dirichlet_fraction", "temperature",
                         "virtual_loss", "widening_min"):
                if getattr(self, name) != DEFAULTS[name]:
                    out.append((name, "Gumbel MuZero neither scores by PUCT nor takes root Dirichlet noise or a "
                                      "visit temperature (its exploration is gumbel_scale)"))
            if self.root_value:
                out.append(("root_value", "Gumbel MuZero always values its root (the mixed value's v̂); counting it "
                                          "as a visit changes nothing it selects by"))
        else:
            out += [(name, "it acts with gumbel=True only") for name in ("gumbel_actions", "gumbel_scale")
                    if getattr(self, name) != DEFAULTS[name]]
        needs = (("dirichlet_alpha", self.dirichlet_fraction > 0, "with dirichlet_fraction > 0"),
                 ("virtual_loss", self.leaf_batch > 1, "with leaf_batch > 1"),
                 ("widening_min", self.widening > 0, "with widening > 0"))
        out += [(name, f"it acts only {what}") for name, ok, what in needs
                if not ok and getattr(self, name) != DEFAULTS[name] and name not in dict(out)]
        return out


DEFAULTS = {f.name: f.default for f in fields(MCTSConfig)}
"""Every ``MCTSConfig`` field's default."""


class MCTS:
    """MCTS planner over an env exposing ``simulate``/``get_state`` (``env.unwrapped``): the search's settings, its
    random stream, its prior and its action choice. The search itself runs in the one driver
    (:func:`agents.search.driver.run_searches`), alone or beside other searches.

    Args:
        config: search hyperparameters.
        value_fn: optional ``(env, state, obs) -> float`` leaf value; default: ``config.leaf_value``.
        rng: source of Dirichlet noise, Gumbel draws and temperature sampling.
    """

    def __init__(self, config: MCTSConfig = MCTSConfig(), *,
                 value_fn: Callable | None = None, rng: np.random.Generator | None = None) -> None:
        self.config = config
        self.value_fn = value_fn
        self.rng = rng or np.random.default_rng(0)
        self.gumbel = np.zeros(0)

    def search(self, env, obs, reuse: SearchTree | None = None) -> SearchTree:
        """Run ``num_simulations`` simulations from the env's current state (on top of ``reuse``, a subtree kept
        from the previous move, when given): the driver with this search alone."""
        return run_searches([self], env, [(env.get_state(), obs)], [reuse])[0]

    def leaf_value(self, env, state, obs) -> float:
        """The value of a non-terminal leaf as this search values it: ``value_fn``, or a rollout's return (or the
        judge's verdict on the rollout's answer)."""
        check_leaf_source(self.config, env)
        return leaf_values([self], env, [(state, obs)])[0][0]

    def chooser(self, bounds):
        """The action-selection callable of this search (root and interior), given its search-wide value bounds."""
        cfg = self.config
        if cfg.gumbel:
            return lambda tree, node: (gmz.root_action(tree, node, self.gumbel, num_simulations=cfg.num_simulations,
                                                       m=cfg.gumbel_actions)
                                       if node == ROOT_INDEX else gmz.interior_action(tree, node))
        return lambda tree, node: int(np.argmax(self._widened(tree, node, puct_scores(
            tree, node, cfg.c_puct, self._bounds(bounds), c_base=cfg.c_base, q_transform=cfg.q_transform))))

    def _widened(self, tree: SearchTree, node: int, scores: np.ndarray) -> np.ndarray:
        """Progressive widening: only the first ``max(widening_min, ⌈N^widening⌉)`` valid children may be chosen."""
        if self.config.widening <= 0:
            return scores
        allowed = max(self.config.widening_min, math.ceil(max(1, tree.node_visits[node]) ** self.config.widening))
        valid = np.flatnonzero(tree.children_mask[node])
        return np.where(np.isin(np.arange(len(scores)), valid[:allowed]), scores, -np.inf)

    def prior(self, obs) -> np.ndarray:
        """The search prior of a node's children: the env's prior, optionally mixed with the panel's (or, over step
        options, each option's own prior column)."""
        mask = obs["action_mask"] == 1
        if "option_prior" in obs:  # step options (agents.search.steps.StepOptionsEnv)
            if self.config.prior == "uniform" and mask.any():
                return mask / mask.sum()
            return obs["option_prior"].astype(np.float64) * mask
        feats = features(obs)
        if self.config.prior != "env":
            if not mask.any():
                return np.zeros(len(mask))
            if self.config.prior == "uniform":
                return mask / mask.sum()
            logits = np.where(mask, feats[:, PRIMARY_LOGPROB], -np.inf)
            probs = np.exp(logits - logits.max())
            return probs / probs.sum()
        prior = feats[:, PRIOR] * mask
        lam = self.config.teacher_mix
        if lam > 0 and mask.any():
            logits = np.where(mask, feats[:, PANEL_LOGPROB], -np.inf)
            panel = np.exp(logits - logits.max())
            prior = (1 - lam) * prior + lam * panel / panel.sum()
        return prior

    # -- acting ----------------------------------------------------------------------------------
    def choose(self, tree: SearchTree) -> int:
        """The action to play: for Gumbel MuZero, the most-visited considered action with the best
        ``g + logits + σ(q̂)``; for PUCT, from the root's visit counts (Q breaks ties), at the temperature."""
        if self.config.gumbel:
            return gmz.final_action(tree, ROOT_INDEX, self.gumbel)
        visits = tree.children_visits[ROOT_INDEX].astype(np.float64)
        if self.config.temperature > 0:
            p = visits ** (1.0 / self.config.temperature)
            return int(self.rng.choice(len(p), p=p / p.sum()))
        q = np.where(visits > 0, tree.children_values[ROOT_INDEX], -np.inf)
        best = np.flatnonzero(visits == visits.max())
        return int(best[np.argmax(q[best])])

    def policy_target(self, tree: SearchTree) -> np.ndarray:
        """The search's policy target at the root: Gumbel's improved policy, or PUCT's visit distribution."""
        return gmz.improved_policy(tree, ROOT_INDEX) if self.config.gumbel else tree.visit_distribution()

    # -- what the driver asks of a search ---------------------------------------------------------
    def root_prior(self, prior: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The root's prior: masked, with Dirichlet noise ``(1 - ε) P + ε Dir(α)`` in self-play (PUCT)."""
        cfg = self.config
        prior = prior * mask
        if cfg.dirichlet_fraction > 0 and mask.any() and not cfg.gumbel:
            noise = np.zeros_like(prior)
            noise[mask] = self.rng.dirichlet([cfg.dirichlet_alpha] * int(mask.sum()))
            prior = (1 - cfg.dirichlet_fraction) * prior + cfg.dirichlet_fraction * noise
        return prior

    def draw_gumbel(self, width: int) -> None:
        """This search's root Gumbel noise (scaled by ``gumbel_scale``; zeros for PUCT)."""
        cfg = self.config
        self.gumbel = cfg.gumbel_scale * self.rng.gumbel(size=width) if cfg.gumbel else np.zeros(width)

    @staticmethod
    def initial_bounds(tree: SearchTree) -> list[float]:
        """Search-wide value bounds from what a (kept) tree has seen already."""
        visited = tree.children_visits[: tree.size] > 0
        values = tree.children_values[: tree.size][visited]
        return [float(values.min()), float(values.max())] if values.size else [np.inf, -np.inf]

    @staticmethod
    def _bounds(bounds) -> tuple[float, float]:
        return (bounds[0], bounds[1]) if bounds[0] <= bounds[1] else (0.0, 0.0)


def _score(tree: SearchTree, action: int) -> float | None:
    """The verifier's score of the rollout after the root's child ``action`` (None: unseen)."""
    child = tree.children_index[ROOT_INDEX, action]
    if child == UNVISITED or np.isnan(tree.verified[child]):
        return None
    return float(tree.verified[child])


class MCTSAgent(Agent):
    """MCTS behind the agent interface: search from each state, play the chosen child."""

    def __init__(self, config: MCTSConfig = MCTSConfig(), *, value_fn: Callable | None = None, seed: int = 0,
                 name: str | None = None) -> None:
        self.mcts = MCTS(config, value_fn=value_fn, rng=np.random.default_rng(seed))
        self.name = name or f"mcts{'-gumbel' if config.gumbel else ''}-{config.num_simulations}"
        self._last: tuple[list[float], list[float]] | None = None
        self._improved: list[float] = []
        self._continuations: list[list[int]] = []
        self._continuation_scores: list[float | None] = []
        self._kept: SearchTree | None = None
        self._plan: list[int] = []  # a verified answer found by a stopped search, played out without searching
        self._verified: set[tuple[int, ...]] = set()

    def reseed(self, seed: int | Sequence[int]) -> None:
        """Restart the search's random stream (noise, Gumbel draws, sampling). Seeding each episode
        makes it independent of the episodes played before it, so a resumed run that skips them
        plays the same episode an uninterrupted run would."""
        self.mcts.rng = np.random.default_rng(seed)

    def begin(self, env, obs, info) -> None:
        self._kept, self._plan, self._verified = None, [], set()

    def act(self, env, obs, info) -> int:
        planned = self.planned(obs)
        if planned is not None:
            return planned
        u = env.unwrapped
        tree = run_searches([self.mcts], u, [(u.get_state(), obs)], [self.kept_for(u.get_state())])[0]
        return self.decide(tree, obs)

    def planned(self, obs) -> int | None:
        """The next move of a verified answer a stopped search found (``stop_at_verified``), without searching; None
        when there is none (or its token is not on the slate: the search takes over)."""
        if not self._plan:
            return None
        token = self._plan.pop(0)
        hits = np.flatnonzero((obs["candidates"] == token) & (obs["action_mask"] == 1))
        if not hits.size:
            self._plan = []
            return None
        self._last, self._improved, self._continuations, self._continuation_scores = None, [], [], []
        return int(hits[0])

    def verified_answers(self) -> list[list[int]]:
        """Every distinct whole answer this episode's searches saw the verifier pass (self-play), rollouts included."""
        return [list(a) for a in sorted(self._verified)]

    def decide(self, tree: SearchTree, obs) -> int:
        """The action to play after a search from ``obs``: records the decision's visits, Q values, improved policy
        and continuations, and keeps the chosen child's subtree (``reuse_subtree``)."""
        mask = obs["action_mask"] == 1
        self._last = (tree.visit_distribution()[mask].tolist(), tree.children_values[ROOT_INDEX][mask].tolist(),
                      int(tree.children_visits[ROOT_INDEX].sum()))
        self._improved = self.mcts.policy_target(tree)[mask].tolist() if self.mcts.config.gumbel else []
        self._continuations = [tree.continuation(ROOT_INDEX, int(a), int(obs["candidates"][a]))
                               for a in np.flatnonzero(mask)]
        self._continuation_scores = [_score(tree, int(a)) for a in np.flatnonzero(mask)]
        self._verified |= {tuple(a) for a in tree.verified_answers()}
        if tree.found != UNVISITED:  # a verified answer: play it out (its first move now, the rest planned)
            path = tree.path_from_root(tree.found) + list(tree.rollouts[tree.found])
            first = int(np.flatnonzero((obs["candidates"] == path[0]) & mask)[0])
            self._plan = path[1:]
            self._kept = None
            return first
        action = self.mcts.choose(tree)
        if self.mcts.config.reuse_subtree:
            child = int(tree.children_index[ROOT_INDEX, action])
            self._kept = tree.subtree(child, self.mcts.config.num_simulations) if child != UNVISITED else None
        return action

    def kept_for(self, state) -> SearchTree | None:
        """The subtree kept from the last decision, if its root is ``state`` (then it is handed over, once)."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        root = kept.states[ROOT_INDEX]
        return kept if (root.prompt, root.node) == (state.prompt, state.node) and not kept.terminal[ROOT_INDEX] else None

    def last_search(self):
        return self._last

    def last_continuations(self) -> list[list[int]]:
        """Per valid child of the last decision, the whole answer the search played after it (or [])."""
        return self._continuations

    def last_continuation_scores(self) -> list[float | None]:
        """Per valid child of the last decision, the verifier's score of the answer the search played after it, where
        planners see the verifier (self-play; None where it is hidden or the child was never tried)."""
        return self._continuation_scores

    def last_improved_policy(self) -> list[float]:
        """Gumbel MuZero's improved policy over the last decision's valid children (empty for PUCT)."""
        return self._improved
