"""The outer loop: self-play search -> train the primary -> evaluate -> checkpoint, resumable.

Each iteration: MCTS plays the iteration's train-split prompts (each ``repeats`` times in a row) with the
current primary, the verifier scoring the search's leaves (``planner_verifier``); episodes go to the
durable store and the env updates the trees' weightage. The primary then trains through TRL with the
chosen signals (:mod:`agents.training.signals`), guarded by EWC / SI / replay
(:mod:`agents.training.guards`). Its accuracy is measured on its own (greedy, no teachers, no search) on
the held-out splits of the task and of the general task, and on a validation split drawn from their
train splits (which alone decides auto-replay). Then the primary, the trees and the state are
checkpointed (:mod:`agents.training.checkpoint`).

``resume=True`` continues a killed or stopped run: completed iterations are not repeated; in a partial
iteration the stored episodes are kept, re-played through the env to restore the trees' weightage
exactly as the uninterrupted run had it (a stored token missing from its slate raises
:class:`ReplayMismatchError`), and play goes on from the next episode.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from agents.compute import Budget, BudgetReached, Ledger
from agents.store import EpisodeStore
from agents.training import checkpoint, pool
from agents.training.config import TrainConfig
from agents.training.guards import ForgettingGuards, replay_needed
from agents.training.rounds import RoundBudget
from agents.training.selfplay import (
    SelfPlayJob,
    SelfPlayPool,
    default_workers,
    play_episodes,
    with_cpu_seconds,
)
from agents.training.signals import SIGNALS, RoundInputs
from agents.training.stopping import phase_callback, phase_reached
from tokentree_env.errors import ConfigError, TokenTreeError


class ReplayMismatchError(TokenTreeError, RuntimeError):
    """Resuming re-plays a stored episode whose token is not on its node's slate: the run's trees, models or
    settings differ from the ones that played it. The message names the episode, the step and the token."""


class TrainingRun:
    """One run of the loop in ``config.output_dir``; :meth:`run` executes or resumes it."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, console: Console | None = None,
                 budget: Budget | None = None) -> None:
        self.config, self.console = config, console or Console()
        self.budget = budget or Budget()
        """Where the run stops (cleanly, resumable): CPU seconds and weighted generation tokens of the whole run."""
        self.ledger: Ledger | None = None
        self.dir = Path(config.output_dir)
        if (self.dir / "state.json").exists() and not resume:
            raise ConfigError(f"{self.dir} already holds a run; pass --resume to continue it or choose another "
                              "--output-dir")
        if resume and not (self.dir / "state.json").exists():
            raise ConfigError(f"nothing to resume in {self.dir}: no state.json")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = checkpoint.load_state(self.dir) if resume else {
            "config": _jsonable(config), "completed": 0, "history": [], "baseline": None,
            "compute": {"training": 0.0, "evaluation": 0.0}}
        if not resume:  # from now on the folder holds a resumable run, even if stopped before any work
            checkpoint.save_state(self.dir, self.state)
        self.store = EpisodeStore(self.dir / "episodes.jsonl")
        self.guards = ForgettingGuards(config)
        self._pool = None
        self._losses: list[float] = []
        self._signal_cpu: dict[str, float] = {}
        self._last_replay, self._round = False, RoundBudget()

    @classmethod
    def from_output_dir(cls, output_dir: str | Path, *, console: Console | None = None,
                        budget: Budget | None = None) -> TrainingRun:
        """Resume the run in ``output_dir`` with the settings it was started with."""
        state_path = Path(output_dir) / "state.json"
        if not state_path.exists():
            raise ConfigError(f"nothing to resume in {output_dir}: no state.json")
        stored = json.loads(state_path.read_text())["config"]
        stored.setdefault("panel", "product")  # a run from before the panel was a setting ranked by the product
        if stored.get("agent") is not None:  # a run from before search settings defaulted to the spec's own
            for key, old_default in (("simulations", 2), ("dirichlet_fraction", 0.25), ("teacher_mix", 0.5)):
                if stored.get(key) == old_default:
                    stored[key] = None
        config = TrainConfig(**{k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__})
        config.output_dir = str(output_dir)
        return cls(config, resume=True, console=console, budget=budget)

    # -- models and envs ------------------------------------------------------------------------
    def _primary_spec(self) -> str:
        return checkpoint.primary_path(self.dir, self.state["completed"], self.config.primary)

    @property
    def task(self):
        """The task as loaded once (a task file with the configured ``verifier``)."""
        if getattr(self, "_task", None) is None:
            from tokentree_env.tasks import load_task

            self._task = load_task(self.config.task, verifier=self.config.verifier)
        return self._task

    def _load(self, name: str):
        """The task or the general task, by name."""
        from tokentree_env.tasks import load_task

        return self.task if name == self.config.task else load_task(name)

    def _env_kwargs(self, iteration: int | None = None) -> dict:
        """The env of an iteration (the current one by default): from the second on, with ``student_in_panel``, the
        primary (named ``"primary"``) is a member of the teacher panel too."""
        c = self.config
        iteration = self.state["completed"] if iteration is None else iteration
        task = c.task if c.verifier is None else self.task  # a name travels to workers; a chosen verifier with its task
        student = ["primary"] if c.student_in_panel and iteration >= 1 else []
        return {"teachers": [*c.teachers, *student], "judge": c.judge, "task": task, "split": "train",
                "max_new_tokens": c.max_new_tokens, "expansion_seed": c.seed, "planner_verifier": c.planner_verifier,
                "update_weightage": c.update_weightage, "k_wrong": c.k_wrong,
                "panel": {"rule": c.panel, "alpha": c.panel_alpha}}

    def _make_env(self, primary):
        from tokentree_env.env import TokenTreeEnv

        env = TokenTreeEnv(primary=primary, **self._env_kwargs())
        trees = checkpoint.trees_path(self.dir, self.state["completed"])
        joined = self.config.student_in_panel and self.state["completed"] == 1  # the panel the trees knew has changed
        if trees is not None and not joined:
            env.load_trees(trees, merge=False)
        return env

    def _load_primary(self):
        return checkpoint.load_primary(self._primary_spec(), self.config.lora, seed=self.config.seed)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run (or resume) every remaining iteration; return the summary. Ctrl-C (or SIGTERM under the
        command line) stops it between two durable writes; ``--resume`` continues."""
        from tokentree_env.teachers import HFTeacher

        lm = self._load_primary()
        primary = HFTeacher(lm, name="primary")
        primary.version = self.state["completed"]  # training rounds so far: slates say which primary made them
        env = self._make_env(primary)
        self.ledger = self._ledger(env, primary)
        try:
            if self.state["baseline"] is None:
                started = time.process_time()
                self.state["baseline"] = self.evaluate(lm)
                self.state["teachers"] = self._teacher_reference()
                self._spent("evaluation", time.process_time() - started)
                checkpoint.save_state(self.dir, self.state)
            self._pool = self._make_pool()
            self._iterate(lm, primary, env)
        finally:
            if self._pool is not None:
                self._pool.close()
            env.close()
        return self.summary()

    def _make_pool(self):
        """The self-play backend: none (this process), a process pool, or Ray actors."""
        c = self.config
        workers = c.workers or default_workers()
        if c.backend == "ray":
            from agents.training.ray_pool import RayResources, RaySelfPlayPool

            return RaySelfPlayPool(RayResources(c.workers, c.ray_cpus_per_actor, c.ray_gpus_per_actor),
                                   self._env_kwargs(), c.primary, c.lora, address=c.ray_address)
        return SelfPlayPool(workers) if workers > 1 else None

    def _iterate(self, lm, primary, env) -> None:
        c = self.config
        with Progress(console=self.console, transient=True) as bar:
            for iteration in range(self.state["completed"], c.iterations):
                self._check_budget()
                if c.student_in_panel and iteration == 1:  # the student joins the panel: a new env, fresh trees
                    env.close()
                    env = self._make_env(primary)
                started = time.perf_counter()
                records = self._self_play(lm, env, iteration, bar)
                played, cpu = time.perf_counter(), time.process_time()
                self.train_round(lm, records, self._training_records(records, iteration), iteration)
                primary.mark_updated()
                trained, train_cpu = time.perf_counter(), time.process_time() - cpu
                metrics = self.evaluate(lm, final=iteration == c.iterations - 1)
                eval_cpu = time.process_time() - cpu - train_cpu
                metrics.update(self._episode_metrics(records), iteration=iteration,
                               self_play_seconds=played - started, train_seconds=trained - played,
                               eval_seconds=time.perf_counter() - trained, train_cpu_seconds=train_cpu,
                               eval_cpu_seconds=eval_cpu, signal_cpu_seconds=dict(self._signal_cpu),
                               round_stopped=self._round.stopped, round_unstored=self._round.unstored)
                self.state["history"].append(metrics)
                self.state["completed"] = iteration + 1
                self._spent("training", train_cpu)
                self._spent("evaluation", eval_cpu)
                checkpoint.save_checkpoint(self.dir, iteration, lm, env, self.state)
                self.console.print(
                    f"iteration {iteration}: {c.task} {metrics['task_accuracy']:.3f}, {c.general_task} "
                    f"{metrics['general_accuracy']:.3f}, self-play solved {metrics['mean_hard_reward']:.2f}, "
                    f"weightage -{metrics['weightage']['lowered']}/+{metrics['weightage']['raised']}, "
                    f"replay {'on' if metrics['replay'] else 'off'}")

    # -- self-play ------------------------------------------------------------------------------
    def validation_problems(self, task_name: str) -> list:
        """The validation split: ``validation_size`` problems of the task's train split, never played."""
        return pool.validation_problems(self._load(task_name), self.config.validation_size, task_name)

    def _prompts(self, iteration: int) -> list[str]:
        """The iteration's prompts (:mod:`agents.training.pool`)."""
        return pool.iteration_prompts(self.task, self.config, iteration, self.store if self.config.pool_walk else ())

    def _self_play(self, lm, env, iteration: int, bar) -> list[dict]:
        """Play the iteration's prompts, each ``repeats`` times in a row; stored episodes of a stopped run are
        re-played (in order), not re-searched. Returns the records in (prompt, repeat) order."""
        c = self.config
        done = {(r["prompt_index"], r.get("repeat", 0)): r for r in self.store if r.get("iteration") == iteration}
        prompts = self._prompts(iteration)
        job = bar.add_task(f"iteration {iteration}: self-play", total=len(prompts) * c.repeats)
        records = [done[key] for key in sorted(done)]
        for record in records:
            self._replay_episode(env, record)
            bar.advance(job)
        todo = [(index, prompt, left) for index, prompt in enumerate(prompts)
                if (left := [r for r in range(c.repeats) if (index, r) not in done])]
        budget = self._round = RoundBudget(*c.round_budget(iteration), self.ledger.parameters,
                                           self.ledger.reference, env.unwrapped)
        for chunk in ([] if budget.add(records, played_here=False) else self._play(lm, env, iteration, todo)):
            for record in chunk:
                self.store.append(record)
            records += chunk
            self.ledger.add_episodes(chunk)
            bar.advance(job, len(chunk))
            phase_reached("self-play")
            self._check_budget()  # every stored episode stays: --resume goes on from the next
            if budget.add(chunk):
                break  # the round's budget is spent: it trains on what it has
        self._spent("generation", *budget.close([p for _, p, _ in todo]))  # what no stored episode carries
        return sorted(records, key=lambda r: (r["prompt_index"], r.get("repeat", 0)))

    def _job(self, iteration: int) -> SelfPlayJob:
        c, trees = self.config, checkpoint.trees_path(self.dir, self.state["completed"])
        return SelfPlayJob(env_kwargs=self._env_kwargs(iteration), primary=self._primary_spec(),
                           primary_version=self.state["completed"], trees=str(trees) if trees else None,
                           out=str(self.dir / "selfplay-trees"), agent=c.search_spec,
                           settings=tuple(sorted((k, v) for k, v in c.search_settings.items() if v is not None)),
                           seed=c.seed, iteration=iteration, batch=c.selfplay_batch,
                           round_budget=c.round_budget(iteration) != (None, None), **{k: getattr(c, k) for k in (
                               "coverage_first", "unsolved", "unsolved_samples", "sample_temperature")})

    def _play(self, lm, env, iteration: int, todo: list):
        """Episodes of ``todo`` (prompt index, prompt, repeats), a chunk of records at a time; a pool's chunks
        bring their trees back (a folder or exported trees), which replace the loop's."""
        job = self._job(iteration)
        if self._pool is None:
            for record in with_cpu_seconds(play_episodes(env, todo, job)):
                yield [record]
            return
        for chunk, trees in self._pool.play(job, todo, lm=lm, env=env):
            env.load_trees(trees, merge=False, prompts=list(dict.fromkeys(r["prompt"] for r in chunk)))
            yield chunk

    @staticmethod
    def _replay_episode(env, record: dict) -> None:
        """Play a stored episode's tokens again: the env applies the same weightage update (teachers' data: none)."""
        if record.get("source") in ("teachers", "samples"):
            return
        obs, _ = env.reset(options={"prompt": record["prompt"]})
        for step, token in enumerate(record["tokens"]):
            hits = ((obs["candidates"] == token) & (obs["action_mask"] == 1)).nonzero()[0]
            if not len(hits):
                raise ReplayMismatchError(
                    f"cannot re-play stored episode (iteration {record.get('iteration')}, prompt "
                    f"{record['prompt']!r}, repeat {record.get('repeat', 0)}): its token {token} at step {step} is "
                    "not on the slate. The run's trees or models differ from those that played it; resume with "
                    "the settings the run started with, or start a new run")
            obs, _, terminated, truncated, _ = env.step(int(hits[0]))
            if terminated or truncated:
                break

    def _training_records(self, records: list[dict], iteration: int) -> list[dict]:
        """This iteration's episodes, or (``accumulate``) every stored episode of iterations so far."""
        if not self.config.accumulate:
            return records
        earlier = [r for r in self.store if r.get("iteration", 0) < iteration]  # stored as workers finished
        key = lambda r: (r.get("iteration", 0), r.get("prompt_index", 0), r.get("repeat", 0))
        return sorted(earlier, key=key) + records

    # -- compute --------------------------------------------------------------------------------
    def _ledger(self, env, primary) -> Ledger:
        """The run's compute so far: the stored episodes' generation work (tokens per model, the CPU seconds each
        worker measured) and the training and evaluation CPU seconds of the state (:mod:`agents.compute`)."""
        ledger = Ledger(parameters=env.model_parameters(), reference=primary.parameters)
        ledger.add_episodes(self.store)
        ledger.add_tokens(self.state.setdefault("compute", {}).get("unplayed_tokens", {}))
        for phase in ("generation", "training", "evaluation"):  # generation: work in flight at a round's stop
            ledger.add_cpu(phase, self.state.setdefault("compute", {}).get(phase, 0.0))
        return ledger

    def _spent(self, phase: str, seconds: float, tokens: dict[str, int] | None = None) -> None:
        compute = self.state.setdefault("compute", {})
        compute[phase] = compute.get(phase, 0.0) + seconds
        self.ledger.add_cpu(phase, seconds)
        for model, n in (tokens or {}).items():  # generation tokens no stored episode carries (prepared, not played)
            unplayed = compute.setdefault("unplayed_tokens", {})
            unplayed[model] = unplayed.get(model, 0) + n
            self.ledger.add_tokens({model: n})

    def _check_budget(self) -> None:
        """Stop here (every completed episode and iteration is stored) when the budget is spent."""
        reason = self.budget.spent(self.ledger)
        if reason is not None:
            checkpoint.save_state(self.dir, self.state)
            raise BudgetReached(f"stopped at the budget: {reason}")

    # -- training -------------------------------------------------------------------------------
    def train_round(self, lm, records: list[dict], buffer: list[dict] | None = None, iteration: int = 0) -> None:
        """One round of training ``lm`` (a :class:`LoadedModel`, updated in place): each configured signal on
        ``buffer`` (default: ``records``; RL samples the prompts of ``records``), every one guarded by EWC /
        SI / replay; the replay decision looks at this iteration's ``records`` and the validation split."""
        from agents.training.datasets import general_answer
        from tokentree_env.tasks import builtin_task

        c = self.config
        mean = sum(r["hard_reward"] for r in records) / max(1, len(records))
        replay = replay_needed(c, mean, self.state["history"], self.state["baseline"])
        rng = random.Random(c.seed)
        fisher_texts = [(p.prompt, general_answer(p)) for p in (builtin_task(c.general_task).sample(rng)
                                                                 for _ in range(64))]
        guards = self.guards.begin(lm.model, lm.tokenizer, fisher_texts, replay)
        guards.callbacks.append(phase_callback())
        inputs = RoundInputs(lm.model, lm.tokenizer, records, records if buffer is None else buffer, c, guards,
                             str(self.dir), iteration)
        signals = [SIGNALS[name](inputs) for name in c.signals]
        for signal in signals:  # every signal's rows first: replay targets read the pre-round primary
            signal.prepare()
        lm.model.train()
        for signal in signals:
            signal.train()
        lm.model.eval()
        self.guards.end(lm.model)
        self._last_replay, self._losses, self._signal_cpu = replay, inputs.losses, inputs.cpu

    # -- measuring ------------------------------------------------------------------------------
    def evaluate(self, lm, final: bool = True) -> dict:
        """The primary on its own (greedy, no teachers, no search): held-out accuracy on the task and the
        general task (what is reported; ``task_correct`` holds each task problem's result, for paired tests), and
        validation accuracy on both (what auto-replay reads). Between the start and the last iteration the task is
        measured on its first ``eval_between`` held-out problems when that is set (a fixed slice). Answers get the
        run's ``max_new_tokens``, as in its episodes (a longer budget scores a model that runs on by what it adds)."""
        from agents.training.measure import greedy_results

        c, out = self.config, {}
        for key, name in (("task", c.task), ("general", c.general_task)):
            task = self._load(name)
            size = c.eval_size if final or c.eval_between is None or key == "general" else c.eval_between
            results = greedy_results(lm, task, task.problems("heldout")[:size], max_new_tokens=c.max_new_tokens)
            out[f"{key}_accuracy"] = sum(results) / max(1, len(results))
            validation = greedy_results(lm, task, self.validation_problems(name), max_new_tokens=c.max_new_tokens)
            out[f"validation_{key}_accuracy"] = sum(validation) / max(1, len(validation))
            if key == "task":
                out["task_correct"] = results
        return out | {"max_new_tokens": c.max_new_tokens}

    def _teacher_reference(self) -> dict:
        """The teachers' own greedy held-out accuracy on the task (the closing line compares the primary)."""
        from agents.training.measure import teacher_accuracies

        c = self.config
        accs = teacher_accuracies(c.teachers, self.task, c.eval_size, max_new_tokens=c.max_new_tokens)
        return {"accuracies": accs, "best": max(accs.values()) if accs else None}

    def _episode_metrics(self, records: list[dict]) -> dict:
        n = max(1, len(records))
        lowered = sum((r.get("weightage_update") or {}).get("lowered", 0) for r in records)
        raised = sum((r.get("weightage_update") or {}).get("raised", 0) for r in records)
        return {"episodes": len(records), "mean_hard_reward": sum(r["hard_reward"] for r in records) / n,
                "mean_return": sum(r["episode_return"] for r in records) / n,
                "forwarded_tokens": sum(r["forwarded_tokens"] for r in records), "replay": self._last_replay,
                "self_play_cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in records),
                "weightage": {"lowered": lowered, "raised": raised},
                "train_loss": sum(self._losses) / max(1, len(self._losses))}

    def summary(self) -> dict:
        """Accuracy before and after, forgetting, the teachers' reference, and the learning curves (PNG)."""
        from agents.training.report import summary

        out = summary(self.state, self.dir, self.config.task, self.config.general_task, self.config.signals)
        return out | ({"compute": self.ledger.to_json()} if self.ledger is not None else {})


def _jsonable(config: TrainConfig) -> dict:
    from dataclasses import asdict

    return asdict(config)
