"""Specification of remote (OpenAI-compatible) teachers, against in-process fake transports.

The real-server agreement and fault tests are in ``test_remote_server.py``; here a scripted
``httpx.MockTransport`` stands in for the server, which is fine for unit tests of parsing,
validation, retries and caching."""

import json
import math

import httpx
import pytest

from tests.helpers import char_primary
from tokentree_env.errors import ConfigError, RemoteTeacherError
from tokentree_env.teachers import Context, OpenAITeacher
from tokentree_env.teachers.remote import parse_spec


def legacy(entries: dict) -> dict:
    return {"choices": [{"text": "1", "logprobs": {"tokens": ["1"], "top_logprobs": [entries]}}],
            "usage": {"prompt_tokens": 5}}


def chat_style(entries: list[tuple[str, float, int]]) -> dict:
    return {"choices": [{"text": "1", "logprobs": {"content": [
        {"token": entries[0][0], "logprob": entries[0][1],
         "top_logprobs": [{"token": t, "logprob": lp, "id": i} for t, lp, i in entries]}]}}]}


def teacher(handler, url="http://fake/v1", **kw) -> tuple[OpenAITeacher, list]:
    seen = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return handler(request)

    kw = {"top_logprobs": 3, "retries": 2, "backoff": 0.0} | kw
    t = OpenAITeacher(url, "m", transport=httpx.MockTransport(record), **kw)
    t.bind(char_primary())
    return t, seen


def ctx(text: str) -> Context:
    return Context((), text)


def test_legacy_and_chat_style_responses_give_the_same_distribution_in_the_primary_vocabulary():
    entries = [("1", math.log(0.5), 10), ("2", math.log(0.3), 11), ("</s>", math.log(0.1), 2)]
    a, _ = teacher(lambda r: httpx.Response(200, json=legacy({t: lp for t, lp, _ in entries})))
    b, _ = teacher(lambda r: httpx.Response(200, json=chat_style(entries)))
    la, lb = a.next_logprobs([ctx("1+1=")])[0], b.next_logprobs([ctx("1+1=")])[0]
    tok = a.primary_tokenizer
    one, two = tok("1", add_special_tokens=False)["input_ids"][0], tok("2", add_special_tokens=False)["input_ids"][0]
    assert math.isclose(la[one].exp().item(), 0.5, rel_tol=1e-5) and math.isclose(la[two].exp().item(), 0.3, rel_tol=1e-5)
    assert math.isclose(la[tok.eos_token_id].exp().item(), 0.1, rel_tol=1e-5)  # EOS text -> primary EOS
    assert (la == lb).all()
    # unlisted tokens share the leftover 0.1, below the lowest listed log-prob
    floor = la[tok("7", add_special_tokens=False)["input_ids"][0]].item()
    assert floor < math.log(0.1) and math.isfinite(floor)


def test_pieces_landing_on_one_primary_token_have_their_mass_summed():
    t, _ = teacher(lambda r: httpx.Response(200, json=legacy({"12": math.log(0.4), "1": math.log(0.2),
                                                             "3": math.log(0.1)})))
    row = t.next_logprobs([ctx("x")])[0]
    one = t.primary_tokenizer("1", add_special_tokens=False)["input_ids"][0]
    assert math.isclose(row[one].exp().item(), 0.6, rel_tol=1e-5)  # "12" and "1" both start with "1"


def test_requests_ask_for_one_token_with_logprobs_and_repeats_are_served_from_the_cache():
    t, seen = teacher(lambda r: httpx.Response(200, json=legacy({"1": -0.1, "2": -3.0, "3": -4.0})))
    t.next_logprobs([ctx("a"), ctx("b"), ctx("a")])
    t.next_logprobs([ctx("b")])
    assert sorted(body["prompt"] for body in seen) == ["a", "b"]
    assert all(body["max_tokens"] == 1 and body["logprobs"] == 3 and body["temperature"] == 0.0 for body in seen)
    assert t.counters.forward_calls == 2 and t.counters.forwarded_tokens == 10


def test_transient_failures_are_retried_then_a_typed_error_names_the_server():
    calls = []

    def flaky(request):
        calls.append(1)
        return httpx.Response(503, text="busy") if len(calls) < 3 else httpx.Response(200, json=legacy(
            {"1": -0.1, "2": -3.0, "3": -4.0}))

    t, _ = teacher(flaky)
    assert t.next_logprobs([ctx("a")]).shape[0] == 1 and len(calls) == 3
    down, _ = teacher(lambda r: httpx.Response(429, text="slow down"))
    with pytest.raises(RemoteTeacherError, match=r"http://fake/v1.*HTTP 429.*3 attempts"):
        down.next_logprobs([ctx("a")])

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    gone, _ = teacher(refuse)
    with pytest.raises(RemoteTeacherError, match="connection failed"):
        gone.next_logprobs([ctx("a")])


@pytest.mark.parametrize("payload, message", [
    ({"error": "nope"}, "no choices"),
    ({"choices": [{"text": "1"}]}, "no choices"),
    (legacy({"1": float("nan"), "2": -1.0, "3": -2.0}), "invalid log-prob"),
    (legacy({"1": 0.5, "2": -1.0, "3": -2.0}), "invalid log-prob"),
    (legacy({"1": -0.1}), "asked for 3 top log-probs, got 1"),
    ({"choices": [{"logprobs": {"tokens": []}}]}, "neither"),
])
def test_malformed_responses_are_reported_never_turned_into_children(payload, message):
    body = json.dumps(payload).encode()  # Python's json writes NaN, as some servers do
    t, _ = teacher(lambda r: httpx.Response(200, content=body, headers={"content-type": "application/json"}))
    with pytest.raises(RemoteTeacherError, match=message):
        t.next_logprobs([ctx("a")])


