"""Settings of the training loop (``tokentree train``). Light on purpose: the command line reads its
defaults from here without importing torch, transformers or TRL."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.specs import check_settings, self_play_spec
from tokentree_env.errors import ConfigError
from tokentree_env.scoring.panel import DEFAULT_ALPHA, PANEL_RULES
from tokentree_env.zoo.catalog import DEFAULT_JUDGE, DEFAULT_PRIMARY, DEFAULT_TEACHERS

UNSOLVED = ("search", "samples", "none")
"""What coverage-first self-play does with the prompts no teacher's greedy answer solved: search them, sample the
teachers on them (:func:`agents.training.sampled.sample_unsolved`), or nothing (the teachers' answers alone)."""

SIGNAL_NAMES = ("sft", "dpo", "distill", "grpo", "rloo")
SIGNAL_LEARNING_RATES = {"dpo": 5e-5, "distill": 2e-4, "grpo": 1e-4, "rloo": 1e-4}
SIGNAL_EPOCHS = {"dpo": 1, "distill": 2, "grpo": 1, "rloo": 1}
REPLAY = ("auto", "on", "off")
DISTILL_TARGETS = ("visits", "improved")
BACKENDS = ("local", "ray")


@dataclass
class TrainConfig:
    """Settings of ``tokentree train``: the run, the models, self-play, training, the guards, evaluation."""

    # -- the run ------------------------------------------------------------------------------
    output_dir: str = "runs/tokentree"
    iterations: int = 7
    prompts_per_iteration: int = 600
    seed: int = 0
    # -- models and tasks ---------------------------------------------------------------------
    teachers: tuple[str, ...] = DEFAULT_TEACHERS
    primary: str = DEFAULT_PRIMARY
    """A model spec, or a checkpoint folder (``save_pretrained``; a LoRA checkpoint loads base + adapter)."""
    judge: str | None = DEFAULT_JUDGE
    task: str = "chain3"
    verifier: str | None = None
    """A task file's verifier, when it is not the file's default: "exact", "numeric" or "module:function"."""
    general_task: str = "reverse"
    # -- self-play search ---------------------------------------------------------------------
    agent: str | None = None
    """The self-play search spec (``make_agent``: ``mcts:4``, ``mcts-gumbel:4``, ``mcts-steps:4``, ``ab-mcts:8``);
    None: MCTS (Gumbel MuZero with ``gumbel``) with ``simulations`` per step (2 when unset)."""
    simulations: int | None = None
    """MCTS simulations per step; None: the spec's own (2 for the default MCTS). A value the spec contradicts (``--agent
    mcts:4 --simulations 8``) is refused."""
    dirichlet_fraction: float | None = None
    """Root Dirichlet noise ε of a PUCT search; None: self-play's 0.25 (AlphaZero's); 0 declares it off. Gumbel MuZero
    takes none (it explores by its Gumbel draws): setting it there is refused."""
    gumbel: bool = False
    """Search with Gumbel MuZero (sequential halving at the root) instead of PUCT (``--agent`` None only)."""
    teacher_mix: float | None = None
    """The search prior's mix of the teacher panel's probabilities into weightage × similarity (0: the design's
    prior alone); None: the spec's own (0.5)."""
    rollout: str | None = None
    """The rollout rule of an MCTS search's leaf values (``MCTSConfig.rollout``: "teacher", "prior", or "writer", the
    fast rollout policy); None: the spec's own ("teacher")."""
    max_new_tokens: int = 32
    repeats: int = 1
    """Episodes per prompt within an iteration, played one after another on the same tree, so the
    weightage rule's "previous episode on the same prompt" is always the one just played. Each repeat has its own
    seed ``(seed, iteration, prompt index, repeat)``."""
    planner_verifier: bool = True
    """Self-play switch: the task verifier scores the search's simulated leaves (train prompts only)."""
    coverage_first: bool = False
    """Coverage-first self-play: each iteration starts with the teachers' greedy answers to its prompts (batched,
    verified: data of their own), searches only the prompts none of them solved, stops each search at its first
    verified leaf, and keeps every distinct verified answer the trees produced (SFT on all of them)."""
    unsolved: str = "search"
    """Coverage-first only: what the prompts no teacher solved get: ``"search"``, ``"samples"`` (the teachers'
    temperature samples, round-robin, each prompt stopping at its first verified one: coverage-first sampling) or
    ``"none"`` (the teachers' verified greedy answers alone)."""
    unsolved_samples: int = 8
    """``unsolved="samples"``: samples per prompt at most."""
    sample_temperature: float = 1.0
    """``unsolved="samples"``: the samples' temperature."""
    student_in_panel: bool = False
    """From the second iteration the primary joins the teacher panel as a member, weighted by its posterior like any
    teacher (its trees start afresh then: the panel they were ranked by has changed)."""
    pool_walk: bool = False
    """Walk the pool (the train split minus the validation slice) in one order per seed, each iteration taking the
    first prompts not played before (:mod:`agents.training.pool`); off: a fresh draw per iteration."""
    round_cpu_seconds: float | None = None
    """Generation budget of each iteration in process CPU seconds: self-play stops mid-round once the iteration's
    episodes have spent it, and the round trains on what it has (the prompts left are not played). One process only
    (``workers=1``), so that no episode in flight is left uncharged. CPU time is noisy: where it stops varies a
    little from run to run (``round_weighted_tokens`` does not)."""
    round_weighted_tokens: float | tuple[float, ...] | None = None
    """The same in weighted forwarded tokens (every model's, in primary-token equivalents: :mod:`agents.compute`). A
    sequence gives each iteration its own, one per iteration (a control matched round by round to another arm's
    spend)."""
    panel: str = "mixture"
    """How the teachers' log-probs combine (:mod:`tokentree_env.scoring.panel`): "mixture", "mean" or "product"."""
    panel_alpha: float = DEFAULT_ALPHA
    """The mixture's fixed share α."""
    update_weightage: bool = True
    """Apply the weightage rule after each self-play episode (off: an ablation)."""
    k_wrong: int = 2
    """Wrong-direction children each model proposes (0: none, an ablation)."""
    workers: int = 1
    """Self-play processes: 1 = in the loop's own process, 0 = one per available core (at most 8;
    ``tokentree train``'s default). The episodes are the same either way (each prompt's depends only
    on its tree and seed). Workers are spawned processes: a script that runs the loop with them
    needs the usual ``if __name__ == "__main__":`` guard, as for PyTorch's DataLoader workers."""
    selfplay_batch: int = 8
    """Episodes each self-play process plays in lockstep: one batched forward per model per step serves all
    of them (1 = one at a time). The episodes are the same either way (tested)."""
    backend: str = "local"
    """Where self-play runs: "local" (this process or a process pool, by ``workers``) or "ray"."""
    ray_address: str | None = None
    """An existing Ray cluster to join (``ray://...`` or ``auto``); None starts one in this process, on loopback.
    With Ray, ``workers`` is the number of self-play actors (0: one per CPU of the cluster)."""
    ray_cpus_per_actor: float = 1.0
    ray_gpus_per_actor: float = 0.0
    # -- training -----------------------------------------------------------------------------
    signals: tuple[str, ...] = ("sft",)
    accumulate: bool = True
    """Train on every stored episode of the run so far (an expert-iteration buffer)."""
    epochs: int = 8
    learning_rate: float = 2e-3
    signal_learning_rates: dict[str, float] = field(default_factory=lambda: dict(SIGNAL_LEARNING_RATES))
    """Per-signal learning rate and epochs where they differ from ``learning_rate`` / ``epochs`` (SFT's):
    at SFT's 2e-3 x 8 epochs DPO, distillation and GRPO collapse both tasks (measured)."""
    signal_epochs: dict[str, int] = field(default_factory=lambda: dict(SIGNAL_EPOCHS))
    distill_target: str = "visits"
    """Distillation target: the visit distribution, or the improved policy ``softmax(panel logits + σ(completed Q))``
    ("improved", Gumbel MuZero's target, for any search)."""
    distill_min_visits: int = 1
    """Distil only nodes whose search gave their children at least this many visits."""
    signal_weights: dict[str, float] = field(default_factory=dict)
    """Per-signal loss weights (the loss of each signal's trainer times its weight; 1 where unset)."""
    batch_size: int = 16
    lora: bool = False
    report_to: str = "none"
    # -- guards against forgetting --------------------------------------------------------------
    ewc: float = 1000.0
    """EWC strength on importance normalised to mean 1; 0 = off."""
    si: float = 0.0
    replay: str = "auto"
    replay_fraction: float = 0.5
    replay_rows: int | None = None
    """General-task rows replayed a round; None: ``replay_fraction`` of ``prompts_per_iteration`` (set it where a
    round walks a pool until a budget stops it, so that replay does not grow with the pool)."""
    replay_tolerance: float = 0.05
    validation_size: int = 100
    """Train-split problems held back to decide auto-replay (never the held-out split)."""
    # -- evaluation ------------------------------------------------------------------------------
    eval_size: int = 200
    eval_between: int | None = None
    """Held-out problems measured between the start and the last iteration (a fixed slice, the first ones; None:
    ``eval_size`` every time)."""

    def round_budget(self, iteration: int) -> tuple[float | None, float | None]:
        """Iteration ``iteration``'s generation budget: (process CPU seconds, weighted tokens); None: no limit."""
        tokens = self.round_weighted_tokens
        return self.round_cpu_seconds, (tokens[iteration] if isinstance(tokens, tuple) else tokens)

    def __post_init__(self) -> None:
        self.signals = tuple(self.signals)
        self.teachers = tuple(self.teachers)
        bad = [s for s in self.signals if s not in SIGNAL_NAMES]
        if bad or not self.signals:
            raise ConfigError(f"TrainConfig.signals must be some of {SIGNAL_NAMES}, got {list(self.signals)}")
        for name, value, allowed in (("replay", self.replay, REPLAY), ("distill_target", self.distill_target,
                                     DISTILL_TARGETS), ("backend", self.backend, BACKENDS), ("panel", self.panel,
                                                                                             PANEL_RULES)):
            if value not in allowed:
                raise ConfigError(f"TrainConfig.{name} must be one of {allowed}, got {value!r}")
        for name in ("iterations", "prompts_per_iteration", "repeats", "selfplay_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.simulations is not None and self.simulations < 1:
            raise ConfigError(f"TrainConfig.simulations must be >= 1 (or None: the spec's own), got {self.simulations}")
        if self.agent is not None and self.gumbel and not self.agent.startswith("mcts-gumbel"):
            raise ConfigError(f"TrainConfig: gumbel=True picks the default search's kind, but agent={self.agent!r} was "
                              "set too; drop one of the two (or use --agent mcts-gumbel:S)")
        check_settings(self.search_spec, self.search_settings)
        if self.replay_rows is not None and self.replay_rows < 1:
            raise ConfigError(f"TrainConfig.replay_rows must be >= 1 (or None), got {self.replay_rows}")
        if self.workers < 0:
            raise ConfigError(f"TrainConfig.workers must be >= 0 (0 = one per core), got {self.workers}")
        if self.unsolved not in UNSOLVED:
            raise ConfigError(f"TrainConfig.unsolved must be one of {UNSOLVED}, got {self.unsolved!r}")
        if isinstance(self.round_weighted_tokens, (list, tuple)):
            self.round_weighted_tokens = tuple(float(t) for t in self.round_weighted_tokens)
            if len(self.round_weighted_tokens) != self.iterations or min(self.round_weighted_tokens) <= 0:
                raise ConfigError(f"TrainConfig.round_weighted_tokens, given per iteration, needs one positive budget "
                                  f"for each of the {self.iterations} iterations, got {list(self.round_weighted_tokens)}")
        round_budget = self.round_cpu_seconds is not None or self.round_weighted_tokens is not None
        if round_budget and (self.workers != 1 or self.backend != "local"):
            raise ConfigError(f"TrainConfig: a round budget stops self-play mid-round, which needs it in the loop's own "
                              f"process (workers=1, backend='local'), got workers={self.workers}, "
                              f"backend={self.backend!r}: episodes in flight elsewhere would go uncharged")
        if self.student_in_panel and self.backend == "ray":
            raise ConfigError("TrainConfig: student_in_panel changes the actors' panel between iterations; run it with "
                              "backend='local'")

    @property
    def search_spec(self) -> str:
        """The self-play search as an agent spec (:func:`agents.specs.self_play_spec`)."""
        return self_play_spec(self.agent, simulations=self.simulations, gumbel=self.gumbel)

    @property
    def search_settings(self) -> dict:
        """The search settings set beside the spec (None: the spec's own), for ``make_agent``."""
        return {"simulations": self.simulations, "dirichlet_fraction": self.dirichlet_fraction,
                "teacher_mix": self.teacher_mix, "gumbel": self.gumbel, "rollout": self.rollout,
                "stop_at_verified": True if self.coverage_first else None}
