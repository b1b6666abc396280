"""Specification of the resumable training loop: iterations, workers, kill and resume, checkpoints, Ray refusals."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from agents.training import TrainConfig, TrainingRun
from tokentree_env.errors import ConfigError


def _tiny(tmp_path, **kw):
    base = {"output_dir": str(tmp_path / "run"), "iterations": 2, "prompts_per_iteration": 4, "epochs": 1, "eval_size": 10,
                "simulations": 2, "teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "max_new_tokens": 14}
    return TrainConfig(**(base | kw))


def test_a_two_iteration_loop_changes_the_primarys_weights_and_checkpoints_it(tmp_path):
    from tokentree_env.models import load_model

    summary = TrainingRun(_tiny(tmp_path, replay="on", ewc=1.0)).run()
    assert summary["iterations"] == 2
    before = load_model("zoo:primary").model.state_dict()
    after = load_model(str(tmp_path / "run" / "checkpoints" / "iter-1" / "primary")).model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (tmp_path / "run" / "learning_curves.png").exists()


def test_self_play_on_worker_processes_stores_the_episodes_played_in_process(tmp_path):
    runs = {w: TrainingRun(_tiny(tmp_path / f"w{w}", workers=w, prompts_per_iteration=6)) for w in (1, 2)}
    for run in runs.values():
        run.run()
    one, two = ({(r["iteration"], r["prompt_index"]): r["tokens"] for r in run.store} for run in runs.values())
    assert len(one) == 12 and one == two
    trees = sorted(p.name for p in (tmp_path / "w1" / "run" / "checkpoints" / "iter-1" / "trees").iterdir())
    assert trees == sorted(p.name for p in (tmp_path / "w2" / "run" / "checkpoints" / "iter-1" / "trees").iterdir())


def test_a_grpo_round_trains_the_primary_on_its_rewards(tmp_path):
    """With the judge's verdict beside the verifier, a group's rewards differ, so GRPO's advantages are not all 0
    and the round moves the weights (with the verifier alone and every sample wrong, GRPO has nothing to learn)."""
    from tokentree_env.models import load_model

    run = TrainingRun(_tiny(tmp_path, iterations=1, prompts_per_iteration=2, signals=("grpo",)))
    summary = run.run()
    assert summary["iterations"] == 1
    before = load_model("zoo:primary").model.state_dict()
    after = load_model(str(tmp_path / "run" / "checkpoints" / "iter-0" / "primary")).model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the round moved the weights
    assert math.isfinite(run.state["history"][0]["train_loss"]) and run._losses  # TRL reported a loss


def test_a_run_cannot_silently_overwrite_or_resume_nothing(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        TrainingRun(_tiny(tmp_path), resume=True)
    with pytest.raises(ConfigError, match="signals"):
        TrainConfig(signals=("magic",))


RUNNER = """
import sys
from agents.training import TrainConfig, TrainingRun
if __name__ == "__main__":  # self-play workers are spawned processes
    cfg = TrainConfig(output_dir=sys.argv[1], iterations=2, prompts_per_iteration=6, epochs=1, eval_size=10,
                      simulations=2, teachers=("zoo:teacher-qwen2", "zoo:teacher-llama"), max_new_tokens=14,
                      workers=int(sys.argv[3]))
    TrainingRun(cfg, resume=sys.argv[2] == "resume").run()
