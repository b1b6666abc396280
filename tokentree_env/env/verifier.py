"""The task's verifier and who may see it: the env's episode scores every final answer; planners
(``simulate``) see it only in self-play with ``planner_verifier=True`` and only on train-split prompts,
or with the legacy ``hide_verifier_from_planner=False``; evaluation mode refuses both, and refuses to
score a simulated state. Knows nothing of the env."""

from __future__ import annotations

from tokentree_env.errors import VerifierLeakError
from tokentree_env.tasks import Problem, Task


class VerifierGate:
    """The task, its problems by prompt, and the rules of who may read its verifier.

    Args:
        task: the task whose verifier scores answers.
        evaluation: evaluation mode: no setting or call may show the verifier to a planner.
        hide_from_planner: withhold the verifier from planners on every prompt (default).
        planner_verifier: the self-play switch: show it to planners on train-split prompts.
    """

    def __init__(self, task: Task, *, evaluation: bool, hide_from_planner: bool = True,
                 planner_verifier: bool = False) -> None:
        self.task, self.evaluation = task, evaluation
        self.hide_from_planner = hide_from_planner
        self.planner_verifier = planner_verifier
        self._by_prompt: dict[str, Problem] | None = None
        self._train: frozenset[str] | None = None
        self._problems: dict[str, Problem] = {}
        self._answerless: set[str] = set()

    @property
    def hide_from_planner(self) -> bool:
        return self._hide

    @hide_from_planner.setter
    def hide_from_planner(self, value: bool) -> None:
        if not value and self.evaluation:
            raise VerifierLeakError("evaluation=True refuses hide_verifier_from_planner=False: a planner would "
                                    "read the task verifier; evaluate with the verifier hidden")
        self._hide = bool(value)

    @property
    def planner_verifier(self) -> bool:
        return self._planner_verifier

    @planner_verifier.setter
    def planner_verifier(self, value: bool) -> None:
        if value and self.evaluation:
            raise VerifierLeakError("evaluation=True refuses planner_verifier=True: the verifier may score only "
                                    "the final answer of an evaluated episode, never a planner's leaves")
        self._planner_verifier = bool(value)

    def problem(self, prompt: str, answer: str | None = None) -> Problem:
        """The task's problem for ``prompt``; else one with the given ``answer``; else the one the task works out
        from the text (:meth:`~tokentree_env.tasks.base.Task.solve`); else one with no answer, which scores 0 and is
        named in ``info["answer_known"]`` (:meth:`knows_answer`)."""
        if self._by_prompt is None:  # built once: resets by prompt are the evaluation runner's hot path
            self._by_prompt = {p.prompt: p for split in self.task.splits for p in self.task.problems(split)}
        if prompt in self._problems and (answer is None or prompt in self._by_prompt):
            return self._problems[prompt]
        self._answerless.discard(prompt)  # a later reset may bring the answer an earlier one lacked
        found = self._by_prompt.get(prompt) or (Problem(prompt, answer) if answer is not None else None)
        found = found or self.task.solve(prompt)
        if found is None:
            found = Problem(prompt, "", verifier=lambda completion, ans: 0.0)
            self._answerless.add(prompt)
        self._problems[prompt] = found
        return found

    def knows_answer(self, prompt: str) -> bool:
        """Whether the verifier has an answer for ``prompt`` (False: every answer to it scores 0; reset with
        ``options={"prompt": ..., "answer": ...}``)."""
        self.problem(prompt)
        return prompt not in self._answerless

    def shown_to_planner(self, prompt: str) -> bool:
        """Whether planners' simulated leaves on ``prompt`` are scored by the verifier."""
        if not self._hide:
            return True
        if not self._planner_verifier:
            return False
        if self._train is None:
            self._train = frozenset(p.prompt for p in self.task.problems("train"))
        return prompt in self._train

    def score(self, prompt: str, completion: str, *, planner: bool) -> float | None:
        """The hard reward of ``completion``, or None where the verifier is withheld from a planner."""
        if planner and not self.shown_to_planner(prompt):
            return None
        return self.task.verify(self._problems[prompt], completion)

    def score_final(self, prompt: str, completion: str, *, simulated: bool) -> float:
        """The hard reward of a finished episode's answer; evaluation refuses a simulated one."""
        if self.evaluation and simulated:
            raise VerifierLeakError("evaluation=True refuses hard_reward() on a simulated state: the verifier "
                                    "scores only the final answer of the episode played with step()")
        return self.task.verify(self._problems[prompt], completion)


def gate_flag(name: str, doc: str) -> property:
    """An env attribute kept by its ``verifier`` gate: reads and writes (with the gate's refusals) go there."""
    return property(lambda env: getattr(env.verifier, name), lambda env, value: setattr(env.verifier, name, value),
                    doc=doc)
