"""The search benchmark's settings, rows, envs and problem sets, shared by the run, its report and the leaf-value
sources (:mod:`agents.bench.search`, :mod:`agents.bench.search_report`, :mod:`agents.bench.value_sources`)."""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("self-play", "evaluation")
BUDGETS = (1, 2, 3, 4, 6, 8, 12, 16)
BEST_OF = (2, 4, 8, 16, 32, 64)
LOCKSTEP = 8
"""MCTS episodes a worker plays together (batched forwards; the episodes do not depend on it)."""


@dataclass
class SearchBenchConfig:
    """What ``python -m benchmarks.search`` runs."""

    task: str = "chain5"
    n: int = 200
    """Measured problems per mode (train split in self-play mode, held-out in evaluation)."""
    pilot: int = 20
    """Train-split problems (not measured) that fix the declared budget and N."""
    value_head_problems: int = 100
    """Train-split problems whose self-play episodes fit the value head."""
    out: str = "results/search"
    seed: int = 0
    max_new_tokens: int = 48
    workers: int = 2
    budgets: tuple[int, ...] = BUDGETS
    best_of: tuple[int, ...] = BEST_OF
    models: dict = field(default_factory=dict)
    """``teachers`` / ``primary`` / ``judge`` (default: the task's zoo test-bed)."""

    def model_kwargs(self, judge: bool = True) -> dict:
        from tokentree_env.zoo.catalog import default_models

        models = default_models(self.task)
        defaults = {"teachers": list(models["teachers"]), "judge": models["judge"]}
        kwargs = defaults | self.models
        return kwargs | ({} if judge else {"judge": None})


@dataclass(frozen=True)
class Row:
    """One measured agent: its spec (``make_agent``), whether the judge is on, and (MCTS) its leaf source."""

    spec: str
    judge: bool
    leaf: str = ""

    @property
    def key(self) -> str:
        """The row's name in the episode log: two rows of one agent that differ in leaf source are two rows."""
        leaf = f"|leaf={self.leaf}" if self.leaf not in ("", "rollout") else ""
        return f"{self.spec}|judge={'on' if self.judge else 'off'}{leaf}"


def env_kwargs(cfg: SearchBenchConfig, mode: str, judge: bool) -> dict:
    """The env of a mode: evaluation hides the verifier (the judge weighs 1.0 in planners' returns); self-play
    shows it to planners on train prompts."""
    base = {"task": cfg.task, "max_new_tokens": cfg.max_new_tokens, **cfg.model_kwargs(judge)}
    if mode.endswith("evaluation"):  # "evaluation" and the pilot's "pilot-evaluation"
        return base | {"evaluation": True, "reward_weights": {"judge_weight": 1.0}}
    return base | {"split": "train", "planner_verifier": True, "update_weightage": False}


def problems(cfg: SearchBenchConfig, kind: str) -> list:
    """``pilot``, ``value-head`` and ``self-play`` problems come from the train split, disjoint; ``evaluation``
    from the held-out split."""
    from tokentree_env.tasks import load_task

    task = load_task(cfg.task)
    if kind == "evaluation":
        return list(task.problems("heldout"))[: cfg.n]
    train = list(task.problems("train"))
    spans = {"self-play": (0, cfg.n), "pilot": (cfg.n, cfg.n + cfg.pilot),
             "value-head": (cfg.n + cfg.pilot, cfg.n + cfg.pilot + cfg.value_head_problems)}
    lo, hi = spans[kind]
    return train[lo:hi]
