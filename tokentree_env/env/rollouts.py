"""Panel-greedy rollouts for many leaves at once: what a search's leaf values cost, at the speed of the forwards.

A rollout finishes an answer from a leaf by the teacher panel's greedy rule (at each node, the slate's child with
the highest panel log-prob: the ``panel_logprob`` column a search's ``rollout="teacher"`` follows) and sums the
rewards the env pays on the way. Done through ``simulate`` one step at a time, each step builds an observation and
an info that nobody reads. Here the steps of every live rollout advance together (one ``prefetch``, so one
batched forward per model), take the same transitions with ``observe=False``, and every finished rollout is
**remembered** at each node it passed: a later rollout that reaches such a node (the next move's search often
starts on the last rollout's path) is finished at once. The rule is deterministic and a node's rewards depend on
its path alone, so the values, tokens and verdicts are those of the step-by-step rollout, exactly; what a cache hit
saves was never model work (the models' caches already answered it), so no charge changes.

The memory is keyed by every model's version (a trained primary proposes other children) and forgotten when trees
are loaded. Knows nothing of the env: it is given the expander, a transition (``step(state, action)``, the env's ``simulate``
without an observation) and a ``prefetch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tokentree_env.env.state import EnvState
from tokentree_env.errors import ConfigError

WRITE = -2
"""The action that asks ``prefetch`` for a state's writer rollout (:class:`WriterRollouts`)."""


def drain(steps, prefetch: Callable) -> list:
    """Run a rollout step generator alone: each ``(state, action)`` request it yields is prefetched in one batch, then
    it is resumed; its return value is the rollouts."""
    try:
        request = next(steps)
        while True:
            if request:
                prefetch([s for s, _ in request], [a for _, a in request])
            request = steps.send(None)
    except StopIteration as done:
        return done.value


@dataclass
class Rollout:
    """A finished rollout: the rewards from its leaf to the end (summed in order: ``value``), the tokens it played,
    and its end."""

    rewards: list[float]
    tokens: list[int]
    verdict: float | None = None  # the judge's raw P(yes) of the finished answer (judge on)
    reason: str | None = None  # why the answer ended ("eos", "judge", "max_new_tokens"); None if cut short
    verified: float | None = None  # the verifier's score of the finished answer, where planners see it

    @property
    def value(self) -> float:
        total = 0.0
        for reward in self.rewards:  # left to right, as a step-by-step rollout adds them
            total += reward
        return total


@dataclass
class _Walk:
    state: EnvState
    limit: int
    nodes: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    end: tuple = (None, None, None)


