"""Search over teachers' steps: at a step boundary (declared by the task), "teacher k writes the next step" is an
option, played as ordinary actions down the same token tree (LE-MCTS, Park et al. 2024).

:class:`StepOptionsEnv` wraps a TokenTree env's planner API so that the one search driver
(:func:`agents.search.driver.run_searches`) searches over options instead of tokens: its states are step
boundaries, its actions options, and playing an option walks the token env (``simulate``, batched by
``prefetch``), so every token of a step is charged, cached and stored as any other. The options at a boundary:

- ``k < K``: teacher ``k`` writes the next step greedily (its own log-probs of the slate's children);
- ``K + i·K + k``: teacher ``k`` samples the step (draw ``i``): at each node, a child drawn by the teacher's own
  log-probs at ``temperature``, renormalised over the slate (the share of the teacher's mass the slate held is
  recorded). With MCTS's progressive widening these unlock as the boundary is visited (AB-MCTS's "go wider").

Each option's **prior** is the panel's :meth:`~tokentree_env.scoring.panel.Panel.step_prior`: teacher ``k``'s
mixture weight at the boundary times the per-token likelihood of its own greedy step (a sampled draw shares its
teacher's greedy prior): switching writers is possible, but it must be earned. A leaf's rollout continues with its
writing teacher's greedy steps (the observation's ``writer`` column marks that option; ``option_prior`` holds the
prior). Walks are kept (by boundary and option), and two options that share a prefix
walk the same tree nodes: nothing is forwarded twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.base import Agent


@dataclass(frozen=True)
class StepState:
    """A boundary of the step-level search: the token env's state there (with its observation and info), the
    teacher who wrote the step that led here (-1 at the root) and whether the answer has ended."""

    state: object
    obs: dict = field(compare=False, repr=False)
    info: dict = field(compare=False, repr=False)
    writer: int = -1

    @property
    def done(self) -> bool:
        return bool(self.state.done)


@dataclass
class Walk:
    """One option played from a boundary: the tokens taken, the reward they earned, where it ended, and per teacher
    the log-probs of the tokens (for the prior) and the slate's share of a sampling teacher's mass."""

    tokens: list[int] = field(default_factory=list)
    reward: float = 0.0
    end: StepState | None = None
    terminated: bool = False
    truncated: bool = False
    info: dict = field(default_factory=dict)
    logprobs: list[list[float]] = field(default_factory=list)  # per token: each teacher's log-prob
    slate_mass: list[float] = field(default_factory=list)  # per token: the slate's share of the sampler's mass


class StepOptionsEnv:
    """A TokenTree env's planner API, over step options (see the module docstring).

    Args:
        env: the token env (``env.unwrapped``).
        samples: sampled draws per teacher at a boundary (beside its greedy option).
        temperature: the sampling temperature of the sampled options.
        max_step_tokens: the longest step (a step that reaches no boundary ends there).
        seed: the seed of the sampled draws (each draw depends only on its boundary, option and seed).
    """

    def __init__(self, env, *, samples: int = 2, temperature: float = 1.0, max_step_tokens: int = 24,
                 seed: int = 0) -> None:
        self.env, self.samples, self.temperature = env, samples, temperature
        self.max_step_tokens, self.seed = max_step_tokens, seed
        self.teachers = len(env.teacher_names)
        self.width = self.teachers * (1 + samples)
        self.boundary = env.at_step_boundary
        self.walks: dict[tuple, Walk] = {}
        self.slate_mass: list[float] = []  # every sampled token's slate share, over all the walks played
        self.judge_verdicts, self.max_new_tokens = env.judge_verdicts, env.max_new_tokens
        """An answer takes at most ``max_new_tokens`` steps (a step is at least one token): the bound a judge-valued
        rollout over steps must reach (:func:`agents.search.driver.check_leaf_source`)."""

    # -- the planner API the search driver uses ------------------------------------------------------
    def root(self, state, obs, info) -> tuple[StepState, dict]:
        """The search's root at the token env's ``state`` (a boundary), with its option observation."""
        here = StepState(state, obs, info)
        self._walk_greedy([here])
        return here, self.observe(here)

    def get_state(self):  # the driver reads the root from the roots it is given; kept for the planner API
        raise NotImplementedError("StepOptionsEnv has no current state: give the search its root (root())")

    def prefetch(self, states: Sequence[StepState], options: Sequence[int]) -> None:
        """Play every requested option (and the greedy options of every boundary they reach, which their priors
        need) in lockstep on the token env."""
        self._walk([(s, o) for s, o in zip(states, options, strict=True) if (self.key(s), o) not in self.walks])
        self._walk_greedy([self.walks[(self.key(s), o)].end for s, o in zip(states, options, strict=True)])

    def simulate(self, state: StepState, option: int):
        """``(next boundary, its option observation, the step's reward, terminated, truncated, info)``."""
        self.prefetch([state], [option])
        walk = self.walks[(self.key(state), option)]
        return walk.end, self.observe(walk.end), walk.reward, walk.terminated, walk.truncated, walk.info

    def update_weightage(self, path, episode_return: float, prompt: str | None = None) -> bool:
        return False  # the token env applies its rule to the episode it plays

    def play(self, here: StepState, option: int) -> Walk:
        """One option from one boundary (walked if it is not kept yet), without the next boundary's greedy options."""
        if (self.key(here), option) not in self.walks:
            self._walk([(here, option)])
        return self.walks[(self.key(here), option)]

    # -- options ------------------------------------------------------------------------------------
    def option_teacher(self, option: int) -> int:
        return option % self.teachers

    def observe(self, here: StepState) -> dict:
        """The options of a boundary as the search's observation, in columns of their own: ``action_mask`` over the
        options, ``option_prior`` (teacher weight x the greedy step's length-normalised likelihood) and ``writer``
        (1 on the writing teacher's greedy option: what a leaf rollout follows), and ``candidates`` (each greedy
        option's first token)."""
        prior = np.zeros(self.width, dtype=np.float32)
        writer_column = np.zeros(self.width, dtype=np.int8)
        mask = np.zeros(self.width, dtype=np.int8)
        candidates = np.zeros(self.width, dtype=np.int64)
        if here.done:
            return {"option_prior": prior, "writer": writer_column, "action_mask": mask, "candidates": candidates}
        weights = np.asarray(here.info["panel"]["weights"], dtype=np.float64)
        own_steps = []
        for k in range(self.teachers):
            walk = self.walks[(self.key(here), k)]
            own_steps.append(np.asarray([row[k] for row in walk.logprobs], dtype=np.float64))
            if walk.tokens:
                candidates[k] = walk.tokens[0]
        per_teacher = self.env.panel_step_prior(weights, own_steps)  # the panel's rule (scoring/panel.py)
        writer = here.writer if here.writer >= 0 else int(np.argmax(weights))
        for option in range(self.width):
            prior[option] = per_teacher[self.option_teacher(option)]
            mask[option] = 1
        writer_column[writer] = 1
        return {"option_prior": prior, "writer": writer_column, "action_mask": mask, "candidates": candidates}

    def key(self, here: StepState) -> tuple:
        """A boundary's key in :attr:`walks` (with an option): its prompt and token-tree node."""
        return (here.state.prompt, here.state.node)

    def _walk_greedy(self, boundaries: Sequence[StepState | None]) -> None:
        todo = [(b, k) for b in boundaries if b is not None and not b.done for k in range(self.teachers)
                if (self.key(b), k) not in self.walks]
        self._walk(todo)

    def _walk(self, requests: Sequence[tuple[StepState, int]]) -> None:
        """Play options from boundaries in lockstep: each round, one token of every unfinished walk, their
        expansions in one ``prefetch`` of the token env."""
        walks = []
        for here, option in dict.fromkeys(requests):
            ids = self.env.state_ids(here.state)  # int tuples hash the same everywhere
            rng = random.Random(hash((self.seed, ids, option)))
            walks.append((here, option, Walk(), here.state, here.obs, here.info, rng))
        live = list(range(len(walks)))
        while live:
            chosen = [self._choose(walks[i]) for i in live]
            self.env.prefetch([walks[i][3] for i in live], chosen)
            following = []
            for i, action in zip(live, chosen, strict=True):
                here, option, walk, state, obs, info, rng = walks[i]
                k = self.option_teacher(option)
                row = np.asarray(info["panel"]["teacher_logprobs"][action], dtype=np.float64)
                walk.logprobs.append(row.tolist())
                walk.tokens.append(int(obs["candidates"][action]))
                state, obs, reward, terminated, truncated, info = self.env.simulate(state, action)
                walk.reward += reward
                text = info["text"]
                if terminated or truncated or self.boundary(text) or len(walk.tokens) >= self.max_step_tokens:
                    walk.terminated, walk.truncated, walk.info = terminated, truncated, info
                    walk.end = StepState(state, obs, info, writer=k)
                    self.walks[(self.key(here), option)] = walk
                else:
                    walks[i] = (here, option, walk, state, obs, info, rng)
                    following.append(i)
            live = following

    def _choose(self, item) -> int:
        _, option, walk, _, obs, info, rng = item
        k = self.option_teacher(option)
        mask = obs["action_mask"] == 1
        lp = np.full(len(mask), -np.inf)
        own = np.asarray([row[k] for row in info["panel"]["teacher_logprobs"]], dtype=np.float64)
        lp[: len(own)] = own
        lp = np.where(mask, lp, -np.inf)
        if option < self.teachers:  # greedy on the teacher's own log-probs of the slate's children
            return int(np.argmax(lp))
        logits = lp / self.temperature
        p = np.exp(logits - logits.max())
        walk.slate_mass.append(float(np.exp(own).sum()))
        self.slate_mass.append(walk.slate_mass[-1])
        p = p / p.sum()
        return int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right").clip(0, len(p) - 1))




def step_inert(config) -> list[tuple[str, str]]:
    """The settings of ``config`` that a search over step options would ignore, with why (refused)."""
    checks = (("gumbel", config.gumbel, "the step search is PUCT with progressive widening"),
              ("teacher_mix", config.teacher_mix != 0.0, "an option's prior is its teacher's weight times its step's "
               "likelihood (set teacher_mix=0.0)"),
              ("prior", config.prior == "primary", "options have no primary log-prob ('env' or 'uniform')"),
              ("reuse_subtree", config.reuse_subtree, "each boundary's search starts afresh"),
              ("rollout", config.rollout == "writer", "a step rollout follows the writer's own greedy steps already"),
              ("stop_at_verified", config.stop_at_verified, "step options keep no verifier's word of their leaves"),
              ("update_weightage", config.update_weightage, "the token env applies the weightage rule to the episode "
               "it plays; step rollouts do not"))
    return [(name, why) for name, bad, why in checks if bad]


class StepMCTSAgent(Agent):
    """MCTS over step options (``mcts-steps:S``): at each step boundary, ``S`` simulations of the one search driver
    over :class:`StepOptionsEnv`; the chosen option's tokens are then played one by one. Every teacher's greedy step
    is open from a boundary's first visit (``widening_min`` is raised to the number of teachers); sampled steps join
    by progressive widening.

    What it records for training: at a boundary, the option visits summed onto each option's first token (the
    node's token-level visit distribution); within an option, the token taken (a one-hot target, as SFT's).
    """

    def __init__(self, config=None, *, samples: int = 2, temperature: float = 1.0, seed: int = 0,
                 name: str | None = None) -> None:
        from agents.search.mcts import MCTS, MCTSConfig

        config = config or MCTSConfig(num_simulations=4, teacher_mix=0.0, widening=0.5)
        for name, why in step_inert(config):
            from tokentree_env.errors import ConfigError

            raise ConfigError(f"mcts-steps: {name}={getattr(config, name)!r} would not act on step options: {why}")
        self.mcts = MCTS(config, rng=np.random.default_rng(seed))
        self.samples, self.temperature, self.seed = samples, temperature, seed
        self.name = name or f"mcts-steps-{config.num_simulations}"
        self._pending: list[int] = []
        self._last: tuple[list[float], list[float]] | None = None
        self.options: StepOptionsEnv | None = None
        self._earlier_mass: list[float] = []  # slate shares of the sampled steps of earlier episodes

    def reseed(self, seed) -> None:
        """Restart the search's and the sampled options' random streams (per episode)."""
        self.mcts.rng = np.random.default_rng(seed)
        self.seed = int(np.random.default_rng(seed).integers(2**31))

    @property
    def slate_mass(self) -> list[float]:
        """The slate's share of the sampling teacher's mass at every sampled token the searches walked."""
        return self._earlier_mass + (self.options.slate_mass if self.options else [])

    def begin(self, env, obs, info) -> None:
        self._pending = []
        self._earlier_mass = self.slate_mass
        self.options = StepOptionsEnv(env.unwrapped, samples=self.samples, temperature=self.temperature,
                                      seed=self.seed)
        if self.mcts.config.widening_min < self.options.teachers:  # every teacher's greedy step open from the start
            from dataclasses import replace

            self.mcts.config = replace(self.mcts.config, widening_min=self.options.teachers)

    def act(self, env, obs, info) -> int:
        from agents.search.driver import run_searches

        mask = obs["action_mask"] == 1
        if not self._pending:
            u = env.unwrapped
            root, root_obs = self.options.root(u.get_state(), obs, info)
            tree = run_searches([self.mcts], self.options, [(root, root_obs)])[0]
            option = self.mcts.choose(tree)
            walk = self.options.walks[(self.options.key(root), option)]
            self._pending = list(walk.tokens)
            self._last = self._boundary_targets(tree, obs, root)
        else:
            taken = self._pending[0]
            self._last = ([float(t == taken) for t in obs["candidates"][mask]], [0.0] * int(mask.sum()))
        token = self._pending.pop(0)
        hits = np.flatnonzero((obs["candidates"] == token) & mask)
        return int(hits[0]) if hits.size else int(np.flatnonzero(mask)[0])

    def _boundary_targets(self, tree, obs, root: StepState) -> tuple[list[float], list[float]]:
        """The option visits summed onto each option's first token, over the token slate (and each first token's
        best option value)."""
        from agents.search.tree import ROOT_INDEX

        candidates = obs["candidates"][obs["action_mask"] == 1].tolist()
        visits, values = np.zeros(len(candidates)), np.full(len(candidates), -np.inf)
        for option in range(self.options.width):
            walk = self.options.walks.get((self.options.key(root), option))
            n = tree.children_visits[ROOT_INDEX, option]
            if walk is None or not walk.tokens or not n or walk.tokens[0] not in candidates:
                continue
            i = candidates.index(walk.tokens[0])
            visits[i] += n
            values[i] = max(values[i], tree.children_values[ROOT_INDEX, option])
        total = visits.sum()
        return ((visits / total).tolist() if total else visits.tolist(),
                np.where(np.isfinite(values), values, 0.0).tolist())

    def last_search(self):
        return self._last


__all__ = ["StepMCTSAgent", "StepOptionsEnv", "StepState", "Walk"]
