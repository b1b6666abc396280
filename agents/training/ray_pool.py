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
stored exactly once.

Test hook: ``TOKENTREE_RAY_KILL_AFTER=N`` makes the first actor exit (``os._exit``) after its N-th episode.

Started here, Ray runs in-process and on loopback only (``127.0.0.1``; no dashboard; a small object store).
``ray_address`` joins an existing cluster instead (see ``docs/scale-out.md``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tokentree_env.errors import ConfigError

KILL_HOOK = "TOKENTREE_RAY_KILL_AFTER"
OBJECT_STORE_BYTES = 256 * 2**20
"""The object store of a Ray instance started here (Ray's default reserves 7 GB)."""


@dataclass(frozen=True)
class RayResources:
    """Where self-play actors run: how many, and the CPUs and GPUs each one reserves."""

    actors: int
    """0: as many as the cluster's CPUs hold."""
    cpus: float = 1.0
    gpus: float = 0.0


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
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=num_cpus,
             object_store_memory=OBJECT_STORE_BYTES, log_to_driver=False)


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

    def __init__(self, env_kwargs: dict, primary: str, lora: bool, kill_after: int | None = None) -> None:
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
        self.kill_after, self.played = kill_after, 0

    def play(self, job, weights: dict, trees: list[dict], chunk: Sequence[tuple[int, str, Sequence[int]]]):
        """Play ``chunk`` with ``weights`` (the primary after ``job.primary_version`` rounds) from ``trees``;
        return its records and its prompts' trees."""
        from agents.training.selfplay import play_episodes

        if self.version != job.primary_version:
            self.lm.model.load_state_dict(weights)
            self.primary.mark_updated()
            self.primary.version = self.version = job.primary_version
        if trees:
            self.env.load_trees(trees, merge=False)
        records = []
        for record in play_episodes(self.env, chunk, job):
            records.append(record)
            self.played += 1
            if self.kill_after is not None and self.played >= self.kill_after:
                os._exit(1)  # the documented test hook: die mid-chunk
        return records, self.env.export_trees([prompt for _, prompt, _ in chunk])


class RaySelfPlayPool:
    """Ray actors playing chunks of prompts; :meth:`play` yields ``(records, trees)`` chunk by chunk."""

    def __init__(self, resources: RayResources, env_kwargs: dict, primary: str, lora: bool,
                 address: str | None = None, chunk_size: int = 8) -> None:
        import ray

        connect(address, num_cpus=None if address or not resources.actors else max(1, int(resources.actors * resources.cpus)))
        if not resources.actors:
            resources = RayResources(max(1, int(ray.cluster_resources().get("CPU", 1) // resources.cpus)),
                                     resources.cpus, resources.gpus)
        _check_fits(resources, ray.cluster_resources())
        self.resources, self.chunk_size = resources, chunk_size
        self._remote = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus)(SelfPlayActor)
        self._spec = (env_kwargs, primary, lora)
        kill = os.environ.get(KILL_HOOK)
        self.actors = [self._new_actor(int(kill) if kill and i == 0 else None) for i in range(resources.actors)]
        self.replaced = 0

    def _new_actor(self, kill_after: int | None = None):
        return self._remote.options(max_restarts=0, max_concurrency=1).remote(*self._spec, kill_after)

    def play(self, job, items: Sequence[tuple[int, str, Sequence[int]]], *, lm, env) -> Iterator[tuple[list, list]]:
        """Each chunk's records and trees as soon as it is done; a chunk whose actor died is played again."""
        import ray
        from ray.exceptions import RayActorError

        from agents.training.selfplay import prompts_per_chunk

        weights = ray.put({k: v.detach().cpu() for k, v in lm.model.state_dict().items()})
        size = prompts_per_chunk(len(items), len(self.actors), self.chunk_size)
        chunks = [list(items[i:i + size]) for i in range(0, len(items), size)]
        idle, running = list(self.actors), {}
        while chunks or running:
            while chunks and idle:
                actor, chunk = idle.pop(0), chunks.pop(0)
                trees = env.export_trees([p for _, p, _ in chunk if p in env.unwrapped.store])
                running[actor.play.remote(job, weights, trees, chunk)] = (actor, chunk)
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, chunk = running.pop(ready[0])
            try:
                records, trees = ray.get(ready[0])
            except RayActorError:
                self.actors.remove(actor)
                actor = self._new_actor()
                self.actors.append(actor)
                self.replaced += 1
                chunks.insert(0, chunk)
            else:
                yield records, trees
            idle.append(actor)

    def close(self) -> None:
        """Stop the actors (the Ray instance stays up for the session that started it)."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
