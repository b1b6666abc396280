"""Remote teachers: any server speaking the OpenAI-compatible completions API with logprobs.

vLLM, SGLang, llama.cpp (``llama-server`` and ``llama-cpp-python``), Ollama and providers such as
OpenRouter all answer ``POST {base_url}/completions`` with ``logprobs``. One request per context
asks for one token at temperature 0 with the top ``top_logprobs`` alternatives; the answer is
mapped into the primary's vocabulary exactly like a cross-tokenizer local teacher
(:mod:`tokentree_env.teachers.alignment`: each piece's text -> the first primary token of that
text; pieces landing on the same primary token have their probabilities summed).

What a server cannot give, and what this client does instead (documented choices):

- **No far tail.** Servers cap the list (vLLM ``--max-logprobs``, default 20; Ollama and OpenRouter
  20). Primary tokens no returned piece maps to get the *leftover* mass spread evenly —
  ``log((1 - Σ returned) / #unlisted)`` — capped below the lowest returned log-prob. Right children
  come from the returned top; wrong children are then drawn uniformly from the primary's
  vocabulary outside the returned nucleus (the same rule as local teachers, over the unlisted
  tokens), so they are "unlikely" by the server's own account.
- **Scoring a chosen token** uses its returned log-prob when it is in the top list and the floor
  above otherwise (no second request).
- **Two response shapes**: legacy ``choices[0].logprobs.top_logprobs[0]`` (a ``{text: logprob}``
  dict, as vLLM and llama-cpp-python send) and chat-style ``choices[0].logprobs.content[0].
  top_logprobs`` (a list of ``{token, logprob, id?, bytes?}``, as llama-server sends even on
  ``/completions``). Token ids are used when the server returns them and the teacher's tokenizer
  is known (``tokenizer=``); otherwise the text (or ``bytes``) of each entry.
- **EOS without a list**: llama-cpp-python lists nothing when its greedy token is EOS (it stops at
  once); that answer is read as EOS with probability ~1 and every other token at the floor.
- **Validation**: a response without choices or logprobs, a NaN/positive log-prob, or fewer
  entries than asked (when the server should have more) raises :class:`RemoteTeacherError`; it is
  never turned into a wrong child.

Requests of one expansion are sent together (a bounded thread pool), each with a timeout and
retries on connection errors, timeouts, 429 and 5xx: exponential back-off with full jitter (so many clients do
not retry in step), or the wait a server asks for in ``Retry-After`` (seconds or an HTTP date, capped at
``max_retry_after``); then a :class:`RemoteTeacherError` names the server, the model and what failed. Answers are
cached per context text (a revisit costs no request). The API key comes from an environment variable and is
never logged or shown in ``repr``; it is never sent over plain ``http://`` to a host other than this machine
(``allow_insecure_key=True`` opts in, e.g. inside a private network).
"""

from __future__ import annotations

import ipaddress
import math
import os
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from tokentree_env.errors import ConfigError, RemoteTeacherError
from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB
from tokentree_env.teachers.base import Context, Teacher

EOS_TEXTS = frozenset({"</s>", "<eos>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"})
"""Token texts servers use for end-of-sequence, mapped to the primary's EOS."""

GREEDY_EOS = "</s>"
"""Stands for "the server stopped at once": EOS was its greedy token but it listed nothing."""

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def url_scheme(url: str) -> str:
    """``url``'s scheme as a URL parser reads it, lower case (``HTTP://host`` is ``http``); "" when it has none."""
    import httpx

    try:
        return httpx.URL(url).scheme.lower()
    except httpx.InvalidURL:
        return ""


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    import httpx

    host = httpx.URL(url).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (delta-seconds or an HTTP date); None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def parse_spec(spec: str) -> tuple[str, str]:
    """``openai:MODEL@BASE_URL`` -> (model, base_url)."""
    body = spec.removeprefix("openai:")
    model, sep, base_url = body.rpartition("@")
    if not sep or not model or url_scheme(base_url) not in ("http", "https"):
        raise ConfigError(f"remote teacher {spec!r}: expected 'openai:MODEL@BASE_URL', e.g. "
                          "'openai:llama-3-8b@http://127.0.0.1:8080/v1'")
    return model, base_url


