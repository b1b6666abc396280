"""The learning benchmark's no-search controls (:mod:`tokentree_benchmarks.learning_arms` runs them beside the
search arm): SFT on the teachers' verified greedy answers to fresh prompts, and RFT on their verified samples, each
round under the search arm's generation budget of that round, in CPU seconds or in weighted forwarded tokens of
every model (:mod:`agents.compute`)."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path


class Budget:
    """A data-generation budget: CPU seconds of this process (``time.process_time``), or weighted forwarded tokens
    (:func:`agents.compute.weighted_tokens` over the models the control runs, in the search arm's primary-token
    equivalents)."""

    def __init__(self, seconds: float | None = None, tokens: float | None = None,
                 teachers=(), reference: int = 0) -> None:
        self.seconds, self.tokens, self.start = seconds, tokens, time.process_time()
        self.teachers, self.reference = list(teachers), reference
        self.before = {t.name: t.counters.forwarded_tokens for t in self.teachers}

    def by_model(self) -> dict[str, int]:  # tokens each teacher forwarded since the budget began
        return {t.name: t.counters.forwarded_tokens - self.before[t.name] for t in self.teachers}

    def weighted(self) -> float:
        from agents.compute import weighted_tokens

        return weighted_tokens(self.by_model(), {t.name: t.parameters for t in self.teachers}, self.reference)

    def left(self) -> bool:
        if self.tokens is not None:
            return self.weighted() < self.tokens
        return self.spent(self) < self.seconds

    @staticmethod
    def spent(budget) -> float:
        return time.process_time() - budget.start


def distinct_right(records: list[dict]) -> float:
    """Distinct right solutions per solved problem in an arm's data (answers as texts)."""
    right: dict[str, set[str]] = {}
    for r in records:
        if r["hard_reward"] >= 0.5:
            right.setdefault(r["prompt"], set()).add(r["completion"].strip())
    return sum(len(v) for v in right.values()) / max(1, len(right))


