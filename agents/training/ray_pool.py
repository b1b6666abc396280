"""Self-play on Ray (``TrainConfig.backend="ray"``): actors that keep their models and trees loaded, one driver.

The shape of muzero-general and the RL-for-LLM systems on Ray (OpenRLHF, veRL): a single controller, the
training loop's process, is the learner and the episode store's only writer; self-play actors play chunks of
prompts. Nothing travels through a shared disk:

- the primary's new weights go to the actors through Ray's object store (one ``ray.put`` per iteration);
- each chunk carries its prompts' trees as the driver has them (``env.export_trees``), and the actor sends the
  trees back the same way; the driver takes them over with ``env.load_trees`` (the foundations' exact rule).

A chunk's episodes depend only on its trees, the primary and the seeds, so the episodes are the same as the
in-process and process-pool backends play (tested). An actor that dies mid-chunk is replaced and its chunk is
played again on another actor; its records reach the store only from a finished chunk, so every episode is
stored exactly once. Nothing waits or retries without bound: a chunk that kills its actor ``max_chunk_retries``
times, more than ``max_replacements`` lost actors, or no chunk finishing within ``wait_s`` seconds raise
:class:`RaySelfPlayError`, naming what failed.

Started here, Ray runs in-process and on loopback only (``127.0.0.1``; no dashboard; a small object store), and
the node's address is checked after the start: anything but ``127.0.0.1`` stops the run. ``ray_address`` joins an
existing cluster instead (see ``docs/scale-out.md``), whose addresses are its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tokentree_env.errors import ConfigError, TokenTreeError

OBJECT_STORE_BYTES = 256 * 2**20
"""The object store of a Ray instance started here (Ray's default reserves 7 GB)."""


@dataclass(frozen=True)
class RayResources:
    """Where self-play actors run: how many, and the CPUs and GPUs each one reserves."""

    actors: int
    """0: as many as the cluster's CPUs hold."""
    cpus: float = 1.0
    gpus: float = 0.0


class RaySelfPlayError(TokenTreeError, RuntimeError):
    """Self-play on Ray could not go on: a chunk killed its actor again and again, too many actors were lost, or no
    chunk finished in time. The message names the chunk's prompts or the actors."""


LOOPBACK = "127.0.0.1"
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray (2.60) resolves a node address of 127.0.0.1 to the machine's network address, and its servers then listen
on every interface, unless this switch is "0" (Ray's single-machine mode): then the node is 127.0.0.1 and every
Ray server binds to it. ``tests/test_ray.py`` checks every Ray process's sockets."""


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address``, or start one in this process bound to loopback only (never ``ray
    start``, which listens on the machine's address). Does nothing when Ray is already initialised."""
    if not address:
        os.environ[LOOPBACK_SWITCH] = "0"  # read by Ray at import, and by every Ray process started from here
    try:
        import ray
        from ray._private import ray_constants
    except ImportError as error:  # pragma: no cover - the extra is missing
        raise ConfigError("backend='ray' needs Ray: pip install 'tokentree[ray]'") from error
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the switch was set
    ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, num_cpus=num_cpus,
             object_store_memory=OBJECT_STORE_BYTES, log_to_driver=False)
    check_loopback([node["NodeManagerAddress"] for node in ray.nodes()], ray.shutdown)


def check_loopback(addresses: Sequence[str], stop) -> None:
    """Refuse a Ray started here whose nodes are not on 127.0.0.1 (a Ray release that rewrites the address, or a
    switch that no longer holds): ``stop`` it and raise, naming the addresses."""
    wrong = sorted({a for a in addresses if a != LOOPBACK})
    if wrong:
        stop()
        raise ConfigError(f"Ray started on {wrong}, not {LOOPBACK}: its servers would listen beyond this machine. "
                          "Stopped it. Use the Ray version pinned in the `ray` extra, or join a cluster you run "
                          "yourself with ray_address")


def _check_fits(resources: RayResources, cluster: dict) -> None:
    """Refuse a pool the cluster cannot hold at once: Ray would queue the extra actors forever, and self-play
    would wait on them without a word (e.g. a Ray session started earlier with fewer CPUs)."""
    for name, each in (("CPU", resources.cpus), ("GPU", resources.gpus)):
        need, have = resources.actors * each, cluster.get(name, 0.0)
        if need > have + 1e-9:
            raise ConfigError(f"{resources.actors} self-play actors need {need:g} {name}s, but the Ray cluster has "
                              f"{have:g}: use fewer actors or fewer {name}s per actor, or a larger cluster")


class SelfPlayActor:
    """One self-play worker: its env (teachers, judge, primary) built once; its trees kept between chunks."""

    def __init__(self, env_kwargs: dict, primary: str, lora: bool) -> None:
        import torch

        from agents.quiet import quiet_libraries
        from agents.training.checkpoint import load_primary
        from tokentree_env.env import TokenTreeEnv
        from tokentree_env.teachers import HFTeacher

        torch.set_num_threads(1)
        quiet_libraries()
        self.lm = load_primary(primary, lora)
        self.primary = HFTeacher(self.lm, name="primary")
        self.env = TokenTreeEnv(primary=self.primary, **env_kwargs)
        self.version: int | None = None

    def play(self, job, weights: dict, trees: list[dict], chunk: Sequence[tuple[int, str, Sequence[int]]]):
        """Play ``chunk`` with ``weights`` (the primary after ``job.primary_version`` rounds) from ``trees``;
        return its records and its prompts' trees."""
        from agents.training.selfplay import play_episodes, with_cpu_seconds

        if self.version != job.primary_version:
            self.lm.model.load_state_dict(weights)
            self.primary.mark_updated()
            self.primary.version = self.version = job.primary_version
        if trees:
            self.env.load_trees(trees, merge=False)
        records = [self.played(record) for record in with_cpu_seconds(play_episodes(self.env, chunk, job))]
        return records, self.env.export_trees([prompt for _, prompt, _ in chunk])

    def played(self, record: dict) -> dict:
        """Called with each episode as it finishes (a subclass may watch the chunk's progress)."""
        return record


class RaySelfPlayPool:
    """Ray actors playing chunks of prompts; :meth:`play` yields ``(records, trees)`` chunk by chunk.

    Args:
        max_chunk_retries: how often one chunk may be played again after its actor died, before the run stops.
        max_replacements: how many lost actors are replaced in all (default: twice the actors).
        wait_s: the longest wait for any chunk to finish.
    """

    actor_class = SelfPlayActor
    """The actor each worker runs (a subclass may watch episodes: :meth:`SelfPlayActor.played`)."""

    def __init__(self, resources: RayResources, env_kwargs: dict, primary: str, lora: bool,
                 address: str | None = None, chunk_size: int = 8, *, max_chunk_retries: int = 2,
                 max_replacements: int | None = None, wait_s: float = 3600.0) -> None:
        import ray

        connect(address, num_cpus=None if address or not resources.actors else max(1, int(resources.actors * resources.cpus)))
        if not resources.actors:
            resources = RayResources(max(1, int(ray.cluster_resources().get("CPU", 1) // resources.cpus)),
                                     resources.cpus, resources.gpus)
        _check_fits(resources, ray.cluster_resources())
        self.resources, self.chunk_size = resources, chunk_size
        self.max_chunk_retries, self.wait_s = max_chunk_retries, wait_s
        self.max_replacements = 2 * resources.actors if max_replacements is None else max_replacements
        self._remote = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus)(self.actor_class)
        self._spec = (env_kwargs, primary, lora)
        self.actors = [self._new_actor() for _ in range(resources.actors)]
        self.replaced = 0

    def _new_actor(self):
        return self._remote.options(max_restarts=0, max_concurrency=1).remote(*self._spec)

    def play(self, job, items: Sequence[tuple[int, str, Sequence[int]]], *, lm, env) -> Iterator[tuple[list, list]]:
        """Each chunk's records and trees as soon as it is done; a chunk whose actor died is played again."""
        import ray
        from ray.exceptions import RayActorError

        from agents.training.selfplay import prompts_per_chunk

        weights = ray.put({k: v.detach().cpu() for k, v in lm.model.state_dict().items()})
        size = prompts_per_chunk(len(items), len(self.actors), self.chunk_size)
        chunks = [list(items[i:i + size]) for i in range(0, len(items), size)]
        idle, running, failures = list(self.actors), {}, {}
        while chunks or running:
            while chunks and idle:
                actor, chunk = idle.pop(0), chunks.pop(0)
                trees = env.export_trees([p for _, p, _ in chunk if env.has_tree(p)])
                running[actor.play.remote(job, weights, trees, chunk)] = (actor, chunk)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=self.wait_s)
            if not ready:
                raise RaySelfPlayError(f"no self-play chunk finished in {self.wait_s:g} s ({len(running)} running on "
                                       f"{len(self.actors)} actors): an actor may hang; the stored episodes are kept, "
                                       "resume the run to play the rest")
            actor, chunk = running.pop(ready[0])
            try:
                records, trees = ray.get(ready[0])
            except RayActorError:
                actor = self._replace(actor, chunk, failures)
                chunks.insert(0, chunk)
            else:
                yield records, trees
            idle.append(actor)

    def _replace(self, actor, chunk, failures: dict):
        """A new actor in place of one that died playing ``chunk``, within the bounds on retries and replacements."""
        key = tuple(index for index, _, _ in chunk)
        failures[key] = failures.get(key, 0) + 1
        prompts = [prompt for _, prompt, _ in chunk]
        if failures[key] > self.max_chunk_retries:
            raise RaySelfPlayError(f"the chunk of prompts {prompts[:3]}{'...' if len(prompts) > 3 else ''} killed its "
                                   f"actor {failures[key]} times; it is not played again (max_chunk_retries="
                                   f"{self.max_chunk_retries}). Look for what these prompts do to a worker (memory?)")
        if self.replaced >= self.max_replacements:
            raise RaySelfPlayError(f"{self.replaced} self-play actors were lost already (max_replacements="
                                   f"{self.max_replacements}); the cluster is failing, so the run stops")
        self.actors.remove(actor)
        replacement = self._new_actor()
        self.actors.append(replacement)
        self.replaced += 1
        return replacement

    def close(self) -> None:
        """Stop the actors (the Ray instance stays up for the session that started it)."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
