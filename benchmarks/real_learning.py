"""``python -m benchmarks.real_models --learning``: SmolLM2 trained on a task it cannot recall, against every control,
three seeds (issue 37). Resumable: a finished arm is saved under ``runs/`` and skipped; an unfinished search arm
resumes with the loop's own resume.

**Declared** (``declared.json``, before any arm runs; a resume under another configuration is refused): the search
arm (:data:`RealLearningConfig.search`), the loop, the trainer, the seeds; then ``estimate.json``, before any arm
runs: the search arms' self-play CPU hours from a CPU pilot of the search on a few train prompts (training and
evaluation are not in it).

**Arms** (:data:`ARMS`), each seed, the same trainer (LoRA SmolLM2 in its own format; EWC and auto-replay), the
held-out accuracy on the task's 200 held-out problems and the general-ability probe (``probe-words``) after every
round:

1. ``search``: self-play by MCTS (2 simulations a step) under the mixture panel over both real models, the verifier
   scoring the leaves; SFT on the verified paths;
2. ``mixture-greedy``: the same panel without search (ensemble greedy), trained the same way, walking the train pool
   until it has spent the search arm's weighted tokens of that round (this isolates the search from the panel);
3. ``sft-greedy``: SFT on both teachers' pooled verified greedy answers to fresh prompts;
4. ``rft``: pooled RFT (temperature-1 samples, verified, deduplicated) on the search arm's own prompts.

Arms 2-4 get, round by round, the search arm's **weighted forwarded tokens of every model** (teachers, primary,
judge: :mod:`agents.compute`). Parity is on tokens, so the controls run two at a time. Each arm runs in a fresh
process, which reports its own peak memory and wall time.

Reported (:func:`report`): accuracy per round per arm (mean over seeds, t-interval), the probe per round, and the
targets, each with :func:`tokentree_env.stats.seeds_paired` (a difference counts only where the bootstrap over
problems and the t-interval over seeds both exclude 0): arm 1 above arms 3 and 4; arm 1 above arm 2; the probe
within its 95 % interval of its start (Wilson, at the start, for every arm).
"""

from __future__ import annotations

import json
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

SMOL, GEMMA = "pkg:smollm2-135m-instruct", "pkg:gemma3-270m"
ARMS = ("search", "mixture-greedy", "sft-greedy", "rft")
COLOURS = {"search": "tab:red", "mixture-greedy": "tab:purple", "sft-greedy": "tab:blue", "rft": "tab:green"}
LABELS = {"search": "1. MCTS self-play (verifier on the leaves), SFT",
          "mixture-greedy": "2. mixture greedy (the panel, no search), same tokens",
          "sft-greedy": "3. SFT on both teachers' verified greedy answers, same tokens",
          "rft": "4. RFT on both teachers' pooled samples, same tokens"}


@dataclass
class RealLearningConfig:
    """The real learning run's settings (fixed before it runs; in the declared fingerprint)."""

    task: str = "arith2-words"
    seeds: int = 3
    judge: str | None = None
    """Off: no real judge reached ROC AUC 0.65 on the task (benchmarks/README.md)."""
    search: str = "mcts:2"
    models: dict = field(default_factory=lambda: {"teachers": (GEMMA, SMOL), "primary": SMOL})
    loop: dict = field(default_factory=lambda: {
        "iterations": 3, "prompts_per_iteration": 32, "repeats": 1, "lora": True, "max_new_tokens": 24,
        "eval_size": 500, "epochs": 4, "learning_rate": 2e-4, "validation_size": 50, "selfplay_batch": 4,
        "general_task": "probe-words"})
    """``eval_size`` 500: the task's whole held-out split (200) and the whole probe (500) after every round."""
    workers: int = 2
    pilot_prompts: int = 8
    out: str = "results/real-models/learning"