def control_arm(cfg, seed: int, arm: str, search: dict, by: str = "cpu",
                cpu_seconds: float | None = None) -> dict:
    """SFT on verified teacher answers (``sft-greedy``) or on verified samples (``rft``), each iteration under a
    generation budget: ``cpu_seconds`` of this process's CPU time (the declared budget; default: the search run's
    measured CPU seconds of that iteration), or with ``by="tokens"`` the search run's weighted forwarded tokens of
    every model. ``cfg`` is the search arm's :class:`~tokentree_benchmarks.learning_arms.LearningConfig`.

    Resumable: each finished round is checkpointed (the primary, the data so far, the fresh-prompt cursor, the
    start's evaluation; :func:`_resumable`), and a stopped attempt's rounds are not run again; under token parity a
    resumed control ends as one never stopped. ``wall_seconds`` sums the attempts' time from the start's evaluation
    to their last finished round. To run a finished control again, delete its ``runs/`` folder and file."""
    from agents.training import TrainConfig, TrainingRun, checkpoint
    from agents.training.checkpoint import load_primary
    from tokentree_env.errors import ConfigError
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher
    from tokentree_env.tree.tree import save_json_atomic

    from .config import quiet_console, quiet_worker

    quiet_worker()
    name = f"{arm}-{by}-seed{seed}"
    done = Path(cfg.out) / "runs" / f"{name}.json"
    if done.exists():
        return json.loads(done.read_text())
    if "weighted_tokens" not in search:
        raise ConfigError(f"{cfg.out}: the search arm's record predates weighted token parity (it counted the "
                          "teachers only); start a new run (another --out)")
    folder = Path(cfg.out) / "runs" / name
    config = TrainConfig(**{**search["config"], "output_dir": str(folder), "workers": 1})
    follows = _fingerprint(arm, by, cpu_seconds, search)
    resume = _resumable(folder, config, follows)
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)
    run = TrainingRun(config, resume=resume, console=quiet_console())
    task = load_task(config.task)
    held = {p.prompt for p in run.validation_problems(config.task)}
    fresh = [p for p in task.problems("train") if p.prompt not in held]
    random.Random(f"control:{seed}").shuffle(fresh)
    by_prompt = {p.prompt: p for p in task.problems("train")}
    teachers = [HFTeacher(spec) for spec in config.teachers]
    completed = run.state["completed"]  # rounds a stopped attempt finished: not run again
    lm = load_primary(checkpoint.primary_path(folder, completed, config.primary), config.lora, seed=config.seed)
    kept = run.state.setdefault("control", {"follows": follows, "buffer": [], "cursor": 0, "samples": [],
                                            "wall_seconds": 0.0})
    if run.state["baseline"] is None:
        run.state["baseline"] = run.evaluate(lm)
        checkpoint.save_state(folder, run.state)
    baseline, started, before = run.state["baseline"], time.perf_counter(), kept["wall_seconds"]
    history, buffer, cursor, samples = run.state["history"], kept["buffer"], kept["cursor"], kept["samples"]
    for iteration in range(completed, len(search["history"])):
        limit = ({"tokens": search["weighted_tokens"][iteration]} if by == "tokens" else
                 {"seconds": cpu_seconds if cpu_seconds is not None else search["cpu_seconds"][iteration]})
        for teacher in teachers:  # a round is charged the same whether or not an earlier one ran in this process
            teacher.clear_caches()
        budget = Budget(**limit, teachers=teachers, reference=search["reference_parameters"])
        if arm == "sft-greedy":
            records, cursor = _greedy_records(teachers, task, fresh, cursor, budget, config.max_new_tokens)
            rounds = 0
        else:
            prompts = [by_prompt[p] for p in search["prompts"][iteration]]
            records, rounds, drawn = _rft_records(teachers, task, prompts, budget, config.max_new_tokens,
                                                  seed * 1000 + iteration)
            samples.append(drawn)
        buffer += records
        generation_cpu = Budget.spent(budget)
        trained = time.perf_counter()
        run.train_round(lm, records, buffer if config.accumulate else records, iteration)
        last = iteration == len(search["history"]) - 1
        metrics = run.evaluate(lm, final=last) | {"iteration": iteration, "answers": len(records), "rft_rounds": rounds,
                                      "forwarded_by_model": budget.by_model(),
                                      "weighted_tokens": budget.weighted(),
                                      "generation_cpu_seconds": generation_cpu,
                                      "distinct_right": distinct_right(buffer),
                                      "train_seconds": time.perf_counter() - trained,
                                      "mean_hard_reward": sum(r["hard_reward"] for r in records) / max(1, len(records))}
        history.append(metrics)
        kept["cursor"], run.state["completed"] = cursor, iteration + 1
        kept["wall_seconds"] = before + time.perf_counter() - started
        checkpoint.save_checkpoint(folder, iteration, lm, None, run.state)  # the round survives a kill
    final = folder / "final-primary"
    lm.model.save_pretrained(final)
    lm.tokenizer.save_pretrained(final)
    result = {"arm": arm, "by": by, "name": name, "seed": seed,
              "wall_seconds": before + time.perf_counter() - started,
              "baseline": baseline, "history": history, "rft_right": samples, "final_primary": str(final)}
    save_json_atomic(result, done)  # whole or absent: a kill while writing it leaves the rounds to finish from
    return result


CHUNK = 16
"""Prompts in one unit of a control's work (one teacher's batch): the budget is checked after every unit."""


def _fingerprint(arm: str, by: str, cpu_seconds: float | None, search: dict) -> dict:
    """What a control's rounds follow besides its training configuration: its arm, its budgets and the search
    arm's rounds it is matched to."""
    keys = ("weighted_tokens", "cpu_seconds", "prompts", "reference_parameters")
    return json.loads(json.dumps({"arm": arm, "by": by, "cpu_seconds": cpu_seconds,
                                  "search": {k: search.get(k) for k in keys}}))


