"""Self-play on several worker processes: one env per worker, prompts dealt out in small chunks.

A prompt's episodes depend only on its own tree (loaded from the last checkpoint), the primary
(loaded from the same checkpoint) and the agent's seed for ``(seed, iteration, prompt index, repeat)``;
trees are per prompt, an iteration's prompts are distinct, and a prompt's repeats are played one after
another by the same worker. So dealing the prompts out to workers plays the same episodes as playing
them in the loop's process, with each core busy. Each worker returns its chunk's episode records and
saves the chunk's trees; the loop stores the records (it is the episode store's only writer) and takes
the trees over.

Pytorch runs one thread per worker: two processes of one thread each use two cores far better
than one process of two threads on models this small (per-call overhead dominates).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from tokentree_env.errors import TokenTreeError


class SelfPlayWorkerError(TokenTreeError, RuntimeError):
    """A self-play worker process died (most often: a script without a ``__main__`` guard)."""


@dataclass(frozen=True)
class SelfPlayJob:
    """What a worker needs to play one iteration's prompts: the search, its seeds, and (for worker processes) how to
    build the env, the primary and the trees."""

    agent: str = "mcts:2"
    """The self-play search spec (``make_agent``; :attr:`TrainConfig.search_spec`)."""
    settings: tuple[tuple[str, object], ...] = ()
    """The search settings set beside the spec (``make_agent`` keywords, sorted pairs)."""
    seed: int = 0
    iteration: int = 0
    batch: int = 1
    """Episodes played in lockstep (one batched forward per model per step for all of them; 1 = one at a time)."""
    coverage_first: bool = False
    """The teachers' verified greedy answers first; search only the prompts none of them solved (:func:`play_episodes`)."""
    unsolved: str = "search"
    """Coverage-first only: what the prompts no teacher solved get (``TrainConfig.unsolved``)."""
    unsolved_samples: int = 8
    """``unsolved="samples"``: samples per prompt at most, round-robin over the teachers."""
    sample_temperature: float = 1.0
    round_budget: bool = False
    """A round budget may stop the iteration mid-way: trees are prepared a chunk of prompts at a time."""
    env_kwargs: dict = field(default_factory=dict)
    """``TokenTreeEnv`` arguments (teachers, judge, task, split, ...), without the primary (worker processes)."""
    primary: str = ""
    """The primary to play with: the last checkpoint's ``save_pretrained`` folder, or a model spec."""
    primary_version: int = 0
    """How many training rounds the primary has had (so slates record which primary made them)."""
    trees: str | None = None
    """The last checkpoint's tree folder (``None`` before the first)."""
    out: str = ""
    """Folder the worker saves its chunks' trees in."""


_WORKER: dict = {}  # this worker process's env, built for one job and reused for its chunks


def _init_worker(parent: int) -> None:
    import torch

    from agents.quiet import quiet_libraries

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the loop's process stops us
    torch.set_num_threads(1)
    quiet_libraries()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Stop this worker when the loop's process is gone (killed: ``--resume`` replays from the store),
    instead of playing on, unseen, on cores the next run needs."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _env_for(job: SelfPlayJob):
    """The worker's env for ``job``: built at the job's first chunk (the previous job's is closed)."""
    if _WORKER.get("job") != job:
        from tokentree_env.env import TokenTreeEnv
        from tokentree_env.models import load_model
        from tokentree_env.teachers import HFTeacher

        if "env" in _WORKER:
            _WORKER["env"].close()
        primary = HFTeacher(load_model(job.primary), name="primary")
        primary.version = job.primary_version
        _WORKER.update(job=job, env=TokenTreeEnv(primary=primary, **job.env_kwargs))
    return _WORKER["env"]


