"""Stopping a run cleanly: SIGTERM behaves like Ctrl-C (SIGINT), and a documented test hook marks the
phases.

Nothing is lost on a stop: every episode is fsynced to the store as it finishes and checkpoints are
atomic, so ``--resume`` continues where the run stopped (:mod:`agents.training.loop`).

**Test hook.** With ``TOKENTREE_PHASE_FILE=PATH`` set, the loop appends each phase's name to ``PATH``
the first time it is inside that phase's real work (``self-play`` after an episode is stored,
``training`` at an optimizer step, ``evaluation`` between batches); with ``TOKENTREE_PHASE_WAIT=S`` it
then waits ``S`` seconds there (interruptibly), so a test can deliver a signal inside a given phase;
``TOKENTREE_PHASE_WAIT=PHASE=S`` waits in that phase only (the phases before it pass without a wait).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASE_FILE = "TOKENTREE_PHASE_FILE"
PHASE_WAIT = "TOKENTREE_PHASE_WAIT"
PHASES = ("self-play", "training", "evaluation")
_seen: set[str] = set()


def phase_reached(name: str) -> None:
    """The test hook: note (once per process) that the run is inside phase ``name``; see the module docs."""
    path = os.environ.get(PHASE_FILE)
    if not path or name in _seen:
        return
    _seen.add(name)
    with open(path, "a") as fh:
        fh.write(name + "\n")
    deadline = time.monotonic() + _wait_seconds(name, os.environ.get(PHASE_WAIT, ""))
    while time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_seconds(name: str, setting: str) -> float:
    """How long the hook waits in phase ``name``: ``"S"`` waits in every phase, ``"PHASE=S"`` in that one only."""
    if "=" not in setting:
        return float(setting or 0)
    phase, _, seconds = setting.partition("=")
    if phase not in PHASES:
        raise ValueError(f"{PHASE_WAIT}={setting!r} names no phase; expected one of {PHASES} (or seconds alone)")
    return float(seconds) if phase == name else 0.0


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, and so does SIGINT even where the
    process started with it ignored (a shell's background job, ``nohup ... &``), so both always stop the run
    cleanly (main thread only)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def phase_callback():
    """A ``TrainerCallback`` that reports the training phase to the test hook at the first optimizer step."""
    from transformers import TrainerCallback

    class PhaseCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            phase_reached("training")
            return control

    return PhaseCallback()