def _resumable(folder: Path, config, follows: dict) -> bool:
    """Whether ``folder`` holds a stopped attempt of this same control: the next attempt goes on from its last
    finished round. An attempt that finished no round starts over; one that did, under another configuration or
    following another search record, is refused rather than deleted. Under synaptic intelligence (``si > 0``),
    whose importance builds up in memory across rounds, a stopped control starts over (as every one did before)."""
    from dataclasses import asdict

    from agents.training.checkpoint import load_state
    from tokentree_env.errors import ConfigError

    if not (folder / "state.json").exists() or config.si > 0:
        return False
    saved = load_state(folder)
    where = ("output_dir", "workers")  # not what the rounds computed
    same = ({k: v for k, v in saved.get("config", {}).items() if k not in where}
            == {k: v for k, v in json.loads(json.dumps(asdict(config))).items() if k not in where}
            and saved.get("control", {}).get("follows") == follows)
    if not same and saved.get("completed", 0) > 0:
        raise ConfigError(f"{folder} holds {saved['completed']} finished round(s) of a control under another "
                          "configuration or search record; delete that folder to run it again")
    return same


def _greedy_records(teachers, task, fresh, cursor, budget, max_new_tokens):
    records = []
    while budget.left() and cursor < len(fresh):
        chunk = fresh[cursor:cursor + CHUNK]
        cursor += len(chunk)
        for teacher in teachers:
            if not budget.left():
                break
            for p, a in zip(chunk, teacher.answers([p.prompt for p in chunk], max_new_tokens=max_new_tokens), strict=True):
                ok = float(task.verify(p, a))
                records.append({"prompt": p.prompt, "completion": a, "hard_reward": ok, "episode_return": ok})
    return records, cursor


def _rft_records(teachers, task, prompts, budget, max_new_tokens, seed):
    """Rounds of one temperature-1 sample per prompt from each teacher until the budget is spent (checked after each
    teacher's batch of :data:`CHUNK` prompts); the distinct right answers (and every prompt a sample got right, for
    the credit count). Charged as ``docs/compute.md`` defines it: a prompt once per (problem, teacher), whatever the
    rounds (as if its cache were kept across them), and the tokens each sample feeds back."""
    from tokentree_env.models.generation import sample_ids

    right: dict[tuple[str, str], dict] = {}
    solved: set[str] = set()
    read: set[tuple[str, str]] = set()
    rounds = 0
    while budget.left() and prompts:
        for i, teacher in enumerate(teachers):
            for start in range(0, len(prompts), CHUNK):
                if not budget.left():
                    return list(right.values()), rounds + 1, sorted(solved)
                chunk = prompts[start:start + CHUNK]
                rows = [teacher.prompt_ids(p.prompt) for p in chunk]  # the teacher's own format
                drawn = sample_ids(teacher.model, teacher.tokenizer, rows, n=1, max_new_tokens=max_new_tokens,
                                   seed=((seed * 1009 + rounds) * 97 + i) * 100_003 + start)
                for p, ids, (new,) in zip(chunk, rows, drawn, strict=True):
                    prompt = 0 if (teacher.name, p.prompt) in read else len(ids)
                    read.add((teacher.name, p.prompt))
                    fed = len(new) if len(new) < max_new_tokens else len(new) - 1  # a cut sample's last is not fed
                    teacher.counters.add(calls=fed + 1, forwarded=prompt + fed, generated=len(new) + 1)
                    text = teacher.tokenizer.decode(new, skip_special_tokens=True)
                    if task.verify(p, text) >= 0.5:
                        solved.add(p.prompt)
                        right.setdefault((p.prompt, text), {"prompt": p.prompt, "completion": text,
                                                            "hard_reward": 1.0, "episode_return": 1.0})
        rounds += 1
    return list(right.values()), rounds, sorted(solved)