def play_episodes(env, items: Sequence[tuple[int, str, Sequence[int]]], job: SelfPlayJob) -> Iterator[dict]:
    """Self-play episodes of ``items`` (prompt index, prompt, repeats to play) on ``env``, one record each, as they
    finish. A prompt's repeats are played one after another on its tree; ``job.batch`` episodes of distinct prompts
    advance in lockstep (:func:`agents.play.play_many`; 1: one at a time).

    The prompts' trees are built first in batches (``env.prepare``; what a prompt's rows cost is charged to its
    first episode). Each episode's agent is seeded by ``(seed, iteration, prompt index, repeat)``, so an episode does
    not depend on where it is played, and a prompt's repeats differ (self-play searches get root noise,
    :func:`agents.evaluation.make_agent`).
    """
    import copy

    from agents.evaluation import make_agent
    from agents.training.sampled import sample_unsolved

    agent = make_agent(job.agent, seed=job.seed, self_play=True, **dict(job.settings))
    agents = [copy.deepcopy(agent) for _ in range(max(1, job.batch))]
    if not job.coverage_first:  # under a round budget a lockstep batch at a time: no tree for a prompt never played
        step = max(1, job.batch) if job.round_budget else max(1, len(items))
        roots = step <= max(1, job.batch)  # the roots of one lockstep batch at once, not of a whole round's prompts
        for start in range(0, len(items), step):
            env.unwrapped.prepare([prompt for _, prompt, _ in items[start:start + step]], roots=roots)
            yield from _search(env, agents, items[start:start + step], job)
        return
    for start in range(0, len(items), COVERAGE_CHUNK):  # a chunk at a time (a round budget may stop within one)
        chunk = items[start:start + COVERAGE_CHUNK]
        env.unwrapped.prepare([prompt for _, prompt, _ in chunk])
        left = yield from _teachers_first(env.unwrapped, chunk, job)
        if job.unsolved == "search":
            yield from _search(env, agents, left, job)
        elif job.unsolved == "samples":
            yield from sample_unsolved(env.unwrapped, left, job)


COVERAGE_CHUNK = 32
"""Prompts coverage-first self-play prepares, answers with the teachers and searches at a time."""



def _search(env, agents, items, job: SelfPlayJob) -> Iterator[dict]:
    """Search episodes of ``items`` (prompt index, prompt, repeats), in lockstep batches of ``len(agents)``."""
    from agents.play import play_many

    for repeats in sorted({tuple(r) for _, _, r in items}):  # items that ask for the same repeats play together
        group = [(index, prompt) for index, prompt, r in items if tuple(r) == repeats]
        for record in play_many(env.unwrapped, agents, group, seed=job.seed, iteration=job.iteration,
                                repeats=repeats):
            yield record | {"iteration": job.iteration}


def _teachers_first(env, items, job):
    """Coverage-first self-play's first move: the teachers' greedy answers to the prompts (their trees' reference
    answers, already made in one batch by ``prepare``), verified. A prompt some teacher solved gets one record of
    them (``source="teachers"``, every distinct verified answer in ``verified_answers``, charged the preparation of
    its prompt); the prompts none solved are left to the search or the samples. Returns those. With neither
    (``job.unsolved == "none"``) an unsolved prompt gets its record too, unverified, so its answers are charged."""
    left = []
    for index, prompt, repeats in items:
        answers = env.reference_answers(prompt)
        right = [a for a in answers if env.verify(prompt, env.decode(a)) >= 0.5]
        if not right and job.unsolved != "none":
            left.append((index, prompt, repeats))
            continue
        cost = env.claim_preparation(prompt)
        best = min(right or answers or [[]], key=len)
        yield {"agent": "teachers-greedy", "source": "teachers", "prompt": prompt, "prompt_index": index,
                "repeat": min(repeats), "completion": env.decode(best), "tokens": list(best),
                "prompt_ids": env.prompt_ids(prompt), "hard_reward": float(bool(right)),
                "episode_return": float(bool(right)), "records": [],
                "verified_answers": [list(a) for a in dict.fromkeys(map(tuple, right))], "steps": 0,
                "forwarded_tokens": sum(c["forwarded_tokens"] for c in cost.values()),
                "forwarded_by_model": {m: c["forwarded_tokens"] for m, c in cost.items()},
                "model_calls": sum(c["forward_calls"] for c in cost.values()),
                "generated_tokens": sum(c["generated_tokens"] for c in cost.values()), "reward_terms": {},
                "terminal_reason": None, "seconds": 0.0, "weightage_update": {}, "iteration": job.iteration}
    return left


