"""One transition of an episode: choose a child, score it, detect the end, observe. The env's ``step`` and
``simulate`` (and lockstep play) all go through :class:`Transitions`. Knows nothing of the env: it is given
the expander, the terminal detector, the judge, the verifier gate, the observation builder and the rewards."""

from __future__ import annotations

from dataclasses import dataclass

from tokentree_env.env.state import EnvState, action_index
from tokentree_env.errors import InvalidActionError
from tokentree_env.rewards import RewardConfig, RewardFn, final_terms, step_terms
from tokentree_env.tree import TokenTree


@dataclass
class Transitions:
    """The parts a transition reads, and how it treats a masked action."""

    expander: object
    detector: object
    judge: object | None
    verifier: object
    observer: object
    reward_config: RewardConfig
    reward_fn: RewardFn | None
    width: int
    masked_action: str = "remap"
    judge_verdict: bool = True

    def __call__(self, tree: TokenTree, state: EnvState, action, *, planner: bool, observe: bool = True):
        """``(next_state, observation, reward, terminated, truncated, info)`` after ``action`` from ``state``;
        ``planner`` marks a planner's simulation (the verifier is withheld unless the gate shows it). Without
        ``observe`` (a rollout's steps) no observation is built: it is None, and ``info`` holds the reward terms, the
        end's reason and the judge's verdict only."""
        index = action_index(action, self.width)
        slate, = self.expander.expand(tree, [state.node])
        invalid = index >= len(slate)
        if invalid:
            if self.masked_action == "raise":
                raise InvalidActionError(f"action {index} is masked: this node has {len(slate)} valid children")
            index %= len(slate)
        token = int(slate.tokens[index])
        child = self.expander.child(tree, state.node, index)
        length = state.length + 1
        terms = step_terms(slate.panel[index], self.reward_config)
        if invalid:
            terms["invalid_action"] = -self.reward_config.invalid_action_penalty
        terminated, truncated, reason = self.detector.check(token, tree.context(child, self.expander.decode), length)
        verdict = None
        if terminated or truncated:
            final, verdict = self.final_terms(tree, child, length, planner)
            terms.update(final)
        reward = float(sum(terms.values()))
        next_state = EnvState(state.prompt, child, length, (*state.path, (state.node, index)),
                              state.episode_return + reward, terminated or truncated, simulated=planner)
        if observe:
            obs = self.observer.observe(tree, next_state)
            info = self.observer.info(tree, next_state, terms, reason, invalid)
        else:
            obs, info = None, {"reward_terms": terms, "terminal_reason": reason}
        if verdict is not None:
            info["judge_verdict"] = verdict  # the judge's raw P(yes), whatever its reward weight
        if (terminated or truncated) and not self.verifier.knows_answer(state.prompt):
            info["answer_known"] = False  # the task scored 0 for want of an answer, not for a wrong one
        return next_state, obs, reward, terminated, truncated, info

    def final_terms(self, tree: TokenTree, node: int, length: int, planner: bool) -> tuple[dict[str, float], float | None]:
        """The end-of-episode terms (the verifier where shown, the judge's verdict, the length penalty, the user's)
        and the judge's raw P(yes) (None with the judge off)."""
        return self.answer_terms(tree, self.expander.decode(tree.path_tokens(node)), length, planner)

    def answer_terms(self, tree: TokenTree, completion: str, length: int, planner: bool
                     ) -> tuple[dict[str, float], float | None]:
        """:meth:`final_terms` of a finished answer given as text, ``length`` primary tokens long (a rollout that
        finished the answer outside the tree)."""
        hard = self.verifier.score(tree.prompt, completion, planner=planner)  # None: withheld from a planner
        p_yes = (self.judge.verdict(tree.prompt, completion, tree.owner) if self.judge is not None and self.judge_verdict
                 else None)
        summary = {"prompt": tree.prompt, "completion": completion, "answer": self.verifier.problem(tree.prompt).answer,
                   "length": length, "min_length": tree.min_reference_length}
        terms = final_terms(hard_reward=hard, judge_p_yes=p_yes, length=length, min_length=tree.min_reference_length,
                            config=self.reward_config, reward_fn=None if hard is None else self.reward_fn, summary=summary)
        return terms, p_yes
