"""Helpers of the integration tests that start a real llama.cpp server (on loopback only)."""

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf_path, port: int, alias: str, n_ctx: int = 256) -> subprocess.Popen:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1:``port``, serving ``gguf_path`` as ``alias``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--model_alias", alias,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--logits_all", "true", "--verbose", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return _warmed_up(proc, port, alias)
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama.cpp server did not come up within 60 s")


def _warmed_up(proc: subprocess.Popen, port: int, alias: str) -> subprocess.Popen:
    """One multi-token prompt with log-probs, so that a server that cannot evaluate a batch fails here, with its
    exit status, rather than as a refused connection in the test. (A llama.cpp built natively on a virtual machine
    that lists AMX but does not let programs use it dies on its first batch with SIGSEGV or SIGILL: build it with
    ``CMAKE_ARGS=-DGGML_NATIVE=OFF``, as ``.ci/run`` does.)"""
    body = {"model": alias, "prompt": "One, two, three, four, five,", "max_tokens": 1, "temperature": 0.0,
            "logprobs": 5}
    try:
        httpx.post(f"http://127.0.0.1:{port}/v1/completions", json=body, timeout=60).raise_for_status()
        return proc
    except httpx.HTTPError as exc:
        try:
            status = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"llama.cpp server failed its first completion and was stopped: {exc}; "
                               f"{proc.stderr.read().decode()[-1000:]}") from exc
        cause = (" (SIGSEGV or SIGILL: a native build using instructions this machine does not enable; rebuild "
                 "llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF)") if status in (-11, -4) else ""
        raise RuntimeError(f"llama.cpp server died on its first multi-token completion, exit status {status}{cause}: "
                           f"{proc.stderr.read().decode()[-1000:]}") from exc
