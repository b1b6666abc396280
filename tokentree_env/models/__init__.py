"""Loading models by hub id, local path or ``zoo:NAME``, and batched greedy decoding."""

from tokentree_env.models.generation import greedy_complete, next_token_logprobs
from tokentree_env.models.loader import LoadedModel, load_model, resolve_model_path, zoo_dir

__all__ = ["LoadedModel", "greedy_complete", "load_model", "next_token_logprobs", "resolve_model_path", "zoo_dir"]
