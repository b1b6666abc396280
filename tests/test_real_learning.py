"""The real learning run's driver (issue 37), on the zoo's models so that it runs anywhere: four arms a seed, the
controls matched round by round to the search's weighted tokens of every model, the probe every round, resumable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.compute import weighted_tokens
from benchmarks.real_learning import ARMS, RealLearningConfig, _recover_killed, run

TINY = {"iterations": 2, "prompts_per_iteration": 3, "repeats": 1, "lora": False, "max_new_tokens": 16,
        "eval_size": 10, "epochs": 1, "learning_rate": 2e-3, "validation_size": 10, "selfplay_batch": 2,
        "general_task": "reverse"}


def test_every_arm_of_every_seed_runs_matched_to_the_search_and_a_rerun_resumes(tmp_path):
    cfg = RealLearningConfig(task="chain3", seeds=2, search="mcts:2", loop=TINY, workers=1, pilot_prompts=2,
                             models={"teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "primary": "zoo:primary"},
                             out=str(tmp_path / "learning"))
    summary = run(cfg, progress=lambda _: None)
    runs = json.loads((tmp_path / "learning" / "learning.json").read_text())["runs"]
    assert sorted((r["arm"], r["seed"]) for r in runs) == sorted((a, s) for a in ARMS for s in range(2))
    for r in runs:  # the probe and the task after every round; each arm measured in its own process
        assert len(r["history"]) == 2 and all("general_accuracy" in h for h in r["history"])
        assert r["attempts"] == 1 and r["peak_memory_gb"] > 0.1  # a process with torch and models: over 100 MB
    for search in (r for r in runs if r["arm"] == "search"):
        params, ref = search["parameters"], search["reference_parameters"]
        for r in (r for r in runs if r["seed"] == search["seed"] and r["arm"] != "search"):
            if r["arm"] == "mixture-greedy":  # the panel without search: each round stops at the search's tokens,
                stored = [[weighted_tokens(e, params, ref) for e in h] for h in _rounds(tmp_path, r)]
                assert all(h["round_stopped"] for h in r["history"])
                assert r["config"]["replay_rows"] == 1  # replay as the search's rounds have it (3 prompts x 0.5)
                for i, (episodes, budget) in enumerate(zip(stored, search["weighted_tokens"], strict=True)):
                    assert sum(episodes[:-1]) < budget <= sum(episodes)  # the last stored episode crossed it
                    unstored = r["history"][i]["round_unstored"]["forwarded_by_model"]
                    assert r["weighted_tokens"][i] == pytest.approx(sum(episodes)
                                                                    + weighted_tokens(unstored, params, ref))
                    assert r["weighted_tokens"][i] <= budget + 4 * max(episodes)  # no pool prepared ahead of play
            else:
                spent = [h["weighted_tokens"] for h in r["history"]]
                assert all(s >= b > 0 for s, b in zip(spent, search["weighted_tokens"], strict=True))
    assert set(summary["paired"]) == {f"search - {a}" for a in ARMS[1:]}
    assert summary["targets"]["the search's probe within its start's interval"] == summary["probe"]["search"]["within"]
    assert (tmp_path / "learning" / "learning.png").stat().st_size > 0
    saved = {p.name: p.stat().st_mtime for p in (tmp_path / "learning" / "runs").glob("*.json")}
    run(cfg, progress=lambda _: None)
    assert {p.name: p.stat().st_mtime for p in (tmp_path / "learning" / "runs").glob("*.json")} == saved


def _rounds(tmp_path, r) -> list[list[dict]]:
    """The mixture arm's stored episodes, per round: each model's forwarded tokens."""
    lines = (tmp_path / "learning" / "runs" / r["name"] / "episodes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [[e["forwarded_by_model"] for e in records if e["iteration"] == i] for i in range(len(r["history"]))]


def test_a_config_declared_once_is_refused_under_another(tmp_path):
    from tokentree_env.errors import ConfigError

    cfg = RealLearningConfig(task="chain3", seeds=1, loop=TINY, workers=1, pilot_prompts=2,
                             models={"teachers": ("zoo:teacher-qwen2",), "primary": "zoo:primary"},
                             out=str(tmp_path / "learning"))
    from benchmarks.learning_arms import declare
    from benchmarks.real_learning import learning_config

    declare(learning_config(cfg))
    with pytest.raises(ConfigError, match="another configuration"):
        declare(learning_config(RealLearningConfig(**{**cfg.__dict__, "search": "mcts:4"})))


def test_an_arm_stopped_mid_run_resumes_where_it_stopped_and_counts_both_attempts(tmp_path):
    """SIGTERM while the search arm trains its first round: the rerun plays nothing twice, finishes every arm, and the
    stopped attempt's wall time counts (the test hook of :mod:`agents.training.stopping` holds the arm in training)."""
    out, phases = tmp_path / "learning", tmp_path / "phases"
    script = (
        "import sys\n"
        "from agents.training.stopping import sigterm_as_interrupt\n"
        "from benchmarks.real_learning import RealLearningConfig, run\n"
        f"cfg = RealLearningConfig(task='chain3', seeds=1, search='mcts:2', loop={TINY!r}, workers=1, pilot_prompts=2,"
        f" models={{'teachers': ('zoo:teacher-qwen2', 'zoo:teacher-llama'), 'primary': 'zoo:primary'}}, out={str(out)!r})\n"
        "try:\n"
        "    with sigterm_as_interrupt():\n"
        "        run(cfg, progress=lambda _: None)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n")
    env = os.environ | {"TOKENTREE_PHASE_FILE": str(phases), "TOKENTREE_PHASE_WAIT": "training=120"}
    log = tmp_path / "stderr.log"  # a file, not a pipe: a full pipe would block the run while it is waited on
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=Path(__file__).parents[1],
                            stderr=log.open("w"), text=True)
    deadline = time.time() + 300
    while not (phases.exists() and "training" in phases.read_text().split()):
        assert proc.poll() is None, f"the run ended before the search arm trained: {log.read_text()[-2000:]}"
        assert time.time() < deadline, "the search arm never reached training"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    runs = out / "runs"
    stopped = [json.loads(line) for line in (runs / "search-seed0.attempts.jsonl").read_text().splitlines()]
    assert len(stopped) == 1 and not (runs / "search-seed0.arm.json").exists()
    played = (runs / "search-seed0" / "episodes.jsonl").read_text().splitlines()
    assert len(played) == TINY["prompts_per_iteration"]  # round 0's self-play, stored before the stop

    cfg = RealLearningConfig(task="chain3", seeds=1, search="mcts:2", loop=TINY, workers=1, pilot_prompts=2,
                             models={"teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "primary": "zoo:primary"},
                             out=str(out))
    run(cfg, progress=lambda _: None)
    search = json.loads((runs / "search-seed0.arm.json").read_text())
    episodes = [json.loads(line) for line in (runs / "search-seed0" / "episodes.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in episodes].count(0) == TINY["prompts_per_iteration"]  # round 0 not played again
    assert len(search["history"]) == TINY["iterations"] and search["attempts"] == 2
    assert search["wall_seconds"] == pytest.approx(stopped[0]["wall_seconds"] + json.loads(
        (runs / "search-seed0.attempts.jsonl").read_text().splitlines()[1])["wall_seconds"])
    assert {json.loads(p.read_text())["arm"] for p in runs.glob("*.arm.json")} == set(ARMS)


def test_an_attempt_killed_outright_counts_from_its_last_heartbeat(tmp_path):
    """SIGKILL skips every ``finally``: the attempt's heartbeat (wall time and peak memory so far, rewritten whole)
    is what the next attempt finds, and it becomes the killed attempt's line, so the arm's totals still count it."""
    live, attempts = tmp_path / "search-seed0.attempt-live.json", tmp_path / "search-seed0.attempts.jsonl"
    script = ("import time\nfrom pathlib import Path\nfrom benchmarks.real_learning import _PeakMemory\n"
              f"sampler = _PeakMemory(Path({str(live)!r}), beat=0.2)\nblock = bytearray(50 * 2**20)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    deadline = time.time() + 60
    while not (live.exists() and json.loads(live.read_text())["wall_seconds"] > 0.5):
        assert proc.poll() is None and time.time() < deadline, "no heartbeat"
        time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=10)
    _recover_killed(live, attempts)
    [killed] = [json.loads(line) for line in attempts.read_text().splitlines()]
    assert killed["killed"] and killed["wall_seconds"] > 0.5 and killed["peak_memory_gb"] > 0.05  # the 50 MB block
    assert not live.exists()
    _recover_killed(live, attempts)  # nothing left to recover: nothing added
    assert len(attempts.read_text().splitlines()) == 1


@pytest.mark.parametrize("arm", ["sft-greedy", "rft"])
def test_a_control_stopped_after_a_round_goes_on_from_it_and_ends_as_an_unstopped_one(tmp_path, monkeypatch, arm):
    """A control keeps each finished round (its primary's LoRA adapter, its data and cursor): stopped in its second
    round's generation, the next attempt neither evaluates the start again nor regenerates the first round, and it ends
    with the same data, charges and accuracies as an attempt that was never stopped."""
    from dataclasses import replace

    import benchmarks.learning_controls as controls
    from agents.training import TrainingRun
    from agents.training.checkpoint import load_state
    from benchmarks.learning_arms import search_arm
    from benchmarks.real_learning import learning_config
    from tokentree_env.errors import ConfigError

    cfg = RealLearningConfig(task="chain3", seeds=1, search="mcts:2", loop={**TINY, "lora": True}, workers=1,
                             pilot_prompts=2, out=str(tmp_path / "search"),
                             models={"teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "primary": "zoo:primary"})
    search = search_arm(learning_config(cfg), 0, spec=cfg.search)
    unstopped = controls.control_arm(replace(learning_config(cfg), out=str(tmp_path / "unstopped")), 0, arm, search,
                                     by="tokens")

    stopped_cfg = replace(learning_config(cfg), out=str(tmp_path / "stopped"))
    generate = {"sft-greedy": "_greedy_records", "rft": "_rft_records"}[arm]
    real, calls, evaluations, stop = getattr(controls, generate), [], [], [2]

    class Stopped(Exception):
        pass

    def counted(*args, **kwargs):  # the first attempt stops in its second round's generation
        calls.append(1)
        if len(calls) == stop[0]:
            raise Stopped
        return real(*args, **kwargs)

    monkeypatch.setattr(controls, generate, counted)
    with pytest.raises(Stopped):
        controls.control_arm(stopped_cfg, 0, arm, search, by="tokens")
    calls.clear()
    stop[0] = None
    evaluate = TrainingRun.evaluate
    monkeypatch.setattr(TrainingRun, "evaluate", lambda self, *a, **k: evaluations.append(1) or evaluate(self, *a, **k))
    resumed = controls.control_arm(stopped_cfg, 0, arm, search, by="tokens")
    assert len(calls) == 1 and len(evaluations) == 1  # only the second round: generated, trained and measured
    for a, b in zip(unstopped["history"], resumed["history"], strict=True):
        assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
    assert resumed["baseline"] == unstopped["baseline"] and resumed["rft_right"] == unstopped["rft_right"]
    assert all(h["weighted_tokens"] > 0 for h in resumed["history"])  # each round generated under its budget
    folders = [tmp_path / out / "runs" / f"{arm}-tokens-seed0" for out in ("unstopped", "stopped")]
    assert _adapter(folders[0]) == _adapter(folders[1])  # the same primary, bit for bit
    kept = [{k: v for k, v in load_state(f)["control"].items() if k != "wall_seconds"} for f in folders]
    assert kept[0] == kept[1] and kept[1]["buffer"]  # the same data and cursor, kept with the rounds

    (tmp_path / "stopped" / "runs" / f"{arm}-tokens-seed0.json").unlink()  # killed after its last round
    assert controls.control_arm(stopped_cfg, 0, arm, search, by="tokens")["history"] == resumed["history"]
    assert len(calls) == 1 and len(evaluations) == 1  # nothing generated or measured again
    (tmp_path / "stopped" / "runs" / f"{arm}-tokens-seed0.json").unlink()
    other = {**search, "weighted_tokens": [2 * t for t in search["weighted_tokens"]]}
    with pytest.raises(ConfigError, match="delete that folder"):  # finished rounds of another budget: kept, refused
        controls.control_arm(stopped_cfg, 0, arm, other, by="tokens")
    assert (folders[1] / "state.json").exists()


TIMING = {"generation_cpu_seconds", "train_seconds"}
"""A round's measured times: the rest of its record is the same on any run of it."""


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    weights = load_file(folder / "final-primary" / "adapter_model.safetensors")
    return {k: v.numpy().tobytes() for k, v in weights.items()}
