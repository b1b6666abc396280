"""Every round of every arm of the real learning run measured again at the run's answer length, from its saved primary.

The run's own evaluation (``TrainingRun.evaluate`` before it took the run's ``max_new_tokens``) gave SmolLM2 48 new
tokens where the run plays, trains and was calibrated at 24: the base model runs on past its answer ("Omar has 18 - 1 =
17 pencils left. Omar has 17 + 1 = 20 pencils.") and is scored on what it adds, so the run started at 0.110 where the
calibration measured 0.260. The evaluation is a pure measurement (no arm's data or training reads it: replay is on in
every round), so measuring each round's saved primary again gives what the run would have reported at 24 tokens.

The start is measured once: every arm of every seed starts from the same model (a fresh LoRA adapter adds exactly 0).
Each measurement is written to ``runs/remeasured/`` when it is done, so a stopped pass goes on where it stopped. Arms
the run measured at its length (``max_new_tokens`` in their records: the loop's evaluation since it took the run's
length) keep their own measurements.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

START = "start"


def checkpoints(record: dict) -> list[Path]:
    """An arm-run's saved primary after each round (the loop's ``checkpoints/iter-N/primary``; a control's are in the
    same place), in round order."""
    final = Path(record["final_primary"])
    folder = final.parents[2] if final.name == "primary" else final.parent
    paths = [folder / "checkpoints" / f"iter-{i}" / "primary" for i in range(len(record["history"]))]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"{record['name']}: no saved primary for a round ({missing[0]}); an arm run before its "
                                "rounds were checkpointed cannot be measured again: rerun it")
    return paths


OLD_LENGTH = 48
"""What the loop measured at before it took the run's length (a record without ``max_new_tokens``)."""


def measured_at_length(record: dict, tokens: int) -> bool:
    """Whether the run measured every round of ``record`` at ``tokens`` new tokens."""
    return all(h.get("max_new_tokens", OLD_LENGTH) == tokens for h in [record["baseline"], *record["history"]])


def remeasure(cfg, records: list[dict], progress=print, force: bool = False) -> dict[str, list[dict]]:
    """The start and rounds of each record measured at ``cfg.loop["max_new_tokens"]``, again from its saved primaries
    where the run measured it at another length (every record with ``force``): per arm-run name, a list (start,
    round 1, ...) of ``task_accuracy``, ``task_correct`` and ``general_accuracy``. A record the run measured at the
    length keeps its own (measuring it again gives the same: tested)."""
    out = Path(cfg.out) / "runs" / "remeasured"
    tokens = cfg.loop["max_new_tokens"]
    again = [r for r in records if force or not measured_at_length(r, tokens)]
    jobs = {START: (cfg.models["primary"], out / f"{START}.json")} if again else {}
    for r in again:
        for i, path in enumerate(checkpoints(r)):
            jobs[f"{r['name']}-round{i + 1}"] = (str(path), out / f"{r['name']}-round{i + 1}.json")
    todo = [(cfg, spec, str(file)) for spec, file in jobs.values() if not file.exists()]
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        progress(f"measuring {len(todo)} saved primaries again at {tokens} new tokens")
        with ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
            for _ in pool.map(_measure, todo):
                pass
    read = {key: json.loads(file.read_text()) for key, (_, file) in jobs.items()}
    own = {r["name"]: [r["baseline"], *r["history"]] for r in records if r not in again}
    return own | {r["name"]: [read[START], *(read[f"{r['name']}-round{i + 1}"] for i in range(len(r["history"])))]
                  for r in again}


def _measure(job) -> None:
    """One primary (a model spec or a saved checkpoint) on the task's and the probe's held-out problems, greedy, in
    its own format, at the run's answer length; written atomically."""
    import torch

    from agents.training.checkpoint import load_primary
    from agents.training.measure import greedy_results
    from tokentree_env.tasks import load_task
    from tokentree_env.tree.tree import save_json_atomic

    from .config import quiet_worker

    quiet_worker()
    torch.set_num_threads(1)
    cfg, spec, file = job
    lm = load_primary(spec, cfg.loop["lora"], seed=0)
    n, tokens = cfg.loop["eval_size"], cfg.loop["max_new_tokens"]
    task, probe = load_task(cfg.task), load_task(cfg.loop["general_task"])
    correct = greedy_results(lm, task, task.problems("heldout")[:n], max_new_tokens=tokens)
    general = greedy_results(lm, probe, probe.problems("heldout")[:n], max_new_tokens=tokens)
    save_json_atomic({"primary": spec, "max_new_tokens": tokens, "task_correct": correct,
                      "task_accuracy": sum(correct) / max(1, len(correct)),
                      "general_accuracy": sum(general) / max(1, len(general))}, file)


def as_remeasured(record: dict, measured: list[dict]) -> dict:
    """``record`` with its start and rounds' accuracies replaced by the measurements at the run's answer length (its
    tokens, times and the rest kept)."""
    keys = ("task_accuracy", "task_correct", "general_accuracy")
    start, *rounds = measured
    return record | {"baseline": record["baseline"] | {k: start[k] for k in keys},
                     "history": [h | {k: m[k] for k in keys} for h, m in zip(record["history"], rounds, strict=True)]}
