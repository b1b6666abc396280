"""The search benchmark's settings: its unit of compute, its budgets, its rows (agent families and their settings),
its modes and problem sets (shared by :mod:`tokentree_benchmarks.search`, its report and the leaf-value sources).

- **Unit.** ``R``: the mean weighted tokens per problem of ``best-reference`` with the judge on, in evaluation
  mode, on the pilot problems: every model's forwarded tokens (teachers, primary, judge) times its parameters over
  the primary's (:mod:`agents.compute`). A budget is ``b·R``; it holds for every row, mode and judge setting.
- **Rows.** A family is an agent whose compute grows with one setting (MCTS: simulations per step; best-of-N,
  majority-of-N and the teachers' samples: N; beam: its width); at each budget a family plays its largest
  setting whose pilot mean is within the budget. Fixed-cost rows (best reference, the 3-answer majority vote,
  ensemble greedy under each panel rule, judge-guided step-wise greedy) play once.
- **Modes.** ``self-play`` (train problems; the verifier scores the planners' leaves, the judge on as in
  training), ``evaluation`` with the judge on, and with it off (held-out problems; no verifier).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("self-play", "evaluation-judge-on", "evaluation-judge-off")
BUDGETS = (1.0, 2.0, 4.0, 8.0)
"""Multiples of ``R`` declared as budgets (beside them, the budgets at which MCTS plays 1 and 2 simulations)."""
LOCKSTEP = 8
"""Episodes a worker plays together (batched forwards; the episodes do not depend on it)."""


@dataclass(frozen=True)
class Family:
    """A row whose compute grows with one setting: its agent spec per mode (``{n}`` is the setting), and the settings
    tried. A family plays only in the modes it names."""

    name: str
    specs: dict[str, str]
    grid: tuple[int, ...]

    def at(self, setting: int, mode: str) -> str:
        return self.specs[mode].format(n=setting)


def _every_mode(spec: str) -> dict[str, str]:
    return dict.fromkeys(MODES, spec)


FAMILIES: tuple[Family, ...] = (
    Family("mcts", _every_mode("mcts:{n}"), (1, 2, 3, 4, 6, 8, 12, 16)),
    Family("mcts-gumbel", _every_mode("mcts-gumbel:{n}"), (2, 3, 4, 6, 8, 12, 16)),
    Family("best-of-n", {"self-play": "best-of-verifier:{n}", "evaluation-judge-on": "best-of:{n}",
                         "evaluation-judge-off": "best-of-return:{n}"}, (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)),
    Family("majority-of-n", {m: "majority-of:{n}" for m in MODES[1:]}, (2, 3, 4, 6, 8, 12, 16, 24, 32)),
    Family("teacher-samples", {"self-play": "teacher-samples-verifier:{n}",
                               "evaluation-judge-on": "teacher-samples-judge:{n}"},
           (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)),
    Family("teacher-samples-majority", {m: "teacher-samples-majority:{n}" for m in MODES[1:]},
           (3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)),
    Family("beam", _every_mode("beam:{n}"), (1, 2, 3, 4, 6, 8)),
    Family("mcts-steps", _every_mode("mcts-steps:{n}"), (1, 2, 3, 4, 6, 8)),
    Family("ab-mcts", _every_mode("ab-mcts:{n}"), (2, 3, 4, 6, 8, 12, 16, 24, 32)),
)
"""Every family of the curves. Sampled answers are ranked by the verifier in self-play (what the data a learner
keeps is), by the judge in evaluation with it on, else by the planner return or a majority of final answers."""
FIXED = ("best-reference", "majority-vote", "ensemble-greedy", "stepwise-greedy", "ensemble-greedy-mean",
         "ensemble-greedy-product")
"""Rows of fixed cost, played once per mode (ensemble greedy under each panel rule; judge-guided step-wise greedy,
the verifier picking in self-play)."""
FIXED_SPECS = {"stepwise-greedy": {"self-play": "stepwise-greedy-verifier"}}
"""A fixed row's agent spec where it differs by mode (else the row's name)."""


def fixed_spec(name: str, mode: str) -> str:
    """The agent spec a fixed-cost row plays in ``mode``."""
    return FIXED_SPECS.get(name, {}).get(mode, name)
SAMPLERS = ("best-of-n", "majority-of-n", "teacher-samples", "teacher-samples-majority")
"""The sampling baselines (self-play's question: does search beat sampling at equal compute?)."""


@dataclass(frozen=True)
class Row:
    """One measured agent in one mode at one budget: its spec, and the family and budget it stands for."""

    spec: str
    mode: str
    family: str = ""
    budget: float | None = None

    @property
    def key(self) -> str:
        """The row's name in the episode log: one agent spec, in one mode (budgets share episodes of one spec)."""
        return f"{self.mode}|{self.spec}"


@dataclass
class SearchBenchConfig:
    """What ``python -m benchmarks.search`` runs."""

    task: str = "chain5"
    n: int = 200
    """Measured problems per mode (train split in self-play, held-out in evaluation)."""
    pilot: int = 20
    """Train problems (never measured) on which the budgets and every setting are declared."""
    value_head_problems: int = 100
    out: str = "results/search"
    seed: int = 0
    max_new_tokens: int = 48
    workers: int = 2
    budgets: tuple[float, ...] = BUDGETS
    families: tuple[str, ...] = tuple(f.name for f in FAMILIES)
    full: bool = False
    """Every row at every budget; otherwise the headline rows at the 2x and 4x budgets."""
    leaf_sources: bool = True
    """Measure the leaf-value sources' AUCs (and fit the value head)."""
    largest_setting: int | None = None
    """Try no family setting above this in the pilot (tiny runs for the tests); None: each family's whole grid."""
    models: dict = field(default_factory=dict)
    """``teachers`` / ``primary`` / ``judge`` (default: the task's zoo test-bed)."""

    def model_kwargs(self, judge: bool = True) -> dict:
        from tokentree_env.zoo.catalog import default_models

        models = default_models(self.task)
        kwargs = {"teachers": list(models["teachers"]), "judge": models["judge"], "primary": models["primary"]}
        kwargs |= self.models
        return kwargs | ({} if judge else {"judge": None})


def family(name: str) -> Family:
    return next(f for f in FAMILIES if f.name == name)


def env_kwargs(cfg: SearchBenchConfig, mode: str) -> dict:
    """The env of a mode: evaluation hides the verifier (the judge weighs 1.0 in planners' returns, where it is
    on); self-play shows it to planners on train prompts, weightage frozen (the rows must not teach each other)."""
    judge = mode != "evaluation-judge-off"
    base = {"task": cfg.task, "max_new_tokens": cfg.max_new_tokens, **cfg.model_kwargs(judge)}
    if mode.startswith("evaluation"):
        return base | {"evaluation": True, "reward_weights": {"judge_weight": 1.0}}
    return base | {"split": "train", "planner_verifier": True, "update_weightage": False}


def problems(cfg: SearchBenchConfig, kind: str) -> list:
    """``pilot``, ``value-head`` and ``self-play`` problems come from the train split, disjoint; the evaluation modes'
    from the held-out split."""
    from tokentree_env.tasks import load_task

    task = load_task(cfg.task)
    if kind.startswith("evaluation"):
        return list(task.problems("heldout"))[: cfg.n]
    train = list(task.problems("train"))
    spans = {"self-play": (0, cfg.n), "pilot": (cfg.n, cfg.n + cfg.pilot),
             "value-head": (cfg.n + cfg.pilot, cfg.n + cfg.pilot + cfg.value_head_problems)}
    lo, hi = spans[kind]
    return train[lo:hi]
