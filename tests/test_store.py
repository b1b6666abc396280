"""Specification of the episode store: durable appends, torn tails dropped, corruption reported."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from agents.store import EpisodeStore, EpisodeStoreError


def test_records_come_back_in_order_and_as_a_dataset(tmp_path):
    store = EpisodeStore(tmp_path / "ep.jsonl")
    for i in range(3):
        store.append({"prompt": f"{i}+1=", "reward": float(i), "path": [1, 2, i], "nodes": [{"visits": [0.5, 0.5]}]})
    assert [r["prompt"] for r in store] == ["0+1=", "1+1=", "2+1="]
    ds = store.to_dataset()
    assert ds.num_rows == 3 and ds[2]["path"] == [1, 2, 2]


def test_a_torn_last_line_is_dropped_with_a_warning_and_cut_before_the_next_append(tmp_path):
    path = tmp_path / "ep.jsonl"
    store = EpisodeStore(path)
    store.append({"i": 0})
    with path.open("a") as fh:
        fh.write('{"i": 1, "half')  # a crash mid-write
    with pytest.warns(UserWarning, match="torn"):
        assert [r["i"] for r in store] == [0]
    with pytest.warns(UserWarning, match="torn"):
        EpisodeStore(path).append({"i": 2})
    assert [r["i"] for r in EpisodeStore(path)] == [0, 2]


def test_a_bad_line_in_the_middle_is_corruption(tmp_path):
    path = tmp_path / "ep.jsonl"
    path.write_text('{"i": 0}\nnot json\n{"i": 2}\n')
    with pytest.raises(EpisodeStoreError, match=":2"):
        EpisodeStore(path).records()


WRITER = """
import sys
from agents.store import EpisodeStore
store = EpisodeStore(sys.argv[1])
i = 0
while True:
    store.append({"i": i, "payload": "x" * 5000})
    print(i, flush=True)
    i += 1
"""


def test_a_process_killed_mid_write_loses_no_completed_record(tmp_path):
    path = tmp_path / "ep.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    acknowledged = -1
    deadline = time.time() + 60
    while acknowledged < 30 and time.time() < deadline:
        acknowledged = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        records = EpisodeStore(path).records()
    assert len(records) >= acknowledged + 1  # every acknowledged append survived
    assert [r["i"] for r in records] == list(range(len(records)))  # no partial or duplicated record
    assert all(len(r["payload"]) == 5000 for r in records)
    json.loads(path.read_text().split("\n")[len(records) - 1])