class PanelRollouts:
    """Panel-greedy rollouts over an env's parts (see the module docstring).

    Args:
        expander: the env's expander (slates, model versions).
        step: ``step(state, action) -> (next_state, None, reward, terminated, truncated, info)``: the env's planner
            transition without an observation.
        tree_of: the tree of a prompt.
        prefetch: the env's ``prefetch(states, actions)``.
    """

    def __init__(self, expander, step: Callable, tree_of: Callable, prefetch: Callable,
                 task_score: Callable = lambda terms: None) -> None:
        self.expander, self.step, self.tree_of, self.prefetch = expander, step, tree_of, prefetch
        self.task_score = task_score
        self._memory: dict[tuple, Rollout] = {}
        self._versions: tuple | None = None

    def forget(self) -> None:
        """Drop every remembered rollout (trees replaced, or the models changed)."""
        self._memory.clear()

    def __call__(self, states: Sequence[EnvState], max_steps: Sequence[int] | int) -> list[Rollout]:
        """The rollout from each state, at most ``max_steps`` steps (one number, or one per state)."""
        return drain(self.steps(states, max_steps), self.prefetch)

    def steps(self, states: Sequence[EnvState], max_steps: Sequence[int] | int):
        """:meth:`__call__` as a step generator: each step yields the ``(state, action)`` transitions whose model work
        it needs (one ``prefetch`` serves it, beside other searches' requests); returns the rollouts."""
        if self._versions != self.expander.versions():
            self.forget()
            self._versions = self.expander.versions()
        limits = [max_steps] * len(states) if isinstance(max_steps, int) else list(max_steps)
        out: list[Rollout | None] = [None] * len(states)
        live = {i: _Walk(s, limit) for i, (s, limit) in enumerate(zip(states, limits, strict=True))}
        while live:
            for i in list(live):
                walk = live[i]
                known = self._memory.get((walk.state.prompt, walk.state.node))
                if known is not None or walk.state.done:
                    out[i] = self._finish(walk, known)
                    del live[i]
                elif len(walk.tokens) >= walk.limit:  # cut short: not remembered
                    out[i] = Rollout(list(walk.rewards), list(walk.tokens))
                    del live[i]
            if not live:
                break
            walks = list(live.values())
            trees = [self.tree_of(w.state.prompt) for w in walks]
            self.expander.expand_many([(t, w.state.node) for t, w in zip(trees, walks, strict=True)])
            actions = [int(np.argmax(t.nodes[w.state.node].slate.panel)) for t, w in zip(trees, walks, strict=True)]
            yield [(w.state, a) for w, a in zip(walks, actions, strict=True)]
            for tree, walk, action in zip(trees, walks, actions, strict=True):
                state, _, reward, terminated, truncated, info = self.step(walk.state, action)
                walk.nodes.append(walk.state.node)
                walk.tokens.append(int(tree.nodes[state.node].token))
                walk.rewards.append(float(reward))
                walk.state = state
                if terminated or truncated:
                    walk.end = (info.get("judge_verdict"), info.get("terminal_reason"),
                                self.task_score(info.get("reward_terms", {})))
        return out

    def _finish(self, walk: _Walk, known: Rollout | None) -> Rollout:
        """A walk that reached a remembered node or the answer's end: its rollout, remembered at every node it
        passed (the suffix from each)."""
        tail = known or Rollout([], [], *walk.end)
        for k, node in enumerate(walk.nodes):
            self._memory[(walk.state.prompt, node)] = Rollout(walk.rewards[k:] + tail.rewards,
                                                               walk.tokens[k:] + tail.tokens, tail.verdict, tail.reason,
                                                               tail.verified)
        return Rollout(walk.rewards + tail.rewards, walk.tokens + tail.tokens, tail.verdict, tail.reason,
                       tail.verified)




