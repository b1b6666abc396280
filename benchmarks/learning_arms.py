"""``python -m benchmarks.learning --task chain5``: does search teach the primary better than the teachers' own
answers do, at equal data-generation compute? Resumable: each finished arm is saved under ``runs/`` and a rerun
skips it; an unfinished arm resumes with the loop's own ``--resume``.

**Declared** (``declared.json``, before any arm runs): the search arm's spec, the best search of the search
benchmark's pilot in self-play (train problems); the per-arm budget: iterations, prompts, and the generation CPU
seconds per iteration, from a self-play pilot on train prompts; the trainer; the seeds; the pass@k protocol.

**Headline** (3 seeds). Every arm gets the same generation budget per iteration, and the same trainer, epochs,
learning rate and schedule (``TrainingRun.train_round``); the primary's own greedy held-out accuracy is measured
after every iteration.

- **search**: self-play with the declared search (each prompt played ``repeats`` times in a row), the verifier
  scoring the search's leaves (``planner_verifier``), SFT on the verified paths;
- **control (i), sft-greedy**: SFT on the teachers' verified greedy answers, on as many fresh train prompts as
  the budget allows;
- **control (ii), rft**: rejection-sampling fine-tuning: rounds of one temperature-1 sample per prompt from each
  teacher, on the search iteration's own prompts, until the budget is spent (N = the rounds completed);
  verified, pooled over the teachers, deduplicated; SFT on the distinct right answers.

Each control runs twice: with the declared generation **CPU seconds** (measured process CPU time, not wall time x
workers), and with the search run's **weighted forwarded tokens** of that iteration: every model it ran (teachers,
primary, judge), weighted by parameter count in primary-token equivalents (:mod:`agents.compute`, the one
definition). Credit: per
iteration, the problems only the search solved (no teacher's greedy answer, nor any RFT sample of that iteration,
was right), the distinct right solutions per problem in each arm's data, and every arm's accuracy on the held-out
problems no teacher's greedy answer solves. At the end, each arm's pass@k (k up to 64; the unbiased estimator over
64 temperature-1 samples). :mod:`tokentree_benchmarks.learning` runs it all, with the signals, the ablations and the
report.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import quiet_console
from .config import quiet_worker as _quiet
from .learning_controls import control_arm, distinct_right
from .pass_at import pass_at_k

ARMS = ("search", "sft-greedy", "rft")
LEARNING_TRAINER = {"epochs": 8, "learning_rate": 2e-3, "batch_size": 16, "ewc": 1000.0, "replay": "on",
                    "accumulate": True}
"""The learning benchmark's trainer: every arm's, and the learnability check's (:mod:`tokentree_benchmarks.learnability`).
AdamW (TRL's default) on SFT rows (every verified answer so far), the guards on: EWC, and replay of general data in
every round (with auto-replay, which acts once forgetting is seen, the first round took ``reverse`` from 1.000 to
0.000 on a 0.14M primary)."""


@dataclass
class LearningConfig:
    """What the learning benchmark runs."""

    task: str = "chain5"
    seeds: int = 3
    out: str = "results/learning-chain5"
    loop: dict = field(default_factory=lambda: {"iterations": 3, "prompts_per_iteration": 128, "repeats": 2})
    """``TrainConfig`` settings of every arm (iterations, prompts, repeats, ...). 128 prompts: with 24 the search
    gave ~40 verified paths a round, where the learnability check needed thousands of answers to learn the task."""
    models: dict = field(default_factory=dict)
    """``teachers`` / ``primary`` / ``judge`` (default: the task's zoo test-bed)."""
    workers: int = 2
    """Self-play processes of the search arm (its CPU seconds are measured in each of them)."""
    parts: tuple[str, ...] = ("headline", "signals", "ablations")
    signal_loop: dict = field(default_factory=lambda: {"iterations": 2, "prompts_per_iteration": 24, "repeats": 2})
    search: str | None = None
    """The search arm's spec; None: the best search of the search benchmark's pilot (``search_declared``)."""
    search_declared: str = "results/search-chain5/declared.json"
    pilot_prompts: int = 16
    """Train prompts of the CPU pilot that declares the generation budget (after one untimed warm-up episode)."""
    pass_at: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    pass_samples: int = 64
    charges: str = "weighted tokens of every model; CPU measured per iteration"
    """The compute convention of the controls' budgets (in the declared fingerprint: a folder declared under
    another convention, such as the teacher-only tokens before 2026-12-07, is refused on resume)."""

    def train_kwargs(self) -> dict:
        from tokentree_env.zoo.catalog import default_models

        defaults = default_models(self.task) | ({"max_new_tokens": 48} if self.task == "chain5" else {})
        return {"task": self.task, **LEARNING_TRAINER, **defaults, **self.models}


def _saved(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


# -- the declaration -------------------------------------------------------------------------------------
SEARCH_FAMILIES = ("mcts", "mcts-gumbel", "mcts-steps", "ab-mcts")


def choose_search(cfg: LearningConfig) -> dict:
    """The best search of the search benchmark's self-play pilot (train problems): among the search families, the
    highest pilot accuracy at the 2R budget (the cheaper on a tie); ``cfg.search`` when given."""
    if cfg.search is not None:
        return {"spec": cfg.search, "chosen_by": "given"}
    path = Path(cfg.search_declared)
    if not path.exists():
        from tokentree_env.errors import ConfigError

        raise ConfigError(f"the learning benchmark's search arm is the best search of the search benchmark's pilot, "
                          f"but {path} does not exist: run `python -m benchmarks.search` first, or pass --search SPEC")
    declared = json.loads(path.read_text())
    rows = []
    for fam in SEARCH_FAMILIES:
        setting = declared["settings"].get(f"self-play|{fam}", {}).get("2.0")
        if setting is not None:
            cost, accuracy = declared["pilot"][f"self-play|{fam}"][str(setting)]
            rows.append((accuracy, -cost, fam, setting))
    accuracy, cost, fam, setting = max(rows)
    from .search_config import family

    return {"spec": family(fam).at(setting, "self-play"), "chosen_by": f"{path}: the best pilot self-play accuracy at "
            f"2R among {SEARCH_FAMILIES}", "pilot_accuracy": accuracy, "pilot_tokens": -cost}


def declare(cfg: LearningConfig) -> dict:
    """Fix the search arm, the per-arm budget and the protocol before any arm runs (kept on resume)."""
    from .declared import declare_once

    kwargs = cfg.train_kwargs()
    models = [*kwargs.get("teachers", ()), kwargs.get("primary"), kwargs.get("judge")]
    return declare_once(Path(cfg.out) / "declared.json", asdict(cfg), models, lambda: _declare(cfg))


def _declare(cfg: LearningConfig) -> dict:
    search = choose_search(cfg)
    pilot = _cpu_pilot(cfg, search["spec"])
    per_iteration = pilot * cfg.loop["prompts_per_iteration"] * cfg.loop.get("repeats", 1)
    declared = {"declared_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "search": search,
                "budget": {**cfg.loop, "cpu_seconds_per_iteration": per_iteration,
                           "pilot_cpu_seconds_per_episode": pilot, "pilot_prompts": cfg.pilot_prompts},
                "trainer": dict(LEARNING_TRAINER), "seeds": cfg.seeds,
                "controls": {"sft-greedy": "SFT on the teachers' verified greedy answers",
                             "rft": "RFT on verified temperature-1 samples pooled from all teachers, deduplicated",
                             "budgets": [("cpu: the search run's measured generation CPU seconds of that iteration "
                                          "(cpu_seconds_per_iteration above is the pilot's estimate, not the budget)"),
                                         ("tokens: the search run's weighted forwarded tokens of that iteration "
                                          "(every model; agents.compute)")]},
                "pass_at_k": {"k": list(cfg.pass_at), "samples": cfg.pass_samples, "temperature": 1.0},
                "config": asdict(cfg)}
    return declared


def _cpu_pilot(cfg: LearningConfig, spec: str) -> float:
    """CPU seconds per self-play episode of ``spec`` on ``pilot_prompts`` train prompts (never an arm's prompts: the
    end of the train split), in this process with one torch thread."""
    _quiet()
    from agents.training import TrainConfig
    from agents.training.selfplay import SelfPlayJob, play_episodes, with_cpu_seconds
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import load_task

    config = TrainConfig(**(cfg.train_kwargs() | cfg.loop))
    env = TokenTreeEnv(teachers=list(config.teachers), judge=config.judge, task=config.task, split="train", max_new_tokens=config.max_new_tokens, planner_verifier=True, primary=config.primary)
    train = list(load_task(cfg.task).problems("train"))
    items = [(i, p.prompt, [0]) for i, p in enumerate(train[-cfg.pilot_prompts - 601:-600])]
    settings = {k: v for k, v in config.search_settings.items() if v is not None and k != "gumbel"}
    job = SelfPlayJob(agent=spec, settings=tuple(sorted(settings.items())), batch=config.selfplay_batch)
    list(play_episodes(env, items[:1], job))  # warm-up, untimed: the models' first forward passes load and compile
    items = items[1:]
    started = time.process_time()
    records = list(with_cpu_seconds(play_episodes(env, items, job)))
    env.close()
    return (time.process_time() - started) / max(1, len(records))


# -- the search arm -----------------------------------------------------------------------------------
def arm_config(cfg: LearningConfig, folder: Path, seed: int, spec: str | None = None, overrides: dict | None = None):
    """The ``TrainConfig`` of an arm that trains in ``folder``: the benchmark's trainer and loop, self-play by ``spec``
    (every arm's, and the learnability checks' that must train as the arms do)."""
    from agents.training import TrainConfig

    return TrainConfig(output_dir=str(folder), seed=seed, workers=cfg.workers, planner_verifier=True, agent=spec,
                       **(cfg.train_kwargs() | cfg.loop | (overrides or {})))


def search_arm(cfg: LearningConfig, seed: int, overrides: dict | None = None, name: str | None = None,
               spec: str | None = None) -> dict:
    """One training run with self-play by ``spec`` (default: MCTS as the loop configures it), resumed if it was
    stopped; its state and costs."""
    _quiet()
    from agents.training import TrainingRun

    name = name or f"search-seed{seed}"
    done = Path(cfg.out) / "runs" / f"{name}.json"
    if (saved := _saved(done)) is not None:
        return saved
    folder = Path(cfg.out) / "runs" / name
    config = arm_config(cfg, folder, seed, spec, overrides)
    started = time.perf_counter()
    resume = (folder / "state.json").exists()
    run = TrainingRun.from_output_dir(folder, console=quiet_console()) if resume else TrainingRun(config, console=quiet_console())
    run.run()
    records = list(run.store)
    result = {"arm": "search", "name": name, "seed": seed, "wall_seconds": time.perf_counter() - started,
              "config": asdict(config), "baseline": run.state["baseline"], "history": run.state["history"],
              "teachers": run.state.get("teachers"),
              "cpu_seconds": [h["self_play_cpu_seconds"] for h in run.state["history"]],
              **_iteration_tokens(run, records),
              "reference_parameters": run.ledger.reference, "parameters": run.ledger.parameters,
              "solved": [[r["prompt"] for r in records if r["iteration"] == i and r["hard_reward"] >= 0.5]
                         for i in range(len(run.state["history"]))],
              "distinct_right": [distinct_right([r for r in records if r["iteration"] <= i])
                                 for i in range(len(run.state["history"]))],
              "prompts": [sorted({r["prompt"] for r in records if r["iteration"] == i})
                          for i in range(len(run.state["history"]))],
              "final_primary": str(folder / "checkpoints" / f"iter-{config.iterations - 1}" / "primary")}
    from tokentree_env.tree.tree import save_json_atomic

    save_json_atomic(result, done)  # whole or absent, never half written
    return result


def _iteration_tokens(run, records: list[dict]) -> dict:
    """The search run's generation tokens per iteration, every model (teachers, primary, judge), raw and weighted
    as the run's own ledger weighs them (:class:`agents.compute.Ledger`)."""
    from agents.compute import Ledger

    ledgers = []
    for i, h in enumerate(run.state["history"]):
        ledger = Ledger(parameters=run.ledger.parameters, reference=run.ledger.reference)
        ledger.add_episodes(r for r in records if r["iteration"] == i)
        ledger.add_tokens((h.get("round_unstored") or {}).get("forwarded_by_model") or {})  # in flight at a stop
        ledgers.append(ledger)
    return {"forwarded_by_model": [x.tokens for x in ledgers], "weighted_tokens": [x.weighted for x in ledgers]}


# -- the run ---------------------------------------------------------------------------------------------
CONTROLS = tuple(f"{arm}-{by}" for arm in ("sft-greedy", "rft") for by in ("cpu", "tokens"))


def headline(cfg: LearningConfig, progress=print) -> list[dict]:
    """Declare; every seed's search run (alone on the machine: its workers take the cores); then the controls at
    CPU parity one at a time (two processes on two cores slow each other's CPU seconds), those at token parity two
    at a time (tokens do not depend on what runs beside); then every arm's pass@k."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    declared = declare(cfg)
    spec, cpu = declared["search"]["spec"], declared["budget"]["cpu_seconds_per_iteration"]
    progress(f"declared: search {spec}; the pilot's estimate {cpu:.0f} CPU seconds per iteration")
    results = []
    for seed in range(cfg.seeds):
        search = search_arm(cfg, seed, spec=spec)
        progress(f"search seed {seed}: {search['baseline']['task_accuracy']:.3f} -> "
                 f"{search['history'][-1]['task_accuracy']:.3f} in {search['wall_seconds']:.0f} s")
        results.append(search)
    searches = list(results)
    for by, workers in (("cpu", 1), ("tokens", 2)):  # CPU parity alone on the machine; token parity two at a time
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(control_arm, cfg, s["seed"], arm, s, by) for s in searches
                       for arm in ("sft-greedy", "rft")]
            for future in futures:
                control = future.result()
                progress(f"{control['name']}: {control['history'][-1]['task_accuracy']:.3f}")
                results.append(control)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        todo = [r for r in results if "pass_at_k" not in r]
        for r, k in zip(todo, pool.map(_pass_job, [(cfg, r["final_primary"], r["seed"]) for r in todo]), strict=True):
            r["pass_at_k"] = k
            Path(cfg.out, "runs", f"{r['name']}.json").write_text(json.dumps(r))
    return results


def _pass_job(args) -> dict:
    cfg, primary, seed = args
    return pass_at_k(primary, cfg.task, 200, cfg.pass_samples, cfg.pass_at, seed=seed)
