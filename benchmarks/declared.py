"""Declared settings that a resumed run must share: ``declared.json`` holds a fingerprint of the configuration and of
the models (their files' hashes), and a resume under another configuration or other weights is refused, naming what
differs (a resumed comparison whose halves ran different settings would compare nothing)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tokentree_env.errors import ConfigError

IGNORED = frozenset({"out", "workers"})
"""Configuration fields that do not change what a run measures (where it writes; how many processes play the same
seeded episodes)."""


def file_hash(path: Path, chunk: int = 2**20) -> str:
    """SHA-256 of a file, short."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]


def model_hash(spec: str) -> str:
    """A hash of the files a model spec loads (a zoo or local folder's files, a GGUF file); the spec itself where it
    names nothing on this disk (a hub id, a server)."""
    from tokentree_env.models.loader import resolve_model_path

    path = spec
    if spec.startswith("pkg:"):
        from tokentree_env.models.packaged import packaged_gguf

        path = str(packaged_gguf(spec.removeprefix("pkg:")))
    elif spec.startswith("gguf:"):
        path = spec.removeprefix("gguf:")
    elif spec.startswith("zoo:"):
        path = resolve_model_path(spec)
    found = Path(path)
    if found.is_file():
        return file_hash(found)
    if found.is_dir():
        digest = hashlib.sha256()
        for f in sorted(p for p in found.rglob("*") if p.is_file()):
            digest.update(f"{f.relative_to(found)}:{file_hash(f)}".encode())
        return digest.hexdigest()[:16]
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def fingerprint(config: dict, models: Iterable[str | None]) -> dict:
    """The configuration (without :data:`IGNORED` fields) and each model's file hash."""
    kept = {k: v for k, v in config.items() if k not in IGNORED}
    return {"config": json.loads(json.dumps(kept, sort_keys=True, default=str)),
            "models": {m: model_hash(m) for m in dict.fromkeys(m for m in models if m)}}


def differences(stored: dict, now: dict) -> list[str]:
    """What differs between two fingerprints, one line per setting or model."""
    out = []
    for key in sorted(set(stored.get("config", {})) | set(now["config"])):
        a, b = stored.get("config", {}).get(key, "<absent>"), now["config"].get(key, "<absent>")
        if a != b:
            out.append(f"{key}: declared {a!r}, now {b!r}")
    for model in sorted(set(stored.get("models", {})) | set(now["models"])):
        a, b = stored.get("models", {}).get(model), now["models"].get(model)
        if a != b:
            out.append(f"model {model}: declared {a or 'absent'}, now {b or 'absent'} (its files changed)")
    return out


def declare_once(path: Path, config: dict, models: Iterable[str | None], make: Callable[[], dict]) -> dict:
    """``declared.json`` at ``path``: made by ``make()`` (stamped with the fingerprint and the time) the first time;
    on resume, read back after checking that the configuration and the models are the ones declared."""
    now = fingerprint(config, models)
    if path.exists():
        declared = json.loads(path.read_text())
        if "fingerprint" not in declared:
            raise ConfigError(f"{path} was declared before declarations carried a fingerprint, so a resume cannot "
                              "check that it runs the same configuration: start a new run (another --out)")
        if found := differences(declared["fingerprint"], now):
            raise ConfigError(f"{path} declares another configuration than this run's; resume with the declared one, "
                              "or start a new run (another --out). Differences:\n  " + "\n  ".join(found))
        return declared
    declared = make()
    declared.setdefault("declared_at", time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    declared["fingerprint"] = now
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(declared, indent=1))
    return declared


__all__ = ["declare_once", "differences", "fingerprint", "model_hash"]
