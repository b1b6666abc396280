"""``python -m benchmarks.search --task chain5``: does search over the teachers' tokens, under the mixture panel, beat
sampling from the same teachers at equal compute? Asked as accuracy-vs-compute curves, the comparison fixed before
any measured episode. Resumable: every episode is appended to ``episodes.jsonl`` as it finishes.

1. **Declare** (``declared.json``, written by a pilot on train problems before any measured episode, kept on
   resume): the unit ``R`` (best reference's forwarded tokens per problem, judge on, evaluation mode), the budgets
   (``b·R`` for ``b`` in 1, 2, 4, 8, and the budgets at which MCTS plays 1 and 2 simulations per step), each
   family's setting at each budget in each mode (the largest whose pilot mean is within the budget), the headline
   MCTS row and evaluation budget, and every other setting (α, π, ``teacher_mix``, ``c_puct``, temperatures, leaf
   sources). :mod:`tokentree_benchmarks.search_config` holds the families and modes.
2. **Measure** the rows on 200 problems per mode: the headline run plays the headline rows at the 2x and 4x
   budgets (and at the self-play target's budgets); ``--full`` plays every row at every budget.
3. **Report** (:mod:`tokentree_benchmarks.search_report`): per budget, paired tests of MCTS against each baseline, the
   problems only MCTS solved, style shares and writer switches; the curves; the leaf sources' AUCs.

Every row plays in lockstep batches (:func:`agents.play.play_many`), so the runs fit on two cores.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

from .search_config import (
    FAMILIES,
    FIXED,
    LOCKSTEP,
    MODES,
    SAMPLERS,
    SearchBenchConfig,
    env_kwargs,
    family,
    fixed_spec,
    problems,
)

PANEL_RULE = {"ensemble-greedy": "mixture", "ensemble-greedy-mean": "mean", "ensemble-greedy-product": "product"}
_MODELS: dict = {}  # this process's loaded models, shared by the envs of its jobs (each job has its own trees)


def _loaded(cfg: SearchBenchConfig) -> dict:
    """The test-bed's models, loaded once per process, their caches cleared for each job: teachers, primary, judge
    (a job's env gets fresh trees over them; every episode is charged its own work)."""
    from tokentree_env.judge import Judge
    from tokentree_env.teachers import HFTeacher

    key = json.dumps(cfg.model_kwargs(True), sort_keys=True)
    if key not in _MODELS:
        specs = cfg.model_kwargs(True)
        _MODELS[key] = {"teachers": [HFTeacher(t) for t in specs["teachers"]], "primary": HFTeacher(specs["primary"]),
                        "judge": Judge(specs["judge"]) if specs["judge"] else None}
    models = _MODELS[key]
    for model in (*models["teachers"], models["primary"], models["judge"]):
        if model is not None:
            model.clear_caches()  # every job starts cold, as on freshly loaded models: no row rides on another's cache
    return models


# -- one job: a spec on a chunk of problems, in a worker process ----------------------------------------
def play_job(cfg: SearchBenchConfig, mode: str, spec: str, chunk: list[tuple[int, str]], log_mode: str) -> list[dict]:
    """Play ``spec`` on ``chunk`` (index, prompt) in ``mode``; one result per problem, logged under ``log_mode``."""
    import torch

    from agents.quiet import quiet_libraries

    torch.set_num_threads(1)
    quiet_libraries()
    started = time.perf_counter()
    results = (_teacher_samples(cfg, mode, spec, chunk) if spec.startswith("teacher-samples")
               else _in_env(cfg, mode, spec, chunk))
    seconds = time.perf_counter() - started
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return [r | {"mode": log_mode, "spec": spec, "chunk_seconds": seconds, "chunk": len(chunk), "logged_at": stamp}
            for r in results]


def _in_env(cfg: SearchBenchConfig, mode: str, spec: str, chunk: list[tuple[int, str]]) -> list[dict]:
    from agents.evaluation import make_agent
    from agents.play import play_many
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.scoring.panel import writer_switches, writers

    kwargs = env_kwargs(cfg, mode) | ({"panel": PANEL_RULE[spec]} if spec in PANEL_RULE else {})
    models = _loaded(cfg)
    kwargs |= {"teachers": models["teachers"], "primary": models["primary"],
               "judge": models["judge"] if kwargs.get("judge") else None}
    env = TokenTreeEnv(**kwargs)
    env.prepare([p for _, p in chunk])  # batched reference answers, charged to each prompt's episode
    agents = [make_agent(spec.replace("-mean", "").replace("-product", "") if spec in PANEL_RULE else spec,
                         seed=cfg.seed) for _ in range(LOCKSTEP)]
    fmt, out = env.task.answer_format, []
    played = list(play_many(env, agents, chunk, seed=cfg.seed))
    masses = [m for agent in agents for m in getattr(agent, "slate_mass", [])]  # step options sampled by a teacher
    for r in played:
        path = [step.teacher_logprobs if hasattr(step, "teacher_logprobs") else step["teacher_logprobs"]
                for step in r["records"]]
        out.append({"index": r["prompt_index"], "prompt": r["prompt"], "completion": r["completion"],
                    "correct": r["hard_reward"], "forwarded_tokens": r["forwarded_tokens"],
                    "forwarded_by_model": r.get("forwarded_by_model") or {},
                    "weighted_tokens": _weighted(r.get("forwarded_by_model") or {}, models),
                    "generated_tokens": r["generated_tokens"], "style": fmt.style_of(r["prompt"], r["completion"]),
                    "writer_switches": writer_switches(writers(path)), "tokens": r["tokens"],
                    "slate_mass": sum(masses) / len(masses) if masses else None})
    env.expander.close()
    env.observer.clear()  # the models stay loaded for this process's next job
    return sorted(out, key=lambda r: r["index"])


def _teacher_samples(cfg: SearchBenchConfig, mode: str, spec: str, chunk: list[tuple[int, str]]) -> list[dict]:
    from tokentree_env.tasks import load_task

    from . import teacher_samples

    models, task = _loaded(cfg), load_task(cfg.task)
    name, _, n = spec.partition(":")
    how = name.removeprefix("teacher-samples-")
    judge = models["judge"] if how == "judge" else None
    by_prompt = {p.prompt: p for p in problems(cfg, "self-play" if mode == "self-play" else "evaluation")}
    by_prompt |= {p.prompt: p for p in problems(cfg, "pilot")}
    played = teacher_samples.play(models["teachers"], judge, task,
                                  [by_prompt[p] for _, p in chunk], int(n), how, max_new_tokens=cfg.max_new_tokens,
                                  seed=cfg.seed * 100_003 + chunk[0][0])
    fmt = task.answer_format
    return [r | {"index": i, "style": fmt.style_of(r["prompt"], r["completion"]), "writer_switches": None,
                 "weighted_tokens": _weighted(r["forwarded_by_model"], models)}
            for (i, _), r in zip(chunk, played, strict=True)]


def _weighted(by_model: dict[str, int], models: dict) -> float:
    """An episode's forwarded tokens weighted by each model's parameters, in primary-token equivalents
    (:func:`agents.compute.weighted_tokens`): the unit of every budget here."""
    from agents.compute import weighted_tokens

    parameters = {m.name: m.parameters for m in models["teachers"]} | {models["primary"].name: models["primary"].parameters}
    if models.get("judge") is not None:
        parameters[f"judge:{models['judge'].name}"] = models["judge"].parameters
    return weighted_tokens(by_model, parameters, models["primary"].parameters)


class EpisodeLog:
    """The benchmark's durable store: one JSON line per finished episode; resuming skips what it holds."""

    def __init__(self, path: Path) -> None:
        from agents.store import EpisodeStore

        self.store = EpisodeStore(path)
        self.done = {(r["mode"], r["spec"], r["index"]): r for r in self.store}

    def todo(self, mode: str, spec: str, items: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return [(i, p) for i, p in items if (mode, spec, i) not in self.done]

    def add(self, results: list[dict]) -> None:
        for r in results:
            self.store.append(r)
            self.done[(r["mode"], r["spec"], r["index"])] = r

    def results(self, mode: str, spec: str) -> list[dict]:
        return sorted((r for (m, s, _), r in self.done.items() if m == mode and s == spec), key=lambda r: r["index"])

    def worker_seconds(self) -> float:
        """Wall seconds the workers spent on the measured episodes (the pilot's left out), over every run of the
        command that wrote this log: each chunk once."""
        chunks = {(r["mode"], r["spec"], r.get("chunk"), r.get("logged_at")): r.get("chunk_seconds") or 0.0
                  for r in self.done.values() if not r["mode"].startswith("pilot")}
        return float(sum(chunks.values()))


def run_specs(cfg: SearchBenchConfig, log: EpisodeLog, mode: str, specs: list[str], items: list[tuple[int, str]],
              *, log_mode: str | None = None, progress=None, chunk: int = 25) -> None:
    """Play every spec on every item not yet stored, ``cfg.workers`` processes at a time."""
    log_mode = log_mode or mode
    jobs = [(spec, todo[i:i + chunk]) for spec in dict.fromkeys(specs) for todo in [log.todo(log_mode, spec, items)]
            for i in range(0, len(todo), chunk)]
    if jobs:
        _run_jobs(cfg, [(play_job, (cfg, mode, spec, part, log_mode)) for spec, part in jobs], log.add,
                  lambda done, results: progress and progress(f"{log_mode}: {results[0]['spec']} ({done}/{len(jobs)} chunks)"))


def _run_jobs(cfg: SearchBenchConfig, calls: list, store, report) -> None:
    """Run ``(function, args)`` calls in ``cfg.workers`` spawned processes (in this one if ``workers <= 1``), storing
    each result in call order as it comes; Ctrl-C / SIGTERM stops the workers at once (stored results stay)."""
    if cfg.workers <= 1:  # in this process (one torch thread, as a worker)
        for done, (fn, args) in enumerate(calls, start=1):
            store(result := fn(*args))
            report(done, result)
        return
    from agents.training.selfplay import stop_workers

    pool = ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn"))
    try:
        futures = [pool.submit(fn, *args) for fn, args in calls]
        for done, future in enumerate(futures, start=1):
            store(result := future.result())
            report(done, result)
    except BaseException:  # the chunks in flight are played on resume
        stop_workers(pool)
        raise
    pool.shutdown()


def walk_grid(cfg: SearchBenchConfig, mode: str, name: str, pilot: list[tuple[int, str]], ceiling: float,
              done: dict[str, list[dict]]) -> list[dict]:
    """In a worker: play a family's settings on the pilot problems in increasing order (cost grows with the setting),
    stopping after the first whose mean forwarded tokens pass ``ceiling``; settings in ``done`` are read, not played."""
    fam, out = family(name), []
    for setting in (g for g in fam.grid if cfg.largest_setting is None or g <= cfg.largest_setting):
        spec = fam.at(setting, mode)
        rs = done[spec] if spec in done else play_job(cfg, mode, spec, pilot, f"pilot|{mode}")
        out += [] if spec in done else rs
        if sum(r["weighted_tokens"] for r in rs) / len(rs) > ceiling:
            break
    return out


def walk_grids(cfg: SearchBenchConfig, log: EpisodeLog, grids: list, pilot: list[tuple[int, str]], *,
               ceiling: float, progress=None) -> None:
    """Every (mode, family) grid of the pilot, one grid per job, ``cfg.workers`` at a time; each grid's episodes are
    stored as its job ends (a resumed pilot replays only the settings it lacks)."""
    calls = [(walk_grid, (cfg, mode, fam.name, pilot, ceiling,
                          {fam.at(g, mode): rs for g in fam.grid
                           if len(rs := log.results(f"pilot|{mode}", fam.at(g, mode))) == len(pilot)}))
             for mode, fam in grids]
    _run_jobs(cfg, calls, log.add, lambda done, _: progress and progress(f"pilot: {done}/{len(calls)} grids"))


# -- the declared configuration --------------------------------------------------------------------------
def _cost_and_accuracy(rs: list[dict]) -> tuple[float, float]:
    """Mean weighted tokens (primary-token equivalents) and accuracy of a row's pilot episodes."""
    return sum(r["weighted_tokens"] for r in rs) / len(rs), sum(r["correct"] for r in rs) / len(rs)


def budget_of(tokens: float, unit: float) -> float:
    """``tokens`` as a multiple of ``unit``, rounded *up* to 3 decimals, so the row that defines a budget fits it
    (rounding to nearest once declared MCTS's 1-simulation budget 0.1 token below MCTS's own cost)."""
    return math.ceil(tokens / unit * 1000 - 1e-9) / 1000


def declare(cfg: SearchBenchConfig, log: EpisodeLog, out: Path, progress=None) -> dict:
    """Fix the unit, the budgets and every row's settings on the pilot problems, before any measured episode (kept
    on resume, which must run the declared configuration and models: :func:`.declared.declare_once`)."""
    from .declared import declare_once

    models = cfg.model_kwargs(True)
    return declare_once(out / "declared.json", asdict(cfg), [*models["teachers"], models["primary"], models["judge"]],
                        lambda: _declare(cfg, log, progress))


def _declare(cfg: SearchBenchConfig, log: EpisodeLog, progress=None) -> dict:
    from agents.search import MCTSConfig
    from tokentree_env.scoring.panel import DEFAULT_ALPHA

    pilot = [(i, p.prompt) for i, p in enumerate(problems(cfg, "pilot"))]

    def pilot_mean(mode: str, spec: str) -> tuple[float, float]:
        run_specs(cfg, log, mode, [spec], pilot, log_mode=f"pilot|{mode}", progress=progress)
        return _cost_and_accuracy(log.results(f"pilot|{mode}", spec))

    unit = pilot_mean("evaluation-judge-on", "best-reference")[0]
    mcts_budgets = [budget_of(pilot_mean("evaluation-judge-on", f"mcts:{s}")[0], unit) for s in (1, 2)]
    budgets = sorted({*cfg.budgets, *mcts_budgets})
    grids = [(mode, fam) for mode in MODES for fam in FAMILIES if fam.name in cfg.families and mode in fam.specs]
    walk_grids(cfg, log, grids, pilot, ceiling=1.1 * max(budgets) * unit, progress=progress)
    settings, pilot_costs = {}, {}
    for mode, fam in grids:
        costs = {}
        for setting in fam.grid:  # what the walk played: every setting up to the first past the ceiling
            if rs := log.results(f"pilot|{mode}", fam.at(setting, mode)):
                costs[setting] = _cost_and_accuracy(rs)
        pilot_costs[f"{mode}|{fam.name}"] = {str(k): v for k, v in costs.items()}
        settings[f"{mode}|{fam.name}"] = {str(b): max((s for s, (c, _) in costs.items() if c <= b * unit),
                                                      default=None) for b in budgets}
    sampling_accuracy = {str(b): max((pilot_costs[f"self-play|{f}"][str(s)][1] for f in SAMPLERS
                                      if f"self-play|{f}" in settings
                                      and (s := settings[f"self-play|{f}"][str(b)]) is not None), default=None)
                         for b in budgets}
    below = [b for b in budgets if sampling_accuracy[str(b)] is not None and sampling_accuracy[str(b)] < 0.90]
    declared = {
        "declared_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "pilot_problems": len(pilot),
        "unit": {"name": "R", "weighted_tokens_per_problem": unit,
                 "definition": "best-reference, judge on, evaluation mode, mean over the pilot problems; weighted "
                               "tokens: every model's forwarded tokens times its parameters over the primary's"},
        "budgets": budgets, "mcts_budgets": {"1 simulation": mcts_budgets[0], "2 simulations": mcts_budgets[1]},
        "settings": settings, "pilot": pilot_costs, "pilot_best_sampling_self_play": sampling_accuracy,
        "self_play_target_budgets": below[:2],
        "headline": {"mcts": "mcts", "leaf": "rollout", "judge": "on", "evaluation_budget": 4.0,
                     "rule": "fixed before the pilot: PUCT (the product's default search) with rollout leaves and "
                             "the judge on; the evaluation budget 4R, the larger of the headline run's budgets"},
        "settings_fixed": {"panel": {"rule": "mixture", "alpha": DEFAULT_ALPHA, "prior": "uniform"},
                           "mcts": {k: v for k, v in asdict(MCTSConfig()).items() if k != "num_simulations"},
                           "sampling_temperature": 1.0, "teacher_sample_temperature": 1.0,
                           "leaf_sources": {"mcts": "rollout", "mcts-gumbel": "rollout"}},
        "config": asdict(cfg)}
    return declared


HEADLINE_FIXED = ("best-reference", "majority-vote", "ensemble-greedy", "stepwise-greedy")
"""The fixed-cost rows of the headline run: the strong cheap baselines every search table carries."""


def measured_rows(cfg: SearchBenchConfig, declared: dict) -> dict[str, list[tuple[str, str, float | None]]]:
    """Per mode, the ``(family, spec, budget)`` rows to measure: every family at every budget with ``--full``, else
    the headline rows (MCTS, the sampling baselines, the teachers' majority, and the fixed rows of
    :data:`HEADLINE_FIXED`) at the 2x and 4x budgets and at the self-play target's budgets."""
    headline = {declared["headline"]["mcts"], *SAMPLERS, "mcts-steps", "ab-mcts"}
    budgets = declared["budgets"] if cfg.full else sorted({2.0, 4.0, *declared["self_play_target_budgets"]})
    out: dict[str, list] = {}
    for mode in MODES:
        if not cfg.full and mode == "evaluation-judge-off":
            continue
        rows = [(name, fixed_spec(name, mode), None) for name in FIXED if cfg.full or name in HEADLINE_FIXED]
        for fam in (f for f in FAMILIES if f.name in cfg.families and mode in f.specs):
            if not cfg.full and fam.name not in headline:
                continue
            for b in budgets:
                setting = declared["settings"][f"{mode}|{fam.name}"].get(str(b))
                if setting is not None:
                    rows.append((fam.name, fam.at(setting, mode), b))
        out[mode] = rows
    return out


def run(cfg: SearchBenchConfig, progress=None) -> dict:
    """Declare, measure (resuming), and report."""
    from .search_report import report

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = EpisodeLog(out / "episodes.jsonl")
    declared = declare(cfg, log, out, progress)
    rows = measured_rows(cfg, declared)
    started = time.perf_counter()
    for mode, mode_rows in rows.items():
        items = [(i, p.prompt) for i, p in enumerate(problems(cfg, "self-play" if mode == "self-play"
                                                              else "evaluation"))]
        run_specs(cfg, log, mode, [spec for _, spec, _ in mode_rows], items, progress=progress)
    measured = time.perf_counter() - started
    from .value_sources import fit_value_head

    leaves = fit_value_head(cfg, declared, out, progress) if cfg.leaf_sources else None
    return report(cfg, declared, rows, log, out, measured_seconds=measured, leaf_sources=leaves,
                  worker_seconds=log.worker_seconds())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="chain5")
    parser.add_argument("--n", type=int, default=200, help="measured problems per mode")
    parser.add_argument("--pilot", type=int, default=20, help="train problems that fix the declared settings")
    parser.add_argument("--full", action="store_true", help="every row at every budget (default: the headline run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="results folder (default: results/search-TASK)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", nargs="+", default=None, choices=[f.name for f in FAMILIES], metavar="FAMILY",
                        help="the families of growing cost to declare and measure (default: every one: "
                             + ", ".join(f.name for f in FAMILIES) + ")")
    args = parser.parse_args(argv)
    cfg = SearchBenchConfig(task=args.task, n=args.n, pilot=args.pilot, full=args.full, workers=args.workers,
                            out=args.out or f"results/search-{args.task}", seed=args.seed,
                            **({"families": tuple(args.families)} if args.families else {}))
    from rich.console import Console

    from agents.training.stopping import sigterm_as_interrupt

    console = Console()
    try:
        with sigterm_as_interrupt(), console.status("search benchmark") as status:
            result = run(cfg, progress=lambda m: status.update(m))
    except KeyboardInterrupt:
        console.print(f"stopped; every finished episode is stored in {cfg.out}/episodes.jsonl. Resume with the "
                      f"same command (--out {cfg.out}).")
        raise SystemExit(130) from None
    console.print(Path(cfg.out, "search.md").read_text())
    return result


if __name__ == "__main__":
    main()