def test_a_client_error_is_not_retried():
    calls = []
    t, _ = teacher(lambda r: calls.append(1) or httpx.Response(404, text="no such model"))
    with pytest.raises(RemoteTeacherError, match="HTTP 404"):
        t.next_logprobs([ctx("a")])
    assert len(calls) == 1


def test_the_api_key_is_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    headers = []
    t, _ = teacher(lambda r: headers.append(r.headers.get("authorization")) or httpx.Response(
        200, json=legacy({"1": -0.1, "2": -3.0, "3": -4.0})), url="https://fake/v1")
    t.next_logprobs([ctx("a")])
    assert headers == ["Bearer sk-secret"]
    assert "sk-secret" not in repr(t) and "sk-secret" not in str(vars(t).get("name"))


@pytest.mark.parametrize("url, allowed", [("http://fake/v1", False), ("http://10.0.0.7:8000/v1", False),
                                          ("HTTP://fake/v1", False), ("Http://10.0.0.7/v1", False),
                                          ("https://fake/v1", True), ("http://127.0.0.1:8080/v1", True),
                                          ("http://localhost:8080/v1", True), ("http://[::1]:8080/v1", True)])
def test_the_api_key_never_goes_over_plain_http_to_another_machine_without_an_opt_in(monkeypatch, url, allowed):
    from tokentree_env.errors import ConfigError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    if allowed:
        teacher(lambda r: httpx.Response(200), url=url)
    else:
        with pytest.raises(ConfigError, match="plain http"):
            teacher(lambda r: httpx.Response(200), url=url)
        teacher(lambda r: httpx.Response(200), url=url, allow_insecure_key=True)  # the explicit opt-in
    monkeypatch.delenv("OPENAI_API_KEY")
    teacher(lambda r: httpx.Response(200), url=url)  # no key: nothing to protect


def test_retries_wait_what_the_server_asks_for_else_a_jittered_back_off(monkeypatch):
    from tokentree_env.teachers import remote

    waits = []
    monkeypatch.setattr(remote.time, "sleep", waits.append)
    busy = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(503),
                 httpx.Response(503, headers={"Retry-After": "9999"}),
                 httpx.Response(200, json=legacy({"1": -0.1, "2": -3.0, "3": -4.0}))])
    t, _ = teacher(lambda r: next(busy), retries=3, backoff=1.0, max_retry_after=60.0)
    t.next_logprobs([ctx("a")])
    assert waits[0] == 7.0 and 0.0 <= waits[1] <= 2.0 and waits[2] == 60.0  # asked; jittered below 1·2^1; capped
    assert remote.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert remote.retry_after("soon") is None
    draws = {OpenAITeacher("http://127.0.0.1/v1", "m", backoff=1.0)._wait(3, None) for _ in range(20)}
    assert len(draws) > 1 and all(0.0 <= w <= 4.0 for w in draws)


def test_answers_are_greedy_completions_cached_per_prompt():
    t, seen = teacher(lambda r: httpx.Response(200, json={"choices": [{"text": "42."}]}))
    assert t.answer("40+2=", max_new_tokens=8) == t.answer("40+2=", max_new_tokens=8) == "42."
    assert len(seen) == 1 and seen[0]["max_tokens"] == 8 and seen[0]["temperature"] == 0.0


def test_the_string_spec_names_model_and_server():
    assert parse_spec("openai:llama-3@http://127.0.0.1:8080/v1") == ("llama-3", "http://127.0.0.1:8080/v1")
    assert parse_spec("openai:org/model@name@https://x.ai/v1") == ("org/model@name", "https://x.ai/v1")
    assert parse_spec("openai:m@HTTPS://x.ai/v1") == ("m", "HTTPS://x.ai/v1")  # a scheme is read as a parser reads it
    for bad in ("openai:llama-3", "openai:@http://x/v1", "openai:m@ftp://x"):
        with pytest.raises(ConfigError, match="openai:MODEL@BASE_URL"):
            parse_spec(bad)


def test_an_expansion_sends_every_remote_teachers_request_at_the_same_time():
    """Two remote teachers that each wait for the other's request to be in flight (a barrier): an expansion
    that queried them one after another would time out."""
    import threading

    from tests.helpers import char_primary
    from tokentree_env.teachers.scripted import ScriptedTeacher
    from tokentree_env.tree import Expander, TokenTree

    primary_tok = char_primary()
    barrier = threading.Barrier(2, timeout=10)

    class Far(ScriptedTeacher):
        remote = True

        def next_logprobs(self, contexts):
            barrier.wait()  # raises BrokenBarrierError unless the other teacher's request is in flight too
            return super().next_logprobs(contexts)

    eos = primary_tok.eos_token_id
    far = [Far(lambda text: {eos: 1.0}, len(primary_tok), name=f"far{i}") for i in range(2)]
    primary = ScriptedTeacher(lambda text: {eos: 1.0}, len(primary_tok), name="primary")
    expander = Expander(far, primary, primary_tok)
    tree = TokenTree("1+2=", tuple(primary_tok("1+2=")["input_ids"]))
    (slate,) = expander.expand(tree)
    assert eos in slate.tokens.tolist() and all(t.counters.forward_calls == 1 for t in far)
    threads = expander._threads
    assert threads is not None
    expander.close()  # what env.close() calls: the request threads stop with the env
    assert threads._shutdown and expander._threads is None
