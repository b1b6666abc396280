"""``python -m benchmarks.search --task chain5``: search where it can matter, measured so that the answer can be
trusted either way. Resumable: every episode is appended to ``episodes.jsonl`` as it finishes, and a rerun
skips what is stored.

1. **Declare** (``declared.json``, written before any measured episode, and kept on resume). A pilot on
   train-split problems (never the measured ones) fixes the MCTS budget: the largest number of simulations
   per step whose forwarded tokens stay within 1.5x the best reference's; and best-of-N's N: the smallest
   whose forwarded tokens reach MCTS's (best-of-N gets at least MCTS's compute). Each MCTS row names its
   leaf-value source.
2. **Self-play mode** on ``n`` train-split problems: the verifier scores the search's leaves
   (``planner_verifier``). MCTS against best-of-N ranked by the verifier at equal forwarded tokens, and
   against the best single teacher's greedy accuracy.
3. **Evaluation mode** on ``n`` held-out problems: no verifier. Every agent with the judge on and off; the
   declared MCTS rows against ensemble greedy, the majority vote and the best reference, each difference
   with McNemar's test and a paired-bootstrap 95 % interval.

The value head (a leaf-value source) is fitted on self-play episodes of train problems; every source's
training size and held-out error are reported. :mod:`agents.bench.search_report` writes the JSON, the
plot and the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

from agents.bench.search_config import (
    LOCKSTEP,
    Row,
    SearchBenchConfig,
    env_kwargs,
    problems,
)


# -- one job: a row on a chunk of problems, in a worker process ---------------------------------------
def play_job(cfg: SearchBenchConfig, mode: str, row: Row, chunk: list[tuple[int, str]], value_head: str | None) -> list:
    """Play ``row`` on ``chunk`` (index, prompt) in ``mode``; one result per problem."""
    import torch

    from agents.quiet import quiet_libraries
    from tokentree_env.env import TokenTreeEnv

    torch.set_num_threads(1)
    quiet_libraries()
    env = TokenTreeEnv(**env_kwargs(cfg, mode, row.judge))
    env.prepare([p for _, p in chunk])  # batched reference answers, charged to each prompt's episode
    out = [{"mode": mode, "row": row.key, "index": index, "prompt": prompt, "correct": result["hard_reward"],
            "forwarded_tokens": result["forwarded_tokens"], "seconds": result["seconds"],
            "completion": result["completion"]} for index, prompt, result in _play(cfg, env, row, chunk, value_head)]
    env.close()
    return out


def _play(cfg: SearchBenchConfig, env, row: Row, chunk: list[tuple[int, str]], value_head: str | None):
    """Each problem's episode: MCTS rows in lockstep (``LOCKSTEP`` episodes at a time, one batched forward per
    model per step; each episode seeded by ``(seed, problem index)``), the other agents one at a time."""
    from dataclasses import asdict

    from agents.search import MCTSAgent
    from agents.search.lockstep import play_lockstep

    first = _agent(row, cfg.seed * 100_003 + chunk[0][0], value_head)
    if not isinstance(first, MCTSAgent):
        for index, prompt in chunk:
            result = _agent(row, cfg.seed * 100_003 + index, value_head).run_episode(env, options={"prompt": prompt})
            yield index, prompt, asdict(result)
        return
    agents = [_agent(row, 0, value_head) for _ in range(LOCKSTEP)]
    for record in play_lockstep(env.unwrapped, agents, [(i, p, [0]) for i, p in chunk], seed=cfg.seed, iteration=0):
        yield record["prompt_index"], record["prompt"], record


def _agent(row: Row, seed: int, value_head: str | None):
    from agents.evaluation import make_agent

    if row.leaf != "value-head":
        return make_agent(row.spec, seed=seed)
    from agents.search import MCTSAgent, MCTSConfig, ValueHead

    head = ValueHead.load(value_head)
    name, _, budget = row.spec.partition(":")
    config = MCTSConfig(num_simulations=int(budget), gumbel="gumbel" in name)
    return MCTSAgent(config, value_fn=head.value_fn, seed=seed, name=f"{name}-value-{budget}")


class EpisodeLog:
    """The benchmark's durable store: one JSON line per finished episode; resuming skips what it holds."""

    def __init__(self, path: Path) -> None:
        from agents.store import EpisodeStore

        self.store = EpisodeStore(path)
        self.done = {(r["mode"], r["row"], r["index"]): r for r in self.store}

    def todo(self, mode: str, row: Row, items: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return [(i, p) for i, p in items if (mode, row.key, i) not in self.done]

    def add(self, results: list[dict]) -> None:
        for r in results:
            self.store.append(r)
            self.done[(r["mode"], r["row"], r["index"])] = r

    def results(self, mode: str, row: Row) -> list[dict]:
        return sorted((r for (m, k, _), r in self.done.items() if m == mode and k == row.key), key=lambda r: r["index"])


def run_rows(cfg: SearchBenchConfig, log: EpisodeLog, mode: str, rows: list[Row], items: list[tuple[int, str]],
             value_head: str | None = None, progress=None, chunk: int = 25) -> None:
    """Play every row on every item not yet stored, ``cfg.workers`` processes at a time."""
    jobs = [(row, todo[i:i + chunk]) for row in rows for todo in [log.todo(mode, row, items)]
            for i in range(0, len(todo), chunk)]
    if not jobs:
        return
    from agents.training.selfplay import stop_workers

    pool = ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn"))
    try:
        futures = [pool.submit(play_job, cfg, mode, row, part, value_head) for row, part in jobs]
        for future in futures:
            results = future.result()
            log.add(results)
            if progress:
                progress(f"{mode}: {results[0]['row']} {len(results)} episodes")
    except BaseException:  # Ctrl-C / SIGTERM: stored episodes stay; the chunks in flight are played on resume
        stop_workers(pool)
        raise
    pool.shutdown()


# -- the declared configuration -----------------------------------------------------------------------
def declare(cfg: SearchBenchConfig, log: EpisodeLog, out: Path, progress=None) -> dict:
    """Fix the MCTS budget and best-of-N's N on the pilot problems, before any measured episode; kept on resume."""
    path = out / "declared.json"
    if path.exists():
        return json.loads(path.read_text())
    pilot = [(i, p.prompt) for i, p in enumerate(problems(cfg, "pilot"))]

    def tokens(mode: str, row: Row) -> float:
        run_rows(cfg, log, mode, [row], pilot, progress=progress)
        results = log.results(mode, row)
        return sum(r["forwarded_tokens"] for r in results) / len(results)

    reference = tokens("pilot-evaluation", Row("best-reference", True))
    budget = cfg.budgets[0]
    for b in cfg.budgets:  # forwarded tokens grow with the budget: stop at the first past the cap
        if tokens("pilot-evaluation", Row(f"mcts:{b}", True)) > 1.5 * reference:
            break
        budget = b
    mcts_selfplay = tokens("pilot-self-play", Row(f"mcts:{budget}", True))
    n_best = next((n for n in cfg.best_of if tokens("pilot-self-play", Row(f"best-of-verifier:{n}", True))
                   >= mcts_selfplay), cfg.best_of[-1])
    mcts_eval = tokens("pilot-evaluation", Row(f"mcts:{budget}", True))
    n_eval = next((n for n in cfg.best_of if tokens("pilot-evaluation", Row(f"best-of:{n}", True)) >= mcts_eval),
                  cfg.best_of[-1])
    declared = {"declared_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "pilot_problems": len(pilot),
                "best_reference_tokens": reference, "budget_rule": "the largest MCTS budget (simulations per step) "
                "whose pilot forwarded tokens are <= 1.5x the best reference's",
                "mcts_budget": budget, "best_of_self_play": n_best, "best_of_evaluation": n_eval,
                "leaf_sources": {f"mcts:{budget}": "rollout", f"mcts-gumbel:{budget}": "rollout",
                                 f"mcts-judge:{budget}": "judge", f"mcts:{budget} (value head)": "value-head"},
                "config": asdict(cfg)}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(declared, indent=1))
    return declared


