"""Typed errors of TokenTree.

Every error the library raises on purpose derives from :class:`TokenTreeError`, so
``except TokenTreeError`` catches them all. Each message says what was received and
what to do about it.

Exception tree::

    TokenTreeError
    ├── ConfigError            a bad argument or configuration value (also a ValueError)
    │   ├── PromptError        a prompt the primary's tokenizer cannot read faithfully
    │   └── TreeMismatchError  a saved token tree built by other models than the env's
    ├── ModelNotFoundError     a model name that cannot be resolved (offline, or misspelt)
    ├── TaskFormatError        a malformed task file or dataset row (also a ValueError)
    ├── ContextTooLongError    a context longer than a model's window
    ├── ModelOutputError       a model returned NaN/inf logits or an unusable answer
    ├── RemoteTeacherError     a remote teacher's server failed (after retries) or sent a malformed response
    ├── EnvStateError          an env method called in the wrong state (step before reset, ...)
    ├── VerifierLeakError      evaluation mode refused a setting or call that shows the verifier to a planner
    ├── InvalidActionError     an action outside the action space, or a masked one when masked
    │                          actions are set to raise (also a ValueError)
    └── PackageNameClashError  a name of another package installed as ``agents`` (openai-agents) was asked of
                               TokenTree's ``agents`` (also an ImportError)
"""

from __future__ import annotations


class TokenTreeError(Exception):
    """Base class of every error raised on purpose by TokenTree."""


class ConfigError(TokenTreeError, ValueError):
    """A bad argument or configuration value; the message names the field and the value."""


class PromptError(ConfigError):
    """A prompt the primary's tokenizer cannot encode faithfully: characters it maps to its unknown
    token, or special-token text (which is never read as a real special token). The message names the
    offending characters or tokens."""


class TreeMismatchError(ConfigError):
    """A saved token tree was built by other base models (teacher specs or tokenizers) than the env's."""


class ModelNotFoundError(TokenTreeError, OSError):
    """A model spec (hub id, local path or ``zoo:NAME``) that cannot be resolved.

    Likely cause: the machine is offline (``HF_HUB_OFFLINE=1``) and the model is not in the
    local cache, the path is misspelt, or the zoo name does not exist.
    """


class TaskFormatError(TokenTreeError, ValueError):
    """A malformed task file line or dataset row; the message names the file and line."""


class ContextTooLongError(TokenTreeError, ValueError):
    """A context longer than a model's context window; the message names the model."""


class ModelOutputError(TokenTreeError, RuntimeError):
    """A model produced unusable output, e.g. NaN or infinite logits."""


class RemoteTeacherError(TokenTreeError, RuntimeError):
    """A remote teacher's server could not be reached after retries, timed out, or sent a
    malformed response; the message names the server, the model and what failed."""


class EnvStateError(TokenTreeError, RuntimeError):
    """An environment method was called in a state that does not allow it."""


class VerifierLeakError(TokenTreeError):
    """Evaluation mode refused a setting or a call that would show the task verifier to a planner
    (the verifier may score only the final answer of an evaluated episode)."""


class InvalidActionError(TokenTreeError, ValueError):
    """An action outside the action space, or a masked action when the env is set to raise."""


class PackageNameClashError(TokenTreeError, ImportError):
    """A name of OpenAI's ``openai-agents`` package was asked of TokenTree's ``agents`` package: both use the import
    name ``agents``, so they cannot be installed together. An ImportError, so ``from agents import Runner`` shows
    this message rather than a bare "cannot import name"."""