def learning_config(cfg: RealLearningConfig):
    """The learning benchmark's configuration that runs these arms."""
    from .learning_arms import LearningConfig

    return LearningConfig(task=cfg.task, seeds=cfg.seeds, out=cfg.out, loop=dict(cfg.loop), workers=cfg.workers,
                          models={**cfg.models, "judge": cfg.judge}, parts=("headline",), search=cfg.search,
                          pilot_prompts=cfg.pilot_prompts)


def run(cfg: RealLearningConfig | None = None, progress=print) -> dict:
    """Declare; every seed's search arm, alone; then the controls two at a time; the report."""
    from .learning_arms import declare

    cfg = cfg or RealLearningConfig()
    learning = learning_config(cfg)
    Path(cfg.out, "runs").mkdir(parents=True, exist_ok=True)
    declared = declare(learning)
    estimate = Path(cfg.out, "estimate.json")
    if not estimate.exists():  # written once, before any arm runs
        hours = declared["budget"]["cpu_seconds_per_iteration"] * cfg.loop["iterations"] * cfg.seeds / 3600
        estimate.write_text(json.dumps({"written_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                        "search_self_play_cpu_hours": hours, "covers": (
            "the search arms' self-play CPU, from the declared pilot; the controls spend the same tokens; training "
            "and evaluation (the task's held-out split and the probe after every round) are not in it")}))
    progress(f"declared: {cfg.search}; the search arms' self-play needs about "
             f"{json.loads(estimate.read_text())['search_self_play_cpu_hours']:.1f} CPU hours (estimate.json)")
    searches = []
    with _pool(1) as pool:
        for seed in range(cfg.seeds):  # alone on the machine: its self-play workers take the cores
            searches.append(_stoppable(pool, [pool.submit(_arm, learning, "search", seed, None)])[0])
            progress(f"search seed {seed}: {_curve_text(searches[-1])}")
    jobs = [(arm, s) for s in searches for arm in ARMS[1:]]
    with _pool(2) as pool:  # token parity: two at a time does not change what an arm spends
        done = _stoppable(pool, [pool.submit(_arm, learning, arm, s["seed"], s) for arm, s in jobs])
    for (arm, s), r in zip(jobs, done, strict=True):
        progress(f"{arm} seed {s['seed']}: {_curve_text(r)}")
    results = searches + done
    summary = report(cfg, results)
    Path(cfg.out, "learning.json").write_text(json.dumps(summary | {"runs": results}, default=str))
    return summary


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), max_tasks_per_child=1)  # a process an arm


def _stoppable(pool: ProcessPoolExecutor, futures: list) -> list[dict]:
    """The futures' results; on Ctrl-C or SIGTERM the arms not started are cancelled and the running ones stopped
    (each keeps what it finished: a rerun resumes)."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise


def _arm(learning, arm: str, seed: int, search: dict | None) -> dict:
    """One arm of one seed in this (fresh) process; its wall time and peak memory summed over every attempt (a
    stopped arm resumes in a later one)."""
    from agents.training.stopping import sigterm_as_interrupt

    from .learning_arms import search_arm
    from .learning_controls import control_arm

    name = f"{arm}-seed{seed}"
    runs = Path(learning.out) / "runs"
    done, attempts = runs / f"{name}.arm.json", runs / f"{name}.attempts.jsonl"
    if done.exists():
        return json.loads(done.read_text())
    live = runs / f"{name}.attempt-live.json"
    _recover_killed(live, attempts)
    started, sampler = time.perf_counter(), _PeakMemory(live)
    with sigterm_as_interrupt():  # the driver's terminate() unwinds here too: the attempt is recorded
        try:
            if arm == "search":
                result = search_arm(learning, seed, spec=learning.search, name=name)
            elif arm == "mixture-greedy":  # the panel without search, matched round by round to its tokens
                c = search["config"]
                replay_rows = max(1, int(c["replay_fraction"] * c["prompts_per_iteration"]))
                result = search_arm(replace(learning, workers=1), seed, spec="ensemble-greedy", name=name, overrides={
                    "round_weighted_tokens": tuple(search["weighted_tokens"]), "prompts_per_iteration": 10**6,
                    "pool_walk": True, "replay_rows": replay_rows})
            else:
                result = control_arm(learning, seed, arm, search, by="tokens")
        finally:
            attempt = {"wall_seconds": time.perf_counter() - started, "peak_memory_gb": sampler.stop()}
            with attempts.open("a") as f:
                f.write(json.dumps(attempt) + "\n")
            live.unlink(missing_ok=True)
    spent = [json.loads(line) for line in attempts.read_text().splitlines()]
    result |= {"arm": arm, "name": name, "attempts": len(spent), "wall_seconds": sum(a["wall_seconds"] for a in spent),
               "peak_memory_gb": max(a["peak_memory_gb"] for a in spent)}
    from tokentree_env.tree.tree import save_json_atomic

    save_json_atomic(json.loads(json.dumps(result, default=str)), done)  # whole or absent, never half written
    return result


def _recover_killed(live: Path, attempts: Path) -> None:
    """An attempt killed outright (SIGKILL, a machine going away) never reached its ``finally``: its last heartbeat
    (``live``) becomes its line in ``attempts``, marked killed, so the arm's wall time and peak memory count it."""
    if live.exists():
        beat = json.loads(live.read_text())
        with attempts.open("a") as f:
            f.write(json.dumps(beat | {"killed": True}) + "\n")
        live.unlink()