class WriterRollouts:
    """AlphaGo's fast rollout policy over the panel: the leaf's **writer** (the teacher with the largest panel weight
    there) finishes the answer with its own batched greedy decoding (``generate`` over its own reading of the
    context: the prompt in its format and the answer so far), and the text it writes is re-tokenised into the
    primary's vocabulary. No slate, observation or tree node is made for those tokens.

    The value is what the env pays for that answer: the per-token length cost of its new tokens and the end's terms
    of the completed answer (the verifier where planners see it, the judge's verdict, the excess length, a user's
    reward), computed by the env's own transitions. The panel's per-token term is left out of the rollout's part:
    computing it would take every teacher's forward of every token, which this policy exists to avoid. Every token
    the writer reads and writes is charged to the leaf's episode. A remote teacher cannot write (no ``generate``).

    :meth:`warm` does the work of many leaves at once (one ``generate`` per writer); :meth:`__call__` reads it.
    """

    def __init__(self, expander, transitions, tree_of: Callable, reward_config, max_new_tokens: int) -> None:
        self.expander, self.transitions, self.tree_of = expander, transitions, tree_of
        self.reward_config, self.max_new_tokens = reward_config, max_new_tokens
        self._done: dict[tuple, Rollout] = {}
        self._versions: tuple | None = None

    def warm(self, states: Sequence[EnvState]) -> None:
        """Write the rollouts of ``states`` (batched per writer; the judge's verdicts of every finished answer in one
        batch) and keep them for :meth:`__call__`."""
        from tokentree_env.models.generation import greedy_ids

        if self._versions != self.expander.versions():
            self.forget()
            self._versions = self.expander.versions()
        written = []  # (tree, state, text, ended)
        todo: dict[int, list[EnvState]] = {}
        for state in dict.fromkeys(s for s in states if (s.prompt, s.node) not in self._done and not s.done):
            writer = self.expander.writer(self.tree_of(state.prompt), state.node)
            todo.setdefault(writer, []).append(state)
        for writer, group in todo.items():
            teacher = self.expander.teachers[writer]
            if getattr(teacher, "remote", False) or not hasattr(teacher, "model"):
                raise ConfigError(f"rollout='writer' needs a local teacher to write, but the writer {teacher.name!r} "
                                  "is served remotely: use rollout='teacher'")
            trees = [self.tree_of(s.prompt) for s in group]
            contexts = [t.context(s.node, self.expander.decode) for t, s in zip(trees, group, strict=True)]
            rows = [list(teacher.own_ids(c)) for c in contexts]
            budgets = [max(1, self.max_new_tokens - s.length) for s in group]
            # one generate for the writer's leaves; a row is cut at its own budget (what a batch computes past a row's
            # end, or past its budget, is padding work: not charged, as padding never is)
            news = greedy_ids(teacher.model, teacher.tokenizer, rows, max_new_tokens=max(budgets))
            for i, (new, budget) in enumerate(zip(news, budgets, strict=True)):
                ended = len(new) < budget  # stopped at its EOS within its budget
                new = new[:budget]
                generated = len(new) + ended
                teacher.counters.add(calls=generated, forwarded=len(rows[i]) + generated - 1, generated=generated,
                                     owner=trees[i].owner)
                written.append((trees[i], group[i], teacher.tokenizer.decode(new, skip_special_tokens=True), ended))
        judge = self.transitions.judge
        if written and judge is not None and self.transitions.judge_verdict and hasattr(judge, "verdicts"):
            judge.verdicts([t.prompt for t, _, _, _ in written],
                           [self.expander.decode(t.path_tokens(s.node)) + text for t, s, text, _ in written],
                           [t.owner for t, _, _, _ in written])
        for tree, state, text, ended in written:
            self._done[(state.prompt, state.node)] = self._value(tree, state, text, ended)

    def _value(self, tree, state: EnvState, text: str, ended: bool) -> Rollout:
        """The rollout of a leaf whose writer wrote ``text``: its primary tokens and the rewards the env pays."""
        tokens = list(self.expander.tokenizer(text, add_special_tokens=False)["input_ids"])
        if ended:
            tokens.append(self.expander.eos_id)
        tokens = tokens[: max(0, self.max_new_tokens - state.length)] or [self.expander.eos_id]
        length = state.length + len(tokens)
        completion = self.expander.decode(tree.path_tokens(state.node)) + text
        terms, verdict = self.transitions.answer_terms(tree, completion, length, planner=True)
        rewards = [-self.reward_config.length_cost] * len(tokens)
        rewards[-1] += float(sum(terms.values()))
        verified = terms["task"] / max(self.reward_config.task_weight, 1e-12) if "task" in terms else None
        return Rollout(rewards, tokens, verdict, "eos" if ended else "max_new_tokens", verified)

    def __call__(self, states: Sequence[EnvState]) -> list[Rollout]:
        """The rollouts of ``states`` (written now where :meth:`warm` did not)."""
        self.warm(states)
        return [self._done[(s.prompt, s.node)] for s in states]

    def forget(self) -> None:
        self._done.clear()


class RolloutAPI:
    """The rollouts of the agents' door (mixed into :class:`~tokentree_env.env.TokenTreeEnv`: its panel and writer
    rollouts and its ``prefetch``)."""

    def rollout(self, states: Sequence[EnvState], max_steps: Sequence[int] | int, policy: str = "panel"
                ) -> list[Rollout]:
        """Rollouts from many states at once (:mod:`.rollouts`). ``"panel"``: each finishes its answer by the
        panel's top child and sums the rewards ``simulate`` would pay, without observations, remembering each finished
        rollout at every node it passed (the same values and tokens as rolling out through ``simulate``).
        ``"writer"``: the leaf's writer finishes the answer with its own batched ``generate`` (AlphaGo's fast rollout
        policy; :class:`~.rollouts.WriterRollouts` says what its value counts)."""
        return drain(self.rollout_steps(states, max_steps, policy), self.prefetch)

    def rollout_steps(self, states: Sequence[EnvState], max_steps: Sequence[int] | int, policy: str = "panel"):
        """:meth:`rollout` as a step generator: it yields the ``(state, action)`` transitions whose model work it
        needs (for one ``prefetch`` beside other work; a writer's rollout is the action ``WRITE``) and returns the
        rollouts."""
        if policy == "writer":
            return self._written(states)
        if policy != "panel":
            raise ConfigError(f"rollout policy {policy!r} is not 'panel' or 'writer'")
        return self.rollouts.steps(states, max_steps)

    def _written(self, states: Sequence[EnvState]):
        yield [(s, WRITE) for s in states]
        return self.writer_rollouts(states)



__all__ = ["WRITE", "PanelRollouts", "Rollout", "RolloutAPI", "WriterRollouts"]