"""


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(c) for c in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))  # a zombie has exited


def test_kill_and_resume_keeps_every_episode_duplicates_none_and_repeats_no_iteration(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    # the killed run and its resumption play on 2 worker processes; the run compared with plays in-process
    proc = subprocess.Popen([sys.executable, str(script), str(out), "new", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    episodes = out / "episodes.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and (not episodes.exists() or episodes.read_text().count("\n") < 8):
        time.sleep(0.2)  # kill in the second iteration's self-play
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert workers and not any(_alive(w) for w in workers)  # the workers stop with the loop's process
    kept = [json.loads(line) for line in episodes.read_text().splitlines() if line.strip().endswith("}")]
    done = subprocess.run([sys.executable, str(script), str(out), "resume", "2"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    from agents.store import EpisodeStore

    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        final = EpisodeStore(episodes).records()
    keys = [(r["iteration"], r["prompt_index"]) for r in final]
    assert len(keys) == len(set(keys)) == 12  # every episode exactly once
    assert all(r in final for r in kept)  # nothing completed before the kill was lost
    state = json.loads((out / "state.json").read_text())
    assert state["completed"] == 2 and [h["iteration"] for h in state["history"]] == [0, 1]
    # and the resumed run is the run that was never killed: same episodes, same trees and weightage
    whole = tmp_path / "whole"
    subprocess.run([sys.executable, str(script), str(whole), "new", "1"], env=env, check=True, capture_output=True,
                   timeout=600)
    uninterrupted = {(r["iteration"], r["prompt_index"]): r["tokens"] for r in EpisodeStore(whole / "episodes.jsonl")}
    assert {(r["iteration"], r["prompt_index"]): r["tokens"] for r in final} == uninterrupted
    trees = sorted((whole / "checkpoints" / "iter-1" / "trees").iterdir())
    assert trees and [t.name for t in trees] == sorted(p.name for p in (out / "checkpoints" / "iter-1" / "trees").iterdir())
    for t in trees:  # the resumed tree lacks only nodes the skipped searches had expanded (a cache)
        whole_w, resumed_w = weightage_by_path(t), weightage_by_path(out / "checkpoints" / "iter-1" / "trees" / t.name)
        assert resumed_w and resumed_w.items() <= whole_w.items()


def weightage_by_path(path) -> dict:
    """(token path from the root) -> that node's children's weightage factors, from a saved tree."""
    nodes = json.loads(path.read_text())["nodes"]
    paths = [()]
    for row in nodes[1:]:
        paths.append((*paths[row["parent"]], row["token"]))
    return {paths[i]: tuple(map(tuple, row["factors"])) for i, row in enumerate(nodes) if row["slate"] is not None}


def test_auto_replay_follows_hard_reward_and_validation_accuracy_never_heldout_or_the_shaped_return(tmp_path):
    from agents.training.guards import replay_needed

    config = _tiny(tmp_path)
    base = {"validation_task_accuracy": 0.3, "validation_general_accuracy": 1.0,
            "task_accuracy": 0.0, "general_accuracy": 0.0}  # held-out numbers that would say "forgetting"
    assert not replay_needed(config, 1.0, [], base)  # held-out accuracy is never read
    assert replay_needed(config, 0.0, [], base)  # no success at all
    history = [{"mean_hard_reward": 1.0, "validation_task_accuracy": 0.4, "validation_general_accuracy": 0.6}]
    assert replay_needed(config, 1.0, history, base)  # the last validation showed forgetting
    history.append({"mean_hard_reward": 1.0, "validation_task_accuracy": 0.5, "validation_general_accuracy": 0.99})
    assert replay_needed(config, 1.0, history, base)  # once forgetting was seen, replay stays on
    history = [{"mean_hard_reward": 1.0, "validation_task_accuracy": 0.4, "validation_general_accuracy": 0.99}]
    assert not replay_needed(config, 1.0, history, base)
    assert replay_needed(config, 0.5, history, base)  # the reward fell
    assert replay_needed(_tiny(tmp_path, replay="on"), 1.0, [], base)


def test_the_validation_split_comes_from_the_train_split_and_is_never_played(tmp_path):
    from tokentree_env.tasks import builtin_task

    run = TrainingRun(_tiny(tmp_path, validation_size=50))
    validation = {p.prompt for p in run.validation_problems("chain3")}
    train = {p.prompt for p in builtin_task("chain3").problems("train")}
    assert len(validation) == 50 and validation <= train
    assert not validation & set(run._prompts(0))


def test_resume_replay_raises_a_typed_error_when_a_stored_token_is_not_on_the_slate():
    from agents.training import ReplayMismatchError
    from tokentree_env.env import TokenTreeEnv

    env = TokenTreeEnv(teachers=["zoo:teacher-qwen2"], judge=None, max_new_tokens=8)
    obs, _ = env.reset(options={"prompt": "12+35+20="})
    missing = next(t for t in range(env.observer.vocab_size) if t not in obs["candidates"][obs["action_mask"] == 1])
    record = {"prompt": "12+35+20=", "tokens": [missing], "iteration": 0, "repeat": 0}
    with pytest.raises(ReplayMismatchError, match=f"token {missing} at step 0"):
        TrainingRun._replay_episode(env, record)


def test_lora_end_to_end_the_adapter_is_checkpointed_reloaded_and_guarded_by_ewc(tmp_path):
    """Under LoRA the checkpoint holds the adapter, ``--primary`` loads base + adapter, and the EWC penalty acts
    on the trainable (adapter) weights instead of silently being zero."""
    from tokentree_env.models import load_model

    run = TrainingRun(_tiny(tmp_path, iterations=1, lora=True, ewc=10.0))
    run.run()
    checkpoint = tmp_path / "run" / "checkpoints" / "iter-0" / "primary"
    assert (checkpoint / "adapter_config.json").exists()
    lm = load_model(str(checkpoint))
    assert hasattr(lm.model, "peft_config")
    ewc = run.guards.ewc
    assert ewc.importance and all("lora" in name for name in ewc.importance)
    assert float(ewc.penalty(lm.model)) > 0.0  # the trained adapter moved away from the round's anchor
    again = TrainingRun(_tiny(tmp_path / "again", iterations=1, primary=str(checkpoint), lora=True))
    again.run()  # a LoRA checkpoint is a valid --primary: its adapter keeps training
    assert (tmp_path / "again" / "run" / "checkpoints" / "iter-0" / "primary" / "adapter_config.json").exists()


def test_a_ray_pool_the_cluster_cannot_hold_is_refused_instead_of_waiting_forever():
    """Two 1-CPU actors on a 1-CPU Ray cluster would queue the second forever; the pool says so up front."""
    from agents.training.ray_pool import RayResources, _check_fits
    from tokentree_env.errors import ConfigError

    _check_fits(RayResources(2, cpus=1.0), {"CPU": 2.0})
    with pytest.raises(ConfigError, match="2 self-play actors need 2 CPUs, but the Ray cluster has 1"):
        _check_fits(RayResources(2, cpus=1.0), {"CPU": 1.0})
    with pytest.raises(ConfigError, match="GPU"):
        _check_fits(RayResources(1, cpus=1.0, gpus=1.0), {"CPU": 4.0})


def test_a_ray_started_here_off_loopback_is_stopped_and_refused():
    from agents.training.ray_pool import check_loopback

    stopped = []
    check_loopback(["127.0.0.1"], lambda: stopped.append(True))
    assert not stopped
    with pytest.raises(ConfigError, match=r"\['10.1.2.3'\], not 127.0.0.1"):
        check_loopback(["127.0.0.1", "10.1.2.3"], lambda: stopped.append(True))
    assert stopped == [True]


def test_a_checkpoint_is_flushed_to_the_disk_before_the_state_file_names_it(tmp_path, monkeypatch):
    from agents.training import checkpoint
    from tests.helpers import char_primary, loaded

    synced, at_state = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.path.realpath(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    monkeypatch.setattr(checkpoint, "save_state", lambda run_dir, state: at_state.append(list(synced)))

    class Trees:
        def save_trees(self, folder):
            Path(folder).mkdir(parents=True)
            (Path(folder) / "a.json").write_text("{}")

    checkpoint.save_checkpoint(tmp_path, 0, loaded(char_primary()), Trees(), {"completed": 1})
    final = tmp_path / "checkpoints" / "iter-0"
    written = [p for p in final.rglob("*")]
    assert written and at_state, "nothing was written, or the state was never saved"
    flushed = {p.replace("iter-0.tmp", "iter-0") for p in at_state[0]}
    assert {str(p) for p in written} <= flushed  # every file and folder, before the state named them
    assert str(final.parent) in flushed  # and the rename into place


def test_self_play_with_any_search_spec_trains_on_its_episodes(tmp_path):
    """``TrainConfig.agent`` (``tokentree train --agent``): step-level MCTS plays self-play, its episodes are
    stored and trained on, and each prompt's repeats come one after another."""
    run = TrainingRun(_tiny(tmp_path, iterations=1, prompts_per_iteration=2, repeats=2, agent="mcts-steps:2",
                            selfplay_batch=2))
    run.run()
    records = list(run.store)
    assert sorted((r["prompt_index"], r["repeat"]) for r in records) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["agent"].startswith("mcts-steps") and r["records"] for r in records)


