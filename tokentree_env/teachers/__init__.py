"""Teachers: models that propose next tokens in the primary's vocabulary (local HF, remote, scripted)."""

from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB, piece_to_primary_map, to_primary_logprobs
from tokentree_env.teachers.base import Context, CostCounter, Teacher, propose
from tokentree_env.teachers.hf import HFTeacher
from tokentree_env.teachers.kvstore import KVStore
from tokentree_env.teachers.remote import OpenAITeacher
from tokentree_env.teachers.scripted import ScriptedTeacher

__all__ = [
    "UNMAPPED_LOGPROB", "Context", "CostCounter", "HFTeacher", "KVStore", "OpenAITeacher", "ScriptedTeacher", "Teacher",
    "piece_to_primary_map", "propose", "to_primary_logprobs",
]