def top_entries(payload: dict, *, server: str) -> list[tuple[str | None, int | None, float]]:
    """The first position's ``(text, id, logprob)`` alternatives from either response shape."""
    try:
        choice = payload["choices"][0]
        logprobs = choice["logprobs"]
    except (KeyError, IndexError, TypeError):
        raise RemoteTeacherError(f"{server}: response has no choices[0].logprobs (got keys "
                                 f"{sorted(payload) if isinstance(payload, dict) else type(payload).__name__}); "
                                 "does the server support logprobs on /completions?") from None
    if not isinstance(logprobs, dict):
        raise RemoteTeacherError(f"{server}: choices[0].logprobs is {type(logprobs).__name__}, expected an object")
    entries: list[tuple[str | None, int | None, float]] = []
    if isinstance(logprobs.get("content"), list) and logprobs["content"]:  # chat style
        first = logprobs["content"][0]
        for e in first.get("top_logprobs") or []:
            text = e.get("token")
            if text is None and e.get("bytes") is not None:
                text = bytes(e["bytes"]).decode("utf-8", errors="replace")
            entries.append((text, e.get("id"), e.get("logprob")))
    elif isinstance(logprobs.get("top_logprobs"), list) and logprobs["top_logprobs"]:  # legacy
        first = logprobs["top_logprobs"][0]
        if isinstance(first, dict):
            entries = [(text, None, lp) for text, lp in first.items()]
        elif isinstance(first, list):  # some servers send [{token, logprob}] here too
            entries = [(e.get("token"), e.get("id"), e.get("logprob")) for e in first]
    elif choice.get("finish_reason") == "stop" and not choice.get("text"):
        # llama-cpp-python sends no entry at all when the greedy token is EOS: EOS is the argmax
        return [(GREEDY_EOS, None, 0.0)]
    else:
        raise RemoteTeacherError(f"{server}: choices[0].logprobs has neither content[0].top_logprobs nor "
                                 "top_logprobs[0]")
    for text, _, lp in entries:
        if not isinstance(lp, (int, float)) or math.isnan(lp) or lp > 1e-4:
            raise RemoteTeacherError(f"{server}: invalid log-prob {lp!r} for token {text!r} in the response")
    return entries


