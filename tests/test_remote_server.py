"""Remote teachers against a real OpenAI-compatible server.

llama.cpp (through ``llama-cpp-python[server]``, installed by ``.ci/run`` with
``pip install '.[llama-server]'``) serves the zoo's byte-level-BPE Llama teacher, exported to an
unquantised GGUF by :func:`tokentree_env.models.gguf.export_gguf`. The same model runs locally
through ``HFTeacher``; the remote teacher's right-direction proposals and log-probs must agree.

Without the server installed these tests skip, except where ``TOKENTREE_REQUIRE_SERVER=1`` (set
by ``.ci/run``): there a missing server is a failure.
"""

import importlib.util
import json
import os
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tests.servers import free_port, start_server
from tokentree_env.errors import RemoteTeacherError
from tokentree_env.teachers import Context, HFTeacher, OpenAITeacher, propose

pytestmark = pytest.mark.integration

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gguf") is None:
    if os.environ.get("TOKENTREE_REQUIRE_SERVER") == "1":
        raise RuntimeError("TOKENTREE_REQUIRE_SERVER=1 but llama-cpp-python[server] / gguf are not installed: "
                           "pip install '.[llama-server]'")
    pytest.skip("llama-cpp-python[server] not installed (pip install '.[llama-server]')", allow_module_level=True)

MODEL = "teacher-llama"
K_RIGHT = 3
"""Compared right children per context. Beyond the third, tokens sit below p = 1e-5, where a primary
token's mass is spread over many BPE pieces (every piece starting with a space maps to the space) and
the server lists only the top 20: the documented no-far-tail limit of every server, not a client error."""


@pytest.fixture(scope="module")
def gguf_model(tmp_path_factory):
    from tokentree_env.models.gguf import export_gguf

    return export_gguf("zoo:teacher-llama", tmp_path_factory.mktemp("gguf") / "teacher-llama.gguf")


@pytest.fixture(scope="module")
def server(gguf_model):
    port = free_port()
    proc = start_server(gguf_model, port, MODEL)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=10)


def remote(url: str, **kw) -> OpenAITeacher:
    # llama-cpp-python keys top_logprobs by token text: byte pieces with the same text collapse
    return OpenAITeacher(url, MODEL, **({"top_logprobs": 20, "min_entries": 10, "timeout": 10, "retries": 2,
                                         "backoff": 0.2} | kw))


def contexts(primary_tok) -> list[Context]:
    texts = ["12+34=", "75+96+99=", "75+96+99=171+", "40+2=", "3+4+5=7+5=", "60+17+22=77+22="]
    return [Context(tuple(primary_tok(t)["input_ids"]), t) for t in texts]


def test_remote_and_local_copies_of_one_model_propose_the_same_right_children(server):
    from tokentree_env.models import load_model

    primary = load_model("zoo:primary")
    local, far = HFTeacher("zoo:teacher-llama"), remote(server)
    for t in (local, far):
        t.bind(primary.tokenizer)
    ctxs = contexts(primary.tokenizer)
    lp_local, lp_remote = local.next_logprobs(ctxs).numpy(), far.next_logprobs(ctxs).numpy()
    for row_l, row_r, c in zip(lp_local, lp_remote, ctxs, strict=True):
        right_l, _ = propose(row_l, k_right=K_RIGHT, k_wrong=0, top_p=0.9, rng=random.Random(0))
        right_r, _ = propose(row_r, k_right=K_RIGHT, k_wrong=0, top_p=0.9, rng=random.Random(0))
        assert set(right_l) == set(right_r), c.text
        # log-probs of the proposed children agree (the remote sums only the top-20 pieces)
        assert np.allclose(row_l[right_l], row_r[right_l], atol=0.02), c.text
    assert far.counters.forward_calls == len(ctxs)


