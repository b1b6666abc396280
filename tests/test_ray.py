"""Specification of self-play on Ray: actors play what the other backends play, a killed actor loses and
duplicates nothing, and Ray never leaves loopback.

One Ray instance serves the whole session, started in-process on 127.0.0.1 (no ``ray start``: it rewrites the
address), without the dashboard and with a small object store. Without Ray installed these tests skip, except
where ``TOKENTREE_REQUIRE_RAY=1`` (set by ``.ci/run``): there a missing Ray is a failure.
"""

import importlib.util
import os
import sys

import pytest

from agents.training import TrainConfig, TrainingRun

pytestmark = pytest.mark.integration

if importlib.util.find_spec("ray") is None:
    if os.environ.get("TOKENTREE_REQUIRE_RAY") == "1":
        raise RuntimeError("TOKENTREE_REQUIRE_RAY=1 but Ray is not installed: pip install '.[ray]'")
    pytest.skip("Ray not installed (pip install '.[ray]')", allow_module_level=True)

from agents.training.ray_pool import RaySelfPlayPool, SelfPlayActor

PROMPTS, REPEATS = 6, 2


@pytest.fixture(scope="session")
def ray_local():
    """The session's Ray: in this process, loopback only, 2 CPUs, a 256 MiB object store."""
    import ray

    from agents.training.ray_pool import connect

    connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def _config(folder, **kw) -> TrainConfig:
    base = {"output_dir": str(folder), "iterations": 1, "prompts_per_iteration": PROMPTS, "repeats": REPEATS, "epochs": 1,
                "eval_size": 8, "validation_size": 8, "simulations": 2, "max_new_tokens": 14, "selfplay_batch": 2,
                "teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama")}
    return TrainConfig(**(base | kw))


def _episodes(run: TrainingRun) -> dict:
    """Each stored episode's tokens and, rounded, the panel's weights at every step (who was writing)."""
    return {(r["iteration"], r["prompt_index"], r["repeat"]): (r["tokens"], [
        [round(w, 4) for w in step["panel_weights"]] for step in r["records"]]) for r in run.store}


@pytest.fixture(scope="module")
def ray_run(ray_local, tmp_path_factory):
    """A Ray-backed training iteration with 2 actors."""
    run = TrainingRun(_config(tmp_path_factory.mktemp("ray") / "run", backend="ray", workers=2))
    run.run()
    return run


def test_a_ray_backed_iteration_with_two_actors_trains_and_stores_every_episode_once(ray_run):
    records = list(ray_run.store)
    assert len(records) == PROMPTS * REPEATS == len(_episodes(ray_run))
    assert ray_run.state["completed"] == 1 and len(ray_run.state["history"]) == 1
    assert all(r["forwarded_by_model"] for r in records)  # each episode carries its own model work
    assert (ray_run.dir / "checkpoints" / "iter-0" / "trees").is_dir()


def test_in_process_process_pool_and_ray_backends_play_the_same_episodes(ray_run, tmp_path):
    local = TrainingRun(_config(tmp_path / "one", workers=1))
    local.run()
    pool = TrainingRun(_config(tmp_path / "two", workers=2))
    pool.run()
    assert _episodes(local) == _episodes(pool) == _episodes(ray_run)
    trees = sorted(p.name for p in (tmp_path / "one" / "checkpoints" / "iter-0" / "trees").iterdir())
    assert trees == sorted(p.name for p in (ray_run.dir / "checkpoints" / "iter-0" / "trees").iterdir())


class DiesOnce(SelfPlayActor):
    """The first actor to finish its third episode exits mid-chunk (once per marker file: replacements live)."""

    marker = ""

    def played(self, record: dict) -> dict:
        self.count = getattr(self, "count", 0) + 1
        if self.count == 3:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return record
            os._exit(1)
        return record


class DiesOnPrompt(SelfPlayActor):
    """Every actor exits when it plays the prompt of index 0."""

    def played(self, record: dict) -> dict:
        if record["prompt_index"] == 0:
            os._exit(1)
        return record


def _with_actor(monkeypatch, cls):
    """Self-play actors of ``cls``, a test class sent to the actors by value (they cannot import the tests)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(RaySelfPlayPool, "actor_class", cls)


def test_an_actor_killed_mid_chunk_has_its_chunk_replayed_elsewhere_and_every_episode_stored_once(
        ray_local, ray_run, tmp_path, monkeypatch):
    _with_actor(monkeypatch, type("DiesOnceHere", (DiesOnce,), {"marker": str(tmp_path / "died")}))
    run = TrainingRun(_config(tmp_path / "run", backend="ray", workers=2))
    run.run()
    assert run._pool.replaced == 1
    keys = [(r["iteration"], r["prompt_index"], r["repeat"]) for r in run.store]
    assert len(keys) == len(set(keys)) == PROMPTS * REPEATS
    assert _episodes(run) == _episodes(ray_run)


def test_a_chunk_that_kills_its_actor_again_and_again_stops_the_run_naming_it(ray_local, tmp_path, monkeypatch):
    from agents.training.ray_pool import RaySelfPlayError

    _with_actor(monkeypatch, DiesOnPrompt)
    run = TrainingRun(_config(tmp_path / "run", backend="ray", workers=2))
    with pytest.raises(RaySelfPlayError, match="killed its actor 3 times"):
        run.run()
    assert run._pool.replaced == 2  # max_chunk_retries: played three times in all


def test_every_ray_process_listens_and_talks_on_loopback_only(ray_local):
    import psutil

    @ray_local.remote(num_cpus=1)
    class Probe:
        def pid(self) -> int:
            return os.getpid()

    probe = Probe.remote()
    actor_pid = ray_local.get(probe.pid.remote())
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    assert actor_pid in {p.pid for p in processes}, "the actor must run under this session's own Ray"
    sockets = []
    for process in processes:
        try:
            sockets += [(process.name(), c) for c in process.net_connections(kind="inet")]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert sockets, "Ray opened no TCP sockets: the check would prove nothing"
    def loopback(ip: str) -> bool:  # 127.0.0.1, also as an IPv6 socket's IPv4-mapped address
        return ip.removeprefix("::ffff:") == "127.0.0.1"

    outside = [(name, c.laddr, c.raddr) for name, c in sockets
               if not loopback(c.laddr.ip) or (c.raddr and not loopback(c.raddr.ip))]
    assert not outside, f"Ray sockets off loopback: {outside}"
    ray_local.kill(probe)