class _PeakMemory:
    """The peak resident memory of this process and every process below it (self-play workers), summed at each
    look, sampled every half second in a thread (Linux ``/proc``; elsewhere this process's own peak). With ``live``,
    every ``beat`` seconds it also writes the attempt's wall time and peak so far there (:func:`_recover_killed`)."""

    def __init__(self, live: Path | None = None, beat: float = 30.0) -> None:
        import threading

        self.peak_kb, self._stop, self._live, self._beat = 0, threading.Event(), live, beat
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        last = self._started
        while not self._stop.wait(0.5):
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(os.getpid()))
            if self._live is not None and time.perf_counter() - last >= self._beat:
                last = time.perf_counter()
                beat = {"wall_seconds": last - self._started, "peak_memory_gb": self.peak_kb / 2**20}
                self._live.with_suffix(".tmp").write_text(json.dumps(beat))
                self._live.with_suffix(".tmp").replace(self._live)  # whole or absent, never half written

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(self.peak_kb, own) / 2**20  # kB -> GB


def _tree_rss_kb(pid: int) -> int:
    """Resident kB of ``pid`` and its descendants now (0 where ``/proc`` cannot be read)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError):
        return 0
    return rss + sum(_tree_rss_kb(int(c)) for c in children)


def _curve_text(r: dict) -> str:
    return " -> ".join(f"{h['task_accuracy']:.3f}" for h in [r["baseline"], *r["history"]])


def report(cfg: RealLearningConfig, runs: list[dict]) -> dict:
    """Accuracy and the probe per round per arm (over seeds), the paired targets; ``learning.md`` and
    ``learning.png`` under ``cfg.out``."""
    from tokentree_env.stats import seeds_paired, t_interval, wilson

    by_arm: dict[str, list[dict]] = {}
    for r in runs:
        by_arm.setdefault(r["arm"], []).append(r)
    arms = {}
    for arm, rs in by_arm.items():
        curves = [[h["task_accuracy"] for h in [r["baseline"], *r["history"]]] for r in rs]
        probes = [[h["general_accuracy"] for h in [r["baseline"], *r["history"]]] for r in rs]
        arms[arm] = {"accuracy": [t_interval(list(c)) for c in zip(*curves, strict=True)],
                     "probe": [t_interval(list(p)) for p in zip(*probes, strict=True)],
                     "per_seed": curves,
                     "weighted_tokens": t_interval([sum(r.get("weighted_tokens") or [h.get("weighted_tokens") or 0
                                                                                    for h in r["history"]]) for r in rs]),
                     "wall_seconds": t_interval([r["wall_seconds"] for r in rs]),
                     "peak_memory_gb": max(r["peak_memory_gb"] for r in rs),
                     "final": {r["seed"]: dict(enumerate(r["history"][-1]["task_correct"])) for r in rs}}
    paired = {f"search - {b}": seeds_paired(arms["search"]["final"], arms[b]["final"])
              for b in ARMS[1:] if "search" in arms and b in arms}
    from tokentree_env.tasks import load_task

    size = len(load_task(cfg.loop.get("general_task", "reverse")).problems("heldout")[:cfg.loop["eval_size"]])
    probe = {}
    for arm, a in arms.items():  # the probe at the end against its start's 95 % interval (Wilson, n = eval_size)
        start, end = a["probe"][0]["mean"], a["probe"][-1]["mean"]
        low, high = wilson(start * size, size)
        probe[arm] = {"start": start, "end": end, "interval": [low, high], "within": low <= end <= high}
    targets = {"search above sft-greedy and rft": all(paired.get(f"search - {b}", {}).get("above")
                                                      for b in ("sft-greedy", "rft")),
               "search above mixture-greedy": bool(paired.get("search - mixture-greedy", {}).get("above")),
               "the search's probe within its start's interval": bool(probe.get("search", {}).get("within"))}
    summary = {"config": asdict(cfg), "arms": {k: {kk: vv for kk, vv in v.items() if kk != "final"}
                                               for k, v in arms.items()},
               "paired": paired, "probe": probe, "targets": targets}
    Path(cfg.out, "learning.md").write_text(markdown(summary))
    plot(summary, Path(cfg.out) / "learning.png")
    return summary


def markdown(summary: dict) -> str:
    arms = summary["arms"]
    rounds = len(next(iter(arms.values()))["accuracy"]) if arms else 0
    lines = [("The search arms ran alone (two self-play workers); the controls two at a time: their parity is on "
              "weighted tokens, which running beside another arm does not change, so wall times differ in kind."), "",
             "| arm | " + " | ".join(["start", *(f"round {i}" for i in range(1, rounds))])
             + " | probe, every round | weighted tokens | wall s | peak GB |", "|---|" + "---|" * (rounds + 4)]
    for arm in (a for a in ARMS if a in arms):
        a = arms[arm]
        lines.append(f"| {LABELS[arm]} | " + " | ".join(
            f"{c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}]" for c in a["accuracy"])
            + " | " + " -> ".join(f"{p['mean']:.3f}" for p in a["probe"]) + f" | {a['weighted_tokens']['mean']:,.0f}"
            f" | {a['wall_seconds']['mean']:.0f} | {a['peak_memory_gb']:.1f} |")
    lines += ["", "| comparison (last round) | difference | bootstrap over problems | t over seeds | shown |",
              "|---|---|---|---|---|"]
    for name, p in summary["paired"].items():
        lines.append(f"| {name} | {p['difference']:+.3f} | [{p['bootstrap']['low']:+.3f}, {p['bootstrap']['high']:+.3f}]"
                     f" | [{p['t']['low']:+.3f}, {p['t']['high']:+.3f}] | {'above' if p['above'] else 'no'} |")
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if met else 'no'} |" for name, met in summary["targets"].items()]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    """Held-out accuracy per round, one colour per arm, the band over seeds (t-interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for arm in (a for a in ARMS if a in summary["arms"]):
        acc = summary["arms"][arm]["accuracy"]
        xs = list(range(len(acc)))
        ax.plot(xs, [c["mean"] for c in acc], marker="o", color=COLOURS[arm], label=LABELS[arm])
        ax.fill_between(xs, [c["low"] for c in acc], [c["high"] for c in acc], color=COLOURS[arm], alpha=0.15)
    ax.set(xlabel="training round (0: the start)", ylabel="held-out accuracy, own format (band: 95 % over seeds)",
           title="SmolLM2 on the held-out task, by arm", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