def test_between_the_start_and_the_end_the_task_is_measured_on_a_fixed_slice(tmp_path):
    run = TrainingRun(_tiny(tmp_path, iterations=2, prompts_per_iteration=2, eval_size=10, eval_between=4))
    run.run()
    sizes = [len(h["task_correct"]) for h in [run.state["baseline"], *run.state["history"]]]
    assert sizes == [10, 4, 10]


def test_the_primary_is_measured_within_the_runs_answer_length(tmp_path):
    """Held-out answers get the run's ``max_new_tokens``, as its episodes do: a model that runs on past its answer is
    not scored on what it adds (the real learning run measured at 48 tokens answers it plays and trains at 24)."""
    from agents.training.measure import greedy_results
    from tokentree_env.models import load_model
    from tokentree_env.tasks import builtin_task

    run = TrainingRun(_tiny(tmp_path, max_new_tokens=5, eval_size=20))
    lm = load_model("zoo:primary")
    measured = run.evaluate(lm)["task_correct"]
    heldout = builtin_task("chain3").problems("heldout")[:20]
    assert measured == greedy_results(lm, "chain3", heldout, max_new_tokens=5)
    assert measured != greedy_results(lm, "chain3", heldout, max_new_tokens=48)  # the length decides here


def test_an_answer_after_a_prompt_longer_than_128_tokens_is_learned(tmp_path):
    """SFT rows are never cut: a chat-format prompt with worked examples runs past 128 tokens, and a row cut there
    keeps only its prompt, so its answer would teach nothing (the real learning run trained on nothing but replay)."""
    from agents.training.checkpoint import load_primary

    run = TrainingRun(_tiny(tmp_path, replay="off", ewc=0.0, epochs=10, learning_rate=1e-2))
    lm = load_primary("zoo:primary", lora=False)
    prompt = lm.tokenizer("12+35+20=" * 20 + "1+2=")["input_ids"]
    answer = lm.tokenizer("3")["input_ids"]
    assert len(prompt) > 128 and len(prompt) + len(answer) < lm.model.config.max_position_embeddings
    record = {"prompt": "long", "prompt_ids": prompt, "tokens": answer, "completion": "3", "hard_reward": 1.0,
              "episode_return": 1.0}

    def answer_logprob() -> float:
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            logits = lm.model(input_ids=ids).logits[0, len(prompt) - 1:-1]
        return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(answer)[:, None]).sum())

    before = answer_logprob()
    run.train_round(lm, [record])
    assert answer_logprob() > before + 1.0
