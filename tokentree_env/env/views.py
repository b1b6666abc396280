"""The read-only views of the agents' door (:mod:`tokentree_env.env.door`), mixed into the env: what an agent may
read of a state or of the set-up without reaching into the env's parts (observer, expander, tree store, reward
config, detector)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tokentree_env.tree import ROOT


class AgentViews:
    """Read-only views for agents (see :mod:`tokentree_env.env.door`). Mixed into
    :class:`~tokentree_env.env.TokenTreeEnv`, whose parts it reads."""

    @property
    def teacher_names(self) -> list[str]:
        """The teachers' names, in the order of the panel's weights and per-teacher log-probs in ``info["panel"]``."""
        return [t.name for t in self.models.teachers]

    @property
    def judge_verdicts(self) -> bool:
        """Whether a finished answer gets the judge's verdict (``info["judge_verdict"]``, the judge's reward term)."""
        return self.judge is not None and bool(self.judge_verdict)

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in primary tokens (the env truncates there)."""
        return int(self.detector.config.max_new_tokens)

    @property
    def weightage_updates(self) -> dict[str, int]:
        """The weightage rule's effect so far: factors lowered and raised, episodes applied."""
        return self.store.updates

    def model_parameters(self) -> dict[str, int | None]:
        """Every model's parameter count, by the names of :meth:`costs` (the weights of compute parity)."""
        return self.models.parameters()

    def verify(self, prompt: str, completion: str) -> float:
        """The verifier's score of an answer to a train prompt, for making self-play data (the teachers' greedy answers
        of coverage-first self-play); refused in evaluation mode, where the verifier scores final answers only."""
        if self.evaluation:
            from tokentree_env.errors import VerifierLeakError

            raise VerifierLeakError("verify() shows the verifier to an agent; evaluation mode scores only an episode's "
                                    "own final answer (hard_reward)")
        return float(self.task.verify(self.verifier.problem(prompt), completion))

    def claim_preparation(self, prompt: str) -> dict[str, dict[str, int]]:
        """What ``prepare`` spent on ``prompt`` (the teachers' reference answers, the judge's workings), per model, now
        claimed by the caller (data made from it outside an episode); the prompt's next episode owes none of it."""
        return self.store.take_pending(prompt)

    def teacher_samples(self, prompts: Sequence[str], teacher: int, n: int = 1, *, temperature: float = 1.0,
                        seed: int = 0) -> list[list[list[int]]]:
        """``n`` samples at ``temperature`` of each prompt's answer by teacher ``teacher`` (an index of
        :attr:`teacher_names`), in primary ids with EOS last, each prompt read once. Their cost joins the prompt's
        preparation (:meth:`claim_preparation`): data made outside an episode."""
        from tokentree_env.teachers.base import COST_FIELDS
        from tokentree_env.teachers.sampling import teacher_samples

        model = self.models.teachers[teacher]
        owners = [("sample", p) for p in prompts]
        texts = teacher_samples(model, prompts, n=n, temperature=temperature, max_new_tokens=self.max_new_tokens,
                                seed=seed, owners=owners)
        for prompt, owner in zip(prompts, owners, strict=True):
            owed = self.store.pending.setdefault(prompt, {}).setdefault(model.name, dict.fromkeys(COST_FIELDS, 0))
            for field, value in model.counters.take(owner).items():
                owed[field] += value
        encode = self.expander.tokenizer
        return [[[*encode(t, add_special_tokens=False)["input_ids"], self.expander.eos_id] for t in row] for row in texts]

    def has_tree(self, prompt: str) -> bool:
        """Whether this env holds a tree for ``prompt`` (built, prepared or loaded)."""
        return prompt in self.store

    def state_info(self, state) -> dict:
        """The ``info`` the env reports at ``state`` (its text, candidates, provenance and panel), as ``reset`` and
        ``begin`` give it for a root."""
        return self.observer.info(self.store[state.prompt], state, {}, None, False)

    def path_tokens(self, state) -> list[int]:
        """The answer so far at ``state``: its primary token ids after the prompt."""
        return list(self.store[state.prompt].path_tokens(state.node))

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt's primary token ids as the env reads it (its chat template when the primary has one)."""
        return list(self.store[prompt].nodes[ROOT].ids)

    def state_ids(self, state) -> tuple[int, ...]:
        """The primary ids of prompt + answer so far at ``state`` (hashable: a key for what a state has seen)."""
        return self.store[state.prompt].nodes[state.node].ids

    def reference_answers(self, prompt: str) -> list[list[int]]:
        """The teachers' greedy reference answers of ``prompt`` (primary ids, EOS last), in teacher order."""
        return [list(path) for path in self.store[prompt].reference_paths.values()]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of primary token ids (special tokens dropped)."""
        return self.expander.decode(ids)

    def task_score(self, reward_terms: dict) -> float | None:
        """The verifier's score in [0, 1] read from a transition's reward terms, or None where the env withheld it
        (evaluation, or a planner's simulation without ``planner_verifier``)."""
        if "task" not in reward_terms:
            return None
        return float(reward_terms["task"]) / max(self.reward_config.task_weight, 1e-12)

    def panel_path_logprob(self, teacher_logprobs: Sequence[Sequence[float]]) -> float:
        """The panel's log-probability of a path from its tokens' per-teacher log-probs ``(T, K)`` (the rows of
        ``info["panel"]["teacher_logprobs"]`` along it): the one panel rule, :mod:`tokentree_env.scoring.panel`."""
        return float(self.expander.panel.path_logprob(np.asarray(teacher_logprobs, dtype=np.float64)))

    def panel_step_prior(self, weights: Sequence[float], own_steps: Sequence[Sequence[float]]) -> np.ndarray:
        """Which teacher writes the next step at a boundary whose panel weights are ``weights`` (``info["panel"]
        ["weights"]``), from each teacher's log-probs of its own greedy step: :meth:`Panel.step_prior`."""
        log_weights = np.log(np.maximum(np.asarray(weights, dtype=np.float64), 1e-300))
        return self.expander.panel.step_prior(log_weights, [np.asarray(s, dtype=np.float64) for s in own_steps])

    def at_step_boundary(self, text: str) -> bool:
        """Whether an answer's text ends at one of the task's step boundaries (where step options choose a writer)."""
        return bool(self.task.answer_format.at_boundary(text))