def with_cpu_seconds(records: Iterator[dict]) -> Iterator[dict]:
    """Each record with ``cpu_seconds``: this process's CPU time spent since the previous one (its episode's share of
    the generation compute; lockstep episodes that finish together split it)."""
    last, waiting = time.process_time(), []
    for record in records:
        waiting.append(record)
        now = time.process_time()
        for r in waiting:
            r["cpu_seconds"] = (now - last) / len(waiting)
        yield from waiting
        waiting, last = [], now


def play_chunk(job: SelfPlayJob, chunk: Sequence[tuple[int, str, Sequence[int]]]) -> list[dict]:
    """Play ``chunk`` in this process; save the chunk's trees in ``job.out``. Each record carries the CPU seconds
    this worker spent on it (:func:`with_cpu_seconds`); the chunk's set-up (the env's models, loaded at a job's first
    chunk, and its trees) is charged to its first episode."""
    started = time.process_time()
    env = _env_for(job)
    prompts = [prompt for _, prompt, _ in chunk]
    if job.trees is not None:
        env.load_trees(job.trees, merge=False, prompts=prompts)
    records = list(with_cpu_seconds(play_episodes(env, chunk, job)))
    if records:  # the chunk's set-up belongs to its episodes too
        records[0]["cpu_seconds"] += (time.process_time() - started) - sum(r["cpu_seconds"] for r in records)
    env.save_trees(job.out, prompts)
    return records


class SelfPlayPool:
    """``workers`` processes playing chunks of prompts; :meth:`play` yields records chunk by chunk.

    The processes (spawned, one torch thread each) live as long as the pool, so the libraries are
    imported once; each job's models are loaded once per worker.
    """

    def __init__(self, workers: int, chunk_size: int = 8) -> None:
        self.workers, self.chunk_size = workers, chunk_size
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(os.getpid(),))

    def play(self, job: SelfPlayJob, items: Sequence[tuple[int, str, Sequence[int]]],
             **_: object) -> Iterator[tuple[list[dict], str]]:
        """Each chunk's records (and the folder its trees were saved in) as soon as it is done (not in prompt
        order); at most two chunks per worker are in flight, so a crash loses little unstored work."""
        os.makedirs(job.out, exist_ok=True)
        size = prompts_per_chunk(len(items), self.workers, self.chunk_size)
        chunks = [list(items[i:i + size]) for i in range(0, len(items), size)]
        pending: set[Future] = set()
        while chunks or pending:
            while chunks and len(pending) < 2 * self.workers:
                pending.add(self._pool.submit(play_chunk, job, chunks.pop(0)))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    yield future.result(), job.out
                except BrokenProcessPool as error:
                    raise SelfPlayWorkerError(
                        "a self-play worker process died. Workers are spawned: a script that runs the training "
                        "loop with workers != 1 must do so under `if __name__ == \"__main__\":`; or pass "
                        "workers=1 (TrainConfig) / --workers 1 to play in the loop's own process") from error

    def close(self) -> None:
        """Stop the workers now: a stopped run does not wait for chunks in flight (their episodes were not
        stored, so ``--resume`` plays them again)."""
        stop_workers(self._pool)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate a process pool's workers now and cancel what is queued: ``shutdown`` alone waits for every
    chunk in flight, so Ctrl-C would hang for a chunk's length (and SIGKILL would orphan the workers)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):  # None once shut down
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def prompts_per_chunk(items: int, workers: int, largest: int) -> int:
    """Prompts per chunk: at most ``largest``, and small enough that every worker gets about two chunks (a
    short iteration still keeps every core busy)."""
    return max(1, min(largest, -(-items // (2 * workers))))


def default_workers() -> int:
    """Self-play processes by default: one per core this process may use, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))