def test_an_env_with_a_local_and_a_remote_copy_runs_an_episode_with_matching_proposals(server):
    from tokentree_env.env import TokenTreeEnv

    env = TokenTreeEnv(teachers=["zoo:teacher-llama", f"openai:{MODEL}@{server}"], judge=None, max_new_tokens=16)
    _, far = env.expander.teachers
    assert isinstance(far, OpenAITeacher)
    far.min_entries = 10
    obs, info = env.reset(options={"prompt": "75+96+99="})
    done, steps = False, 0
    while not done:
        state = env.get_state()
        slate = env.trees[state.prompt].nodes[state.node].slate
        order_local, order_remote = np.argsort(-slate.logprobs[:, 0]), np.argsort(-slate.logprobs[:, 1])
        assert slate.tokens[order_local[0]] == slate.tokens[order_remote[0]]  # the same greedy child
        if len(np.unique(slate.logprobs[:, 1])) > 2:  # the server listed alternatives (not a bare greedy EOS)
            assert set(slate.tokens[order_local[:2]]) == set(slate.tokens[order_remote[:2]])
        best = int(np.argmax(np.where(obs["action_mask"] == 1, slate_scores(obs), -np.inf)))
        obs, _, terminated, truncated, info = env.step(best)
        done, steps = terminated or truncated, steps + 1
    assert steps > 3 and info["text"].strip()
    env.close()


def slate_scores(obs) -> np.ndarray:
    from tokentree_env.env import FEATURES

    return obs["features"].reshape(len(obs["action_mask"]), len(FEATURES))[:, FEATURES.index("panel_logprob")]


def test_a_server_stopped_mid_episode_gives_a_clear_error_and_the_store_keeps_what_was_written(gguf_model,
                                                                                                 tmp_path):
    from agents.baselines import EnsembleGreedy
    from agents.store import EpisodeStore
    from tokentree_env.env import TokenTreeEnv

    port = free_port()
    proc = start_server(gguf_model, port, MODEL)
    url = f"http://127.0.0.1:{port}/v1"
    env = TokenTreeEnv(teachers=[remote(url, retries=1, backoff=0.1)], judge=None, max_new_tokens=16)
    store = EpisodeStore(tmp_path / "episodes.jsonl")
    store.append(EnsembleGreedy().run_episode(env, options={"prompt": "12+34="}))
    obs, _ = env.reset(options={"prompt": "75+96+99="})
    proc.terminate()
    proc.wait(timeout=10)
    with pytest.raises(RemoteTeacherError, match=rf"127.0.0.1:{port}.*gave up after 2 attempts"):
        for _ in range(16):  # the next expansion that needs the server fails
            obs, *_ = env.step(int(np.flatnonzero(obs["action_mask"])[0]))
    kept = EpisodeStore(tmp_path / "episodes.jsonl").records()
    assert len(kept) == 1 and kept[0]["prompt"] == "12+34="


def test_a_response_slower_than_the_timeout_is_an_error(server):
    from tokentree_env.models import load_model

    far = remote(server, timeout=1e-4, retries=1, backoff=0.0)
    far.bind(load_model("zoo:primary").tokenizer)
    with pytest.raises(RemoteTeacherError, match="timed out"):
        far.next_logprobs([Context((), "12+34=")])


class Garbage(BaseHTTPRequestHandler):
    """A tiny stub that answers every request with a well-formed HTTP reply holding a wrong body."""

    def do_POST(self):
        body = json.dumps({"choices": [{"text": "1", "logprobs": {"top_logprobs": [{"1": "high"}]}}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_garbage_response_is_a_validation_error():
    from tokentree_env.models import load_model

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        far = OpenAITeacher(f"http://127.0.0.1:{stub.server_address[1]}/v1", "m", top_logprobs=1)
        far.bind(load_model("zoo:primary").tokenizer)
        with pytest.raises(RemoteTeacherError, match="invalid log-prob 'high'"):
            far.next_logprobs([Context((), "1+1=")])
    finally:
        stub.shutdown()


def test_the_remote_teacher_example_runs_against_the_server(server, capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "remote_teacher.py"
    sys.argv = [str(script), "--base-url", server, "--model", MODEL]
    runpy.run_path(str(script), run_name="__main__")
    assert "requests to the server" in capsys.readouterr().out