class OpenAITeacher(Teacher):
    """A teacher behind an OpenAI-compatible ``/completions`` endpoint with logprobs.

    Usable anywhere an :class:`~tokentree_env.teachers.hf.HFTeacher` is, and as the string
    ``openai:MODEL@BASE_URL`` in ``gym.make("TokenTree-v0", teachers=[...])``.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8080/v1``.
        model: the model name the server expects.
        api_key: the key; default: the environment variable named by ``api_key_env`` (if set).
        top_logprobs: alternatives asked per position (servers cap it; 20 is the common cap).
        tokenizer: the teacher's tokenizer, if known: token ids in responses are then decoded with it.
        max_concurrency: requests in flight together within one expansion.
        timeout: seconds per request; retries: extra attempts; backoff: the first back-off's upper bound in seconds
            (it doubles each attempt; the wait is drawn uniformly below it); max_retry_after: the longest wait a
            server's ``Retry-After`` is obeyed for.
        allow_insecure_key: send the API key over plain ``http://`` to another machine (off: refused, since
            anyone on the path could read it).
        min_entries: fewest alternatives a response may carry (default ``top_logprobs``). Lower it for
            servers whose lists shrink legitimately: llama-cpp-python keys them by token *text*, so
            pieces with the same text collapse into one entry.
    """

    remote = True

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", top_logprobs: int = 20, tokenizer=None,
                 max_concurrency: int = 8, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 max_retry_after: float = 60.0, min_entries: int | None = None, name: str | None = None,
                 cache_size: int = 100_000, allow_insecure_key: bool = False, transport=None,
                 parameters: int | None = None) -> None:
        super().__init__()
        self.parameters = parameters  # the served model's size, for compute parity (unknown unless declared)
        import httpx

        if top_logprobs < 1:
            raise ConfigError(f"top_logprobs must be >= 1, got {top_logprobs}")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.name = name or f"openai:{model}"
        self.top_logprobs, self.teacher_tokenizer = top_logprobs, tokenizer
        self.retries, self.backoff, self.max_concurrency = retries, backoff, max_concurrency
        self.min_entries = top_logprobs if min_entries is None else min_entries
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        if key and url_scheme(self.base_url) != "https" and not is_loopback(self.base_url) and not allow_insecure_key:
            raise ConfigError(f"refusing to send the API key over plain http to {self.base_url}: anyone on the way "
                              "could read it. Use https://, a server on this machine, or allow_insecure_key=True")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.max_retry_after, self._jitter = max_retry_after, random.Random()
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="tokentree-remote")
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._answers: dict[tuple[str, int], str] = {}
        self._cache_size = cache_size
        self._piece_ids: dict[str, int | None] = {}
        self.primary_tokenizer = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAITeacher(base_url={self.base_url!r}, model={self.model!r}, top_logprobs={self.top_logprobs})"

    @property
    def server(self) -> str:
        return f"server {self.base_url} (model {self.model!r})"

    def bind(self, primary_tokenizer) -> None:
        self.primary_tokenizer = primary_tokenizer
        self.vocab_size = max(len(primary_tokenizer), max(primary_tokenizer.get_vocab().values()) + 1)
        self._piece_ids.clear()

    # -- requests ---------------------------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        """One request with retries and back-off; a typed error naming the server at the end."""
        import httpx

        last, wait = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._wait(attempt, wait))
            wait = None
            try:
                response = self._client.post("/completions", json={"model": self.model, **body})
            except httpx.TimeoutException as exc:
                last = f"timed out after {self._client.timeout.read}s ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {exc})"
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                wait = retry_after(response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise RemoteTeacherError(f"{self.server}: HTTP {response.status_code}: {response.text[:300]}")
            try:
                return response.json()
            except ValueError:
                raise RemoteTeacherError(f"{self.server}: response is not JSON: {response.text[:200]!r}") from None
        raise RemoteTeacherError(f"{self.server}: {last}; gave up after {self.retries + 1} attempts. Is the server "
                                 "running and reachable? (timeout=, retries= set the patience)")

    def _wait(self, attempt: int, asked: float | None) -> float:
        """Seconds before retry ``attempt``: what the server asked for (capped), else exponential back-off with full
        jitter (uniform below ``backoff · 2^(attempt-1)``)."""
        if asked is not None:
            return min(asked, self.max_retry_after)
        return self._jitter.uniform(0.0, self.backoff * 2 ** (attempt - 1))

    def _request_logprobs(self, text: str, owner=None) -> torch.Tensor:
        payload = self._post({"prompt": text, "max_tokens": 1, "temperature": 0.0, "logprobs": self.top_logprobs})
        entries = top_entries(payload, server=self.server)
        if len(entries) < self.min_entries and entries != [(GREEDY_EOS, None, 0.0)]:
            raise RemoteTeacherError(f"{self.server}: asked for {self.top_logprobs} top log-probs, got "
                                     f"{len(entries)}; lower top_logprobs= to the server's cap (or min_entries= "
                                     "for a server whose lists shrink)")
        usage = payload.get("usage") or {}
        self.counters.add(forwarded=int(usage.get("prompt_tokens") or 0), owner=owner)
        return self._to_primary(entries)

    def _to_primary(self, entries) -> torch.Tensor:
        """Returned alternatives -> log-probs over the primary vocabulary, unlisted tokens floored."""
        probs = torch.zeros(self.vocab_size, dtype=torch.float64)
        listed = 0.0
        lowest = 0.0
        for text, tid, lp in entries:
            listed += math.exp(lp)
            lowest = min(lowest, lp)
            target = self._primary_id(text, tid)
            if target is not None:
                probs[target] += math.exp(lp)
        out = probs.log()
        unlisted = (probs == 0).sum().item()
        leftover = max(0.0, 1.0 - listed)
        floor = math.log(leftover / unlisted) if leftover > 0 and unlisted else UNMAPPED_LOGPROB
        floor = max(UNMAPPED_LOGPROB, min(floor, lowest - 1e-3))
        return torch.where(probs > 0, out, torch.full_like(out, floor)).float()

    def _primary_id(self, text: str | None, tid: int | None) -> int | None:
        """The primary token a returned piece maps to (EOS texts -> EOS), or None."""
        if tid is not None and self.teacher_tokenizer is not None:
            if tid == self.teacher_tokenizer.eos_token_id:
                return self.primary_tokenizer.eos_token_id
            text = self.teacher_tokenizer.decode([tid])
        if text is None:
            return None
        if text in EOS_TEXTS or (self.teacher_tokenizer is not None and text == self.teacher_tokenizer.eos_token):
            return self.primary_tokenizer.eos_token_id
        if text not in self._piece_ids:
            ids = self.primary_tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            specials = set(self.primary_tokenizer.all_special_ids)
            self._piece_ids[text] = ids[0] if ids and ids[0] not in specials else None
        return self._piece_ids[text]

    # -- the Teacher interface ----------------------------------------------------------------------
    def next_logprobs(self, contexts: Sequence[Context]) -> torch.Tensor:
        if self.primary_tokenizer is None:
            raise ConfigError(f"{self!r} is not bound to a primary tokenizer; pass it to the env or call bind()")
        owner_of = {}
        for c in contexts:
            if c.text not in self._cache:
                owner_of.setdefault(c.text, c.owner)
        missing = list(owner_of)
        if missing:
            for text in missing:  # a request is a call, for its context's owner where a batch is split
                self.counters.call([owner_of[text]])
            rows = self._pool.map(lambda text: self._request_logprobs(text, owner_of[text]), missing)
            for text, row in zip(missing, rows, strict=True):
                self._cache[text] = row
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        rows = []
        for c in contexts:
            self._cache.move_to_end(c.text)
            rows.append(self._cache[c.text])
        return torch.stack(rows)

    def answer(self, prompt: str, *, max_new_tokens: int = 64) -> str:
        key = (prompt, max_new_tokens)
        if key not in self._answers:
            payload = self._post({"prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0.0})
            try:
                text = payload["choices"][0]["text"]
            except (KeyError, IndexError, TypeError):
                raise RemoteTeacherError(f"{self.server}: completion response has no choices[0].text") from None
            if not isinstance(text, str):
                raise RemoteTeacherError(f"{self.server}: choices[0].text is {type(text).__name__}, expected a string")
            usage = payload.get("usage") or {}
            self.counters.add(calls=1, forwarded=int(usage.get("prompt_tokens") or 0),
                              generated=int(usage.get("completion_tokens") or 0))
            self._answers[key] = text
        return self._answers[key]

    def mark_updated(self) -> None:
        super().mark_updated()
        self.clear_caches()

    def clear_caches(self) -> None:
        self._cache.clear()
        self._answers.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
