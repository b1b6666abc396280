"""``python -m benchmarks.coverage --task chain5``: does search pay, on a fixed problem pool, at equal compute?

The successful search papers grow the **coverage** of a fixed pool (the share of its problems with a verified
answer) and spend search where cheap sampling fails. This comparison asks that of TokenTree (issue 36).

**Declared** (``declared.json``, before any arm runs; a resume under another configuration is refused): the pool
(the task's train split minus the validation slice, walked in one order per seed, :mod:`agents.training.pool`),
the rounds; the search spec; the trainer; and, from a **pilot** on the validation slice (train problems no arm
plays), one per-round generation budget for every arm, in process CPU seconds and in weighted tokens
(:mod:`agents.compute`): the coverage-first search's cost per prompt times the prompts a round should buy it. The
pilot also fixes the sampling arm's temperature (the most verified answers per weighted token of the samples
alone among :data:`TEMPERATURES`, on the pilot's prompts no teacher solved) and its cap per prompt (the search's
weighted tokens per unsolved prompt over a sample's). The prompts per round are fixed (``prompts``, the next ones
of the seed's walk, the same for every arm of a seed); the budget caps each round (``TrainConfig.round_cpu_seconds``
/ ``round_weighted_tokens``, whichever is spent first; what was in flight at a stop is charged too, and the prompts
a stop leaves come first in the next round). Every arm runs alone in one process and trains with the same trainer,
replaying ``replay_fraction`` of the round's prompts in general-task rows; the report shows what each round spent of
the budget and what stopped it.

**Arms** (:data:`ARMS`), every one coverage-first (each round starts with the teachers' verified greedy answers):

- ``search``: the search on the prompts no teacher solved, trained on its verified answers and the per-node
  targets (``sft``; ``distill`` of the improved policy at nodes of 4 visits or more, :data:`TREE_TARGETS`; ``dpo``
  against siblings verified wrong);
- ``search-sft``: the same search, SFT on verified answers only (separates the search from the extra targets);
- ``greedy``: the teachers' verified greedy answers alone, on the same prompts (it spends a part of the budget);
- ``sampling``: the teachers' temperature samples on the unsolved prompts instead of the search (round-robin, each
  prompt stopping at its first verified sample), with its right-against-wrong pairs for ``dpo``;
- ``student``: ``search`` with the primary in the panel from the second round.

Per round (:mod:`tokentree_benchmarks.coverage_report`): coverage, held-out pass@1, ``reverse``, the generation
CPU and weighted tokens, the cost of each newly covered problem, the training rows' CPU per signal; at the end the
problems only one arm covered, pass@k up to 64, paired statistics over seeds, one plot. Resumable: a finished arm is
saved under ``runs/`` and skipped; an unfinished one resumes with the loop's own resume.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import quiet_console
from .config import quiet_worker as _quiet
from .learning_arms import LEARNING_TRAINER
from .pass_at import pass_at_k

TREE_TARGETS = {"distill_target": "improved", "distill_min_visits": 4}
"""Arm 1's per-node targets: the improved policy ``softmax(panel logits + σ(completed Q))``, only at nodes the search
gave at least 4 visits (``mcts:4``'s simulations per step)."""
ARMS: dict[str, dict] = {
    "search": {"unsolved": "search", "signals": ("sft", "distill", "dpo"), **TREE_TARGETS},
    "search-sft": {"unsolved": "search", "signals": ("sft",)},
    "greedy": {"unsolved": "none", "signals": ("sft",)},
    "sampling": {"unsolved": "samples", "signals": ("sft", "dpo")},
    "student": {"unsolved": "search", "signals": ("sft", "distill", "dpo"), "student_in_panel": True, **TREE_TARGETS},
}
TEMPERATURES = (0.7, 1.0, 1.3)


@dataclass
class CoverageConfig:
    """What the coverage comparison runs."""

    task: str = "chain5"
    seeds: int = 3
    rounds: int = 4
    prompts: int = 256
    """The prompts of each round, fixed in advance (the next ones of the seed's walk of the pool, the same for every
    arm); the round's budget is the pilot's cost per prompt of the search times this, and caps every arm."""
    search: str = "mcts:4"
    arms: tuple[str, ...] = tuple(ARMS)
    models: dict = field(default_factory=dict)
    """``teachers`` / ``primary`` / ``judge`` (default: the task's zoo test-bed)."""
    pilot_prompts: int = 96
    """Pilot prompts (of the 100-problem validation slice, after one warm-up prompt)."""
    loop: dict = field(default_factory=lambda: {"eval_size": 200, "selfplay_batch": 8})
    """Further ``TrainConfig`` settings of every arm."""
    pass_at: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    pass_samples: int = 64
    out: str = "results/coverage-chain5"

    def train_kwargs(self) -> dict:
        from tokentree_env.zoo.catalog import default_models

        defaults = default_models(self.task) | ({"max_new_tokens": 48} if self.task in ("chain5", "chain5-skills")
                                                 else {})
        return {"task": self.task, **LEARNING_TRAINER, **defaults, **self.models, **self.loop,
                "coverage_first": True, "pool_walk": True, "workers": 1, "agent": self.search,
                "planner_verifier": True}


# -- the declaration --------------------------------------------------------------------------------------
def declare(cfg: CoverageConfig) -> dict:
    """Fix the budgets, the sampling arm's settings and the protocol before any arm runs (kept on resume)."""
    from .declared import declare_once

    kwargs = cfg.train_kwargs()
    models = [*kwargs.get("teachers", ()), kwargs.get("primary"), kwargs.get("judge")]
    return declare_once(Path(cfg.out) / "declared.json", asdict(cfg), models, lambda: _declare(cfg))


def _declare(cfg: CoverageConfig) -> dict:
    pilot = pilot_costs(cfg)
    return {"declared_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "pilot": pilot,
            "budget": {"cpu_seconds_per_round": pilot["search"]["cpu_per_prompt"] * cfg.prompts,
                       "weighted_tokens_per_round": pilot["search"]["weighted_per_prompt"] * cfg.prompts},
            "sampling": {"temperature": pilot["temperature"], "cap": pilot["cap"]},
            "arms": {name: {k: list(v) if isinstance(v, tuple) else v for k, v in arm.items()}
                     for name, arm in ARMS.items() if name in cfg.arms},
            "trainer": dict(LEARNING_TRAINER), "seeds": cfg.seeds, "rounds": cfg.rounds, "prompts": cfg.prompts,
            "pass_at_k": {"k": list(cfg.pass_at), "samples": cfg.pass_samples, "temperature": 1.0}}


def pilot_costs(cfg: CoverageConfig) -> dict:
    """The coverage-first search's process CPU and weighted tokens per prompt on the pilot's prompts (the validation
    slice, which no arm plays; after one untimed warm-up prompt), and the sampling arm's temperature and cap."""
    import math

    from agents.compute import weighted_tokens
    from agents.training import TrainConfig
    from agents.training.pool import validation_problems
    from agents.training.selfplay import SelfPlayJob, play_episodes, with_cpu_seconds
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import load_task

    _quiet()
    config = TrainConfig(**cfg.train_kwargs())
    task = load_task(cfg.task)
    prompts = [p.prompt for p in validation_problems(task, config.validation_size, cfg.task)][:cfg.pilot_prompts + 1]
    env = TokenTreeEnv(teachers=list(config.teachers), judge=config.judge, task=config.task, split="train",
                       max_new_tokens=config.max_new_tokens, planner_verifier=True, primary=config.primary)
    parameters = env.model_parameters()
    reference = parameters.get(config.primary) or max(v for v in parameters.values() if v)  # the primary's size
    weigh = lambda records: sum(weighted_tokens(r["forwarded_by_model"], parameters, reference) for r in records)
    settings = tuple(sorted((k, v) for k, v in config.search_settings.items() if v is not None))
    job = SelfPlayJob(agent=config.search_spec, settings=settings, batch=config.selfplay_batch, coverage_first=True)
    list(play_episodes(env, [(0, prompts[0], [0])], job))  # warm-up, untimed
    items = [(i, p, [0]) for i, p in enumerate(prompts[1:], start=1)]
    started = time.process_time()
    records = list(with_cpu_seconds(play_episodes(env, items, job)))
    cpu = time.process_time() - started
    searched = [r for r in records if r.get("source") != "teachers"]
    out = {"search": {"prompts": len(items), "cpu_per_prompt": cpu / len(items), "weighted_per_prompt":
                      weigh(records) / len(items), "unsolved": len(searched),
                      "weighted_per_unsolved": weigh(searched) / max(1, len(searched)),
                      "solved": sum(r["hard_reward"] >= 0.5 for r in records) / len(items)}}
    unsolved = [(r["prompt_index"], r["prompt"], [0]) for r in searched]
    rates = {}
    for temperature in TEMPERATURES:  # one sample round-robin per prompt, a fresh env (no cache carried over)
        probe = TokenTreeEnv(teachers=list(config.teachers), judge=config.judge, task=config.task, split="train",
                             max_new_tokens=config.max_new_tokens, planner_verifier=True, primary=config.primary)
        sampled = list(play_episodes(probe, unsolved, SelfPlayJob(coverage_first=True, unsolved="samples",
                                                                  unsolved_samples=len(config.teachers),
                                                                  sample_temperature=temperature)))
        drawn_records = [r for r in sampled if r.get("source") == "samples"]
        spent = sum(weighted_tokens(r["sample_forwarded_by_model"], parameters, reference) for r in drawn_records)
        drawn = sum(r["draws"] for r in drawn_records)
        rates[str(temperature)] = {"verified": sum(r["hard_reward"] >= 0.5 for r in sampled
                                                   if r.get("source") == "samples"),
                                   "weighted": spent, "draws": drawn, "per_sample": spent / max(1, drawn)}
        probe.close()
    env.close()
    best = max(TEMPERATURES, key=lambda t: (rates[str(t)]["verified"] / max(1e-9, rates[str(t)]["weighted"]), -t))
    per_sample = rates[str(best)]["per_sample"] or 1.0
    out |= {"sampling": rates, "temperature": best,
            "cap": max(1, math.ceil(out["search"]["weighted_per_unsolved"] / per_sample))}
    return out


# -- the arms -----------------------------------------------------------------------------------------
def arm_run(cfg: CoverageConfig, declared: dict, arm: str, seed: int, progress=print) -> dict:
    """One arm and seed, every round under the declared budget, resumed if it was stopped; its history and data."""
    from agents.training import TrainConfig, TrainingRun

    _quiet()
    name = f"{arm}-seed{seed}"
    done = Path(cfg.out) / "runs" / f"{name}.json"
    if done.exists():
        return json.loads(done.read_text())
    folder = Path(cfg.out) / "runs" / name
    budget = declared["budget"]
    config = TrainConfig(output_dir=str(folder), seed=seed, iterations=cfg.rounds, prompts_per_iteration=cfg.prompts,
                         round_cpu_seconds=budget["cpu_seconds_per_round"],
                         round_weighted_tokens=budget["weighted_tokens_per_round"],
                         unsolved_samples=declared["sampling"]["cap"],
                         sample_temperature=declared["sampling"]["temperature"],
                         **(cfg.train_kwargs() | ARMS[arm]))
    started = time.perf_counter()
    resume = (folder / "state.json").exists()
    run = TrainingRun.from_output_dir(folder, console=quiet_console()) if resume else TrainingRun(config, console=quiet_console())
    run.run()
    records = list(run.store)
    result = {"arm": arm, "seed": seed, "name": name, "wall_seconds": time.perf_counter() - started,
              "baseline": run.state["baseline"], "history": run.state["history"], "teachers": run.state.get("teachers"),
              "rounds": [round_data(records, i, run.ledger, h.get("round_unstored") or {})
                         for i, h in enumerate(run.state["history"])],
              "final_primary": str(folder / "checkpoints" / f"iter-{cfg.rounds - 1}" / "primary")}
    done.write_text(json.dumps(result))
    progress(f"{name}: {result['baseline']['task_accuracy']:.3f} -> {result['history'][-1]['task_accuracy']:.3f}, "
             f"covered {sum(len(r['covered']) for r in result['rounds'])} in {result['wall_seconds']:.0f} s")
    return result


def round_data(records: list[dict], iteration: int, ledger, unstored: dict) -> dict:
    """One round's data: the prompts it played, those it covered (a verified answer), and its generation compute:
    its episodes' and what no stored episode carries (``unstored``: the work in flight at a stop, the prompts
    prepared but never played)."""
    from agents.compute import weighted_tokens

    mine = [r for r in records if r.get("iteration") == iteration]
    covered = sorted({r["prompt"] for r in mine if r["hard_reward"] >= 0.5 or r.get("verified_answers")})
    weigh = lambda by_model: weighted_tokens(by_model or {}, ledger.parameters, ledger.reference)
    return {"played": sorted({r["prompt"] for r in mine}), "covered": covered,
            "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in mine) + unstored.get("cpu_seconds", 0.0),
            "weighted_tokens": sum(weigh(r.get("forwarded_by_model")) for r in mine)
                               + weigh(unstored.get("forwarded_by_model")),
            "sources": {s: sum(r.get("source", "search") == s for r in mine) for s in ("teachers", "samples", "search")}}


def run_all(cfg: CoverageConfig, progress=print) -> list[dict]:
    """Declare, then every arm and seed one after another (parity arms never run beside each other), then pass@k."""
    declared = declare(cfg)
    budget = declared["budget"]
    progress(f"declared: {budget['cpu_seconds_per_round']:.1f} CPU s and {budget['weighted_tokens_per_round']:,.0f} "
             f"weighted tokens per round; sampling at T={declared['sampling']['temperature']}, "
             f"cap {declared['sampling']['cap']}")
    runs = [arm_run(cfg, declared, arm, seed, progress) for seed in range(cfg.seeds) for arm in cfg.arms]
    for r in runs:
        if "pass_at_k" not in r:
            r["pass_at_k"] = pass_at_k(r["final_primary"], cfg.task, cfg.loop.get("eval_size", 200), cfg.pass_samples,
                                       cfg.pass_at, max_new_tokens=cfg.train_kwargs().get("max_new_tokens", 48),
                                       seed=r["seed"])
            Path(cfg.out, "runs", f"{r['name']}.json").write_text(json.dumps(r))
    return runs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coverage", description="Does search pay on a fixed "
                                     "problem pool at equal compute? Coverage-first search against the teachers' "
                                     "greedy answers and their samples (on your task: --task FILE --teachers ...).")
    parser.add_argument("--task", default="chain5", help="a built-in task or a JSONL task file")
    parser.add_argument("--teachers", nargs="+", default=None, help="teacher models (default: the task's zoo stack)")
    parser.add_argument("--primary", default=None, help="the primary to train (default: the task's zoo primary)")
    parser.add_argument("--judge", default=None, help="the judge, or 'none'")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=256, help="prompts per round of the search arms")
    parser.add_argument("--search", default="mcts:4", help="the search arms' spec")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--out", default=None, help="results folder (default: results/coverage-TASK)")
    parser.add_argument("--tiny", action="store_true", help="a smoke run for the tests: not a measurement")
    args = parser.parse_args(argv)
    models = {k: v for k, v in (("teachers", tuple(args.teachers) if args.teachers else None),
                                ("primary", args.primary),
                                ("judge", None if args.judge == "none" else args.judge)) if v is not None or
              (k == "judge" and args.judge == "none")}
    cfg = CoverageConfig(task=args.task, seeds=args.seeds, rounds=args.rounds, prompts=args.prompts,
                         search=args.search, arms=tuple(args.arms), models=models,
                         out=args.out or f"results/coverage-{Path(args.task).stem}")
    if args.tiny:
        cfg.loop = {"eval_size": 10, "selfplay_batch": 4, "epochs": 1, "validation_size": 10, "max_new_tokens": 16}
        cfg.pilot_prompts, cfg.pass_samples, cfg.pass_at = 2, 4, (1, 4)
    Path(cfg.out, "runs").mkdir(parents=True, exist_ok=True)
    from agents.training.stopping import sigterm_as_interrupt

    from .coverage_report import report

    with sigterm_as_interrupt():
        runs = run_all(cfg)
    summary = report(cfg, runs, Path(cfg.out))
    print(f"report: {Path(cfg.out) / 'coverage.md'}")
    return summary


if __name__ == "__main__":
    main()
