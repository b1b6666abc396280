"""Model set-up for the env: model specs (``zoo:NAME``, paths, hub ids, ``openai:MODEL@URL``) or
objects become the primary, the teacher stack and the judge. Knows nothing of the env."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokentree_env.errors import ConfigError
from tokentree_env.judge import Judge
from tokentree_env.teachers import HFTeacher, Teacher
from tokentree_env.teachers.base import CostCounter, charging_all


@dataclass
class EnvModels:
    """The models an env runs: the primary (the policy and canonical vocabulary), the teachers, the judge."""

    primary: HFTeacher
    teachers: list[Teacher]
    judge: Judge | None
    similarity: object | None = None  # a scorer that runs a model (a sentence embedder) is charged like one

    @classmethod
    def build(cls, teachers: Sequence[str | Teacher] | str | Teacher, primary: str | HFTeacher,
              judge: str | Judge | None, *, cache_bytes: int, device: str | None = None, dtype=None) -> EnvModels:
        """Resolve specs into models on ``device`` in ``dtype`` (default: the hardware's). A teacher spec equal to
        the primary's name reuses the primary (one forward serves both roles); ``openai:MODEL@BASE_URL`` is a
        remote teacher."""
        if isinstance(teachers, (str, Teacher)):
            teachers = [teachers]
        placed = {"device": device, "dtype": dtype}
        if not isinstance(primary, HFTeacher):
            primary = HFTeacher(primary, cache_bytes=cache_bytes, **placed)
        stack = [_teacher(t, primary, cache_bytes, placed) for t in teachers]
        _unique_names(stack, [t for t in teachers if isinstance(t, Teacher)], primary)
        judge = Judge(judge, **placed) if isinstance(judge, str) else judge  # or any object with Judge's methods
        if judge is not None:
            judge.bind(primary.tokenizer)
        return cls(primary, stack, judge)

    def counters(self) -> dict[str, CostCounter]:
        """Every model's work counter by its unique name (teachers, primary, judge, a model-running similarity
        scorer): one entry per model object, so two copies of one model are charged apart."""
        out = {m.name: m.counters for m in dict.fromkeys([*self.teachers, self.primary])}
        if self.judge is not None:
            out[f"judge:{self.judge.name}"] = self.judge.counters
        if self.similarity is not None and getattr(self.similarity, "runs_model", False):
            out[f"similarity:{self.similarity.name}"] = self.similarity.counters
        return out

    def parameters(self) -> dict[str, int | None]:
        """Every model's parameter count, by the names of :meth:`counters` (None where unknown)."""
        out = {m.name: m.parameters for m in dict.fromkeys([*self.teachers, self.primary])}
        if self.judge is not None:
            out[f"judge:{self.judge.name}"] = getattr(self.judge, "parameters", None)
        if self.similarity is not None and getattr(self.similarity, "runs_model", False):
            out[f"similarity:{self.similarity.name}"] = getattr(self.similarity, "parameters", None)
        return out

    def costs(self) -> dict[str, dict[str, int]]:
        """Forward calls, forwarded and generated tokens per model so far (teachers, primary, judge)."""
        return {name: counter.as_dict() for name, counter in self.counters().items()}

    def charging(self, owner):
        """Charge every model's work inside the block to ``owner`` (work that does not name its own owner)."""
        return charging_all(self.counters().values(), owner)

    def close(self) -> None:
        for model in dict.fromkeys([*self.teachers, self.primary]):
            model.close()
        if self.judge is not None:
            self.judge.close()


def _unique_names(stack: list[Teacher], given: list[Teacher], primary: HFTeacher) -> None:
    """Give every model a name of its own, so that costs, reference answers and tables keep them apart: a second
    model built here from an already used spec (``["zoo:teacher-llama", "zoo:teacher-llama"]``) is named
    ``"zoo:teacher-llama#2"``. A teacher object passed in is never renamed: two such objects with one name, or one
    object listed twice, are refused."""
    seen: dict[str, Teacher] = {primary.name: primary}
    for teacher in stack:
        if teacher is primary:
            continue
        holder = seen.get(teacher.name)
        if holder is teacher:
            raise ConfigError(f"the teacher {teacher.name!r} is listed twice (the same object); list it once")
        if holder is not None:
            if teacher in given:
                raise ConfigError(f"two models are named {teacher.name!r}; give each teacher object its own `name`, "
                                  "so that their costs and answers are kept apart")
            base, k = teacher.name, 2
            while f"{base}#{k}" in seen:
                k += 1
            teacher.name = f"{base}#{k}"
        seen[teacher.name] = teacher


def _teacher(spec, primary: HFTeacher, cache_bytes: int, placed: dict) -> Teacher:
    if isinstance(spec, Teacher):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"a teacher is a model name or a Teacher object, got {type(spec).__name__}")
    if spec == primary.name:
        return primary
    if spec.startswith("openai:"):
        from tokentree_env.teachers.remote import OpenAITeacher, parse_spec

        model, base_url = parse_spec(spec)
        return OpenAITeacher(base_url, model)
    return HFTeacher(spec, cache_bytes=cache_bytes, **placed)
