"""Stopping ``tokentree train``: Ctrl-C (SIGINT) or SIGTERM in any phase stops it within seconds, with one
line that says how to resume and no traceback; ``--resume`` then completes the run.

The signal is delivered inside each phase through the documented test hook
(:mod:`agents.training.stopping`): the loop writes the phase's name to ``TOKENTREE_PHASE_FILE`` once it is
inside that phase's work and, with ``TOKENTREE_PHASE_WAIT=PHASE=S``, waits ``S`` seconds in that phase only.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from agents.training.stopping import PHASES, _wait_seconds

TINY = ["--iterations", "1", "--prompts-per-iteration", "3", "--eval-size", "10", "--max-new-tokens", "16",
        "--teachers", "zoo:teacher-qwen2", "--epochs", "1"]


def _train(out, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "agents.cli", "train", "--output-dir", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_phase(path, phase, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and phase in path.read_text().split():
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before reaching {phase}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"the run never reached {phase}")


def _children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_any_phase_stops_within_seconds_and_the_run_resumes(tmp_path, phase, signum):
    out, marks = tmp_path / "run", tmp_path / "phases"
    env = os.environ | {"TOKENTREE_PHASE_FILE": str(marks), "TOKENTREE_PHASE_WAIT": f"{phase}=60"}
    proc = _train(out, *TINY, "--workers", "1", env=env)
    _wait_for_phase(marks, phase, proc)
    sent = time.time()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert time.time() - sent < 10, "the run took more than a few seconds to stop"
    assert proc.returncode == 130
    assert "Traceback" not in stderr + stdout
    assert [line for line in stderr.splitlines() if "--resume" in line] == [
        f"stopped; nothing completed was lost. Resume with: tokentree train --resume --output-dir {out}"]
    done = subprocess.run([sys.executable, "-m", "agents.cli", "train", "--resume", "--output-dir", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "state.json").read_text())["completed"] == 1
    trained = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("trained primary: ")]
    assert trained == [str(out / "checkpoints" / "iter-0" / "primary")]  # the folder to pass as --primary
    assert (out / "checkpoints" / "iter-0" / "primary" / "config.json").exists()


def test_ctrl_c_during_worker_self_play_stops_the_workers_too(tmp_path):
    out, marks = tmp_path / "run", tmp_path / "phases"
    env = os.environ | {"TOKENTREE_PHASE_FILE": str(marks), "TOKENTREE_PHASE_WAIT": "self-play=60"}
    proc = _train(out, *TINY, "--workers", "2", "--prompts-per-iteration", "24", env=env)
    _wait_for_phase(marks, "self-play", proc)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    time.sleep(1)
    assert workers and not any(os.path.exists(f"/proc/{w}") and "zombie" not in _state(w) for w in workers)


def _state(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return fh.read()
    except OSError:
        return "zombie"


def test_the_hook_waits_in_the_named_phase_only_so_earlier_phases_pass_at_once():
    assert _wait_seconds("training", "training=60") == 60 and _wait_seconds("evaluation", "training=60") == 0
    assert _wait_seconds("evaluation", "5") == 5 and _wait_seconds("evaluation", "") == 0
    with pytest.raises(ValueError, match="names no phase"):
        _wait_seconds("training", "trainig=60")