def rows_for(declared: dict) -> dict[str, list[Row]]:
    """The measured rows of each mode, from the declared configuration."""
    b, n_sp, n_ev = declared["mcts_budget"], declared["best_of_self_play"], declared["best_of_evaluation"]
    self_play = [Row(f"mcts:{b}", j, "rollout") for j in (True, False)]
    self_play += [Row(f"best-of-verifier:{n_sp}", j) for j in (True, False)]
    evaluation = []
    for judge in (True, False):
        evaluation += [Row("ensemble-greedy", judge), Row("best-reference", judge), Row("majority-vote", judge),
                       Row(f"best-of:{n_ev}", judge), Row("beam:2", judge),
                       Row(f"mcts:{b}", judge, "rollout"), Row(f"mcts-gumbel:{b}", judge, "rollout"),
                       Row(f"mcts:{b}", judge, "value-head")]
        if judge:
            evaluation.append(Row(f"mcts-judge:{b}", judge, "judge"))
    return {"self-play": self_play, "evaluation": evaluation}


def run(cfg: SearchBenchConfig, progress=None) -> dict:
    """Declare, play both modes (resuming), fit the value head, and report."""
    from agents.bench.search_report import report
    from agents.bench.value_sources import fit_value_head

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = EpisodeLog(out / "episodes.jsonl")
    declared = declare(cfg, log, out, progress)
    rows = rows_for(declared)
    train = [(i, p.prompt) for i, p in enumerate(problems(cfg, "self-play"))]
    run_rows(cfg, log, "self-play", rows["self-play"], train, progress=progress)
    head = fit_value_head(cfg, declared, out, progress)
    held = [(i, p.prompt) for i, p in enumerate(problems(cfg, "evaluation"))]
    run_rows(cfg, log, "evaluation", rows["evaluation"], held, value_head=head["path"], progress=progress)
    return report(cfg, declared, rows, log, head, out)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="chain5")
    parser.add_argument("--n", type=int, default=200, help="measured problems per mode")
    parser.add_argument("--pilot", type=int, default=20, help="train problems that fix the declared budget")
    parser.add_argument("--value-head-problems", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="results folder (default: results/search-TASK)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = SearchBenchConfig(task=args.task, n=args.n, pilot=args.pilot, value_head_problems=args.value_head_problems,
                            workers=args.workers, out=args.out or f"results/search-{args.task}", seed=args.seed)
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
