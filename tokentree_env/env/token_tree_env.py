"""TokenTree-v0: text generation as a game tree, as a Gymnasium environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tokentree_env.env.costs import CostWindow
from tokentree_env.env.models import EnvModels
from tokentree_env.env.observation import FEATURES, ObservationBuilder
from tokentree_env.env.persistence import TreePersistence
from tokentree_env.env.prefetch import prefetch
from tokentree_env.env.render import render_text
from tokentree_env.env.rollouts import WRITE, PanelRollouts, RolloutAPI, WriterRollouts
from tokentree_env.env.state import EnvState
from tokentree_env.env.transitions import Transitions
from tokentree_env.env.trees import TreeStore
from tokentree_env.env.verifier import VerifierGate, gate_flag
from tokentree_env.env.views import AgentViews
from tokentree_env.errors import ConfigError, EnvStateError
from tokentree_env.judge import Judge
from tokentree_env.rewards import RewardConfig, RewardFn
from tokentree_env.scoring import MeanEmbeddingSimilarity, PanelConfig, Similarity
from tokentree_env.tasks import DEFAULT_TASK, Task, load_task
from tokentree_env.teachers import HFTeacher, Teacher
from tokentree_env.terminal import TerminalConfig, TerminalDetector
from tokentree_env.tree import ROOT, Expander, ExpansionConfig, TokenTree, WeightageRule
from tokentree_env.zoo.catalog import DEFAULT_JUDGE, DEFAULT_PRIMARY, DEFAULT_TEACHERS

MASKED_ACTIONS = ("remap", "raise")


class TokenTreeEnv(AgentViews, TreePersistence, RolloutAPI, gym.Env):
    """
    ## Description

    Text generation as an AlphaGo-Zero-style game tree. A stack of teacher LLMs (by default the built-in zoo's
    Llama, Qwen2 and GPT-2 teachers, with different tokenizers) and the primary LLM propose the next tokens of an
    answer to a task prompt: likely ones ("right direction") and deliberately unlikely ones ("wrong direction"). The
    agent picks one child per step. Each prompt's token tree persists across episodes, and each child's
    **weightage** learns from returns. The state is the primary-token ids of prompt + answer so far.

    ## Action Space

    `Discrete(width)`: the index of a child on the current slate. Only the first `n` indices are valid
    (`obs["action_mask"]`, `env.action_masks()`). A masked index is remapped to child `action % n` with a small
    penalty (`masked_action="remap"`, the default, because gymnasium's checker sends unmasked samples) or raises
    `InvalidActionError` (`masked_action="raise"`). An index outside the space always raises.

    ## Observation Space

    A `Dict` of 1-D `Box` spaces (accepted by SB3's `MultiInputPolicy`):

    | key | shape | dtype | meaning |
    |---|---|---|---|
    | `context` | `(max_context,)` | int64 | the last ids of prompt + answer, left-padded with the pad id |
    | `candidates` | `(width,)` | int64 | primary token id of each child (pad id where masked) |
    | `features` | `(width * 8,)` | float32 | per child, flattened: prior, similarity, weightage, primary log-prob, panel log-prob, vote share, right label, on a reference answer |
    | `action_mask` | `(width,)` | int8 | 1 for a valid child |

    `prior` is the normalised `weightage × similarity` (clipped at 0), optionally mixed with the primary's
    probabilities. The panel log-prob combines the teachers' by `panel` (default: a mixture whose weights follow the
    teacher writing the path; `info["panel"]` has the weights and each child's per-teacher log-probs). Log-probs are
    floored at log(1e-9).

    ## Rewards

    Per step: `alpha · log panel(child | context)` (summed: the panel's log-likelihood of the path) and
    `-length_cost`. At the end: the task verifier's hard reward (`task_weight`), the judge's verdict as a small
    shift (`judge_weight · (2 P(yes) - 1)`), `-excess_length_weight · max(0, L - L_min)` with `L_min` the shortest
    teacher reference answer, and the terms of a user `reward_fn`. Every term is itemised in `info["reward_terms"]`;
    weights are set with `reward_weights`. Planners (`simulate`) never see the verifier's term, except in self-play
    with `planner_verifier=True`, and then only on train-split prompts; `evaluation=True` refuses every way of
    showing it to them.

    ## Starting State

    A prompt drawn with `self.np_random` from the task's split (or `options["prompt"]`). Before a prompt's first
    episode, each teacher answers it greedily; the answers become reference paths of the tree (`info` marks children
    on them) and set `L_min`. `env.unwrapped.prepare(prompts)` does this for many prompts at once, in batches (the
    same trees, built far faster); what a prompt's rows cost there is charged to its first episode
    (`env.unwrapped.episode_costs()`). A prompt the primary's tokenizer cannot read faithfully raises `PromptError`
    (`allow_lossy_prompts=True` runs on the prompt as the primary reads it).

    ## Episode End

    - Termination: the agent chose the EOS child.
    - Termination: the chosen token ends with terminal punctuation (`.`, `!`, `?`, newline) and the judge's
      P(EOS | context) >= `judge_threshold`.
    - Truncation: `max_new_tokens` tokens were generated (the env owns truncation: no `max_episode_steps`).

    `info["terminal_reason"]` says which, and `info["judge_verdict"]` holds the judge's raw P(yes) of the answer
    (with the judge on). After the end, `reset()` must be called (also after a failed `reset()`). At each episode's
    end the weightage rule is applied along the path (`update_weightage=True`, off with `evaluation=True`, where the
    verifier must not shape later searches).

    ## Arguments

    ```python
    import gymnasium as gym
    import tokentree_env
    env = gym.make("TokenTree-v0")  # the zoo and the default task (chain3)
    env = gym.make("TokenTree-v0", teachers=["zoo:teacher-llama", "path/to/hf-model"], primary="zoo:primary",
                   judge="zoo:judge", task="my_task.jsonl", width=16, k_right=4, k_wrong=2, panel="mixture",
                   max_new_tokens=32, reward_weights={"alpha": 0.05, "judge_weight": 0.1})
    ```

    Models are `zoo:NAME`, hub ids, paths, `gguf:PATH`, `pkg:NAME` or objects (`judge=None`: no judge), on
    `device` in `dtype` (default: the hardware's). `task`: a built-in name, a JSONL path or a `Task`.
    Planners: `get_state`, `set_state`, `simulate`, `update_weightage`; lockstep play: `prefetch`, `begin`,
    `advance`; `gym.make_vec` steps sub-envs in lockstep. Trees: `save_trees`, exact `merge_trees`. Agents use the env
    through its declared door alone (`tokentree_env.env.door.AGENT_API`, docs/agent-api.md).

    ## Version History

    * v0: Initial version.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        *,
        teachers: Sequence[str | Teacher] = DEFAULT_TEACHERS,
        primary: str | HFTeacher = DEFAULT_PRIMARY,
        judge: str | Judge | None = DEFAULT_JUDGE,
        task: str | Task = DEFAULT_TASK,
        split: str | None = None,
        width: int = 16,
        k_right: int = 4,
        k_wrong: int = 2,
        top_p: float = 0.9,
        primary_proposes: bool = True,
        panel: PanelConfig | str | dict | None = None,
        max_new_tokens: int = 32,
        max_context: int = 64,
        terminal_punctuation: str = ".!?\n",
        judge_threshold: float = 0.5,
        judge_verdict: bool = True,
        reward_weights: RewardConfig | dict | None = None,
        reward_fn: RewardFn | None = None,
        similarity: Similarity | None = None,
        primary_mix: float = 0.0,
        references: bool = True,
        update_weightage: bool = True,
        weightage_eta: float = 0.2,
        weightage_cap: float = 4.0,
        evaluation: bool = False,
        hide_verifier_from_planner: bool = True,
        planner_verifier: bool = False,
        allow_lossy_prompts: bool = False,
        masked_action: str = "remap",
        cache_bytes: int = 256 * 2**20,
        expansion_seed: int = 0,
        fast_rollouts: bool = True,
        device: str | None = None,
        dtype=None,
        render_mode: str | None = None,
    ) -> None:
        for name, value, allowed in (("render_mode", render_mode, (None, *self.metadata["render_modes"])),
                                     ("masked_action", masked_action, MASKED_ACTIONS)):
            if value not in allowed:
                raise ConfigError(f"{name} {value!r} is not one of {allowed}")
        if max_context < 1:
            raise ConfigError(f"max_context must be >= 1 (a token of context), got {max_context}")
        self.evaluation = evaluation
        self.task = load_task(task)
        self.verifier = VerifierGate(self.task, evaluation=evaluation, hide_from_planner=hide_verifier_from_planner,
                                     planner_verifier=planner_verifier)
        self.split = split or ("heldout" if evaluation else "train")
        self.task.problems(self.split)  # validates the split name
        self.apply_weightage_updates = update_weightage and not evaluation
        self.render_mode, self.masked_action = render_mode, masked_action
        self.reward_config = RewardConfig.coerce(reward_weights)
        self.reward_fn = reward_fn
        self.weightage_rule = WeightageRule(eta=weightage_eta, cap=weightage_cap)
        self.judge_verdict = judge_verdict

        models = EnvModels.build(teachers, primary, judge, cache_bytes=cache_bytes, device=device, dtype=dtype)
        self.models, self.primary, self.judge = models, models.primary, models.judge
        self.tokenizer = self.primary.tokenizer
        self.expander = Expander(models.teachers, self.primary, self.tokenizer, ExpansionConfig(
            width=width, k_right=k_right, k_wrong=k_wrong, top_p=top_p, primary_proposes=primary_proposes,
            seed=expansion_seed), panel=panel)
        self.store = TreeStore(self.expander, judge=self.judge if judge_verdict else None, references=references,
                               max_new_tokens=max_new_tokens, allow_lossy_prompts=allow_lossy_prompts,
                               rule=self.weightage_rule)
        self.models.similarity = similarity or MeanEmbeddingSimilarity()
        self.observer = ObservationBuilder(self.expander, self.models.similarity, width=width,
                                           max_context=max_context, primary_mix=primary_mix,
                                           weightage_cap=weightage_cap, boundary=self.task.answer_format.at_boundary)
        self.detector = TerminalDetector(
            TerminalConfig(terminal_punctuation, judge_threshold, max_new_tokens),
            self.tokenizer.eos_token_id, self.observer.token_texts.__getitem__, self.judge)
        self.transitions = Transitions(self.expander, self.detector, self.judge, self.verifier, self.observer,
                                       self.reward_config, reward_fn, width, masked_action, judge_verdict)
        self.width, self.action_space = width, spaces.Discrete(width)
        self.observation_space = self.observer.space
        self.cost_window = CostWindow(self.models.counters)
        self.fast_rollouts = fast_rollouts
        self.rollouts = PanelRollouts(self.expander, lambda s, a: self._transition(s, a, planner=True, observe=False),
                                      self.store.__getitem__, self.prefetch, self.task_score)
        self.writer_rollouts = WriterRollouts(self.expander, self.transitions, self.store.__getitem__,
                                              self.reward_config, max_new_tokens)
        self._concurrent: dict[str, CostWindow] = {}
        self._state: EnvState | None = None
        self._last_info: dict[str, Any] = {}

    hide_verifier_from_planner = gate_flag("hide_from_planner", "Withhold the verifier from ``simulate`` on every "
                                           "prompt (default True; evaluation refuses False).")
    planner_verifier = gate_flag("planner_verifier", "The self-play switch: the verifier scores planners' leaves "
                                 "on train-split prompts only (evaluation refuses True).")

    # -- gymnasium API ---------------------------------------------------------------------------
    def step(self, action):
        if self._state is None:
            raise EnvStateError("step() called before reset() (or after a reset() that failed); call env.reset()")
        if self._state.done:
            raise EnvStateError("step() called after the episode ended; call env.reset() to start a new one")
        state, obs, reward, terminated, truncated, info = self._transition(self._state, action, planner=False)
        self._state = state
        if state.done:
            self._finish(state, self.cost_window, info)
        self._last_info = info
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = None  # a reset that fails leaves the env needing a reset
        options = dict(options or {})
        if unknown := set(options) - {"prompt", "split", "answer"}:
            raise ConfigError(f"unknown reset options {sorted(unknown)}; use 'prompt', 'answer' or 'split'")
        prompt = options.get("prompt")
        if prompt is None:
            problems = self.task.problems(options.get("split", self.split))
            problem = problems[int(self.np_random.integers(len(problems)))]
        else:
            if not isinstance(prompt, str) or not prompt:
                raise ConfigError(f"options['prompt'] must be a non-empty string, got {prompt!r}")
            problem = self.verifier.problem(prompt, options.get("answer"))
        self.verifier.problem(problem.prompt)  # registers a drawn problem for scoring
        tree = self._open(problem.prompt, self.cost_window)
        state = EnvState(problem.prompt, ROOT)
        obs, info = self.observer.observe(tree, state), self.observer.info(tree, state, {}, None, False)
        info["answer_known"] = self.verifier.knows_answer(problem.prompt)  # False: its answers all score task 0
        self._state, self._last_info = state, info
        if self.render_mode == "human":
            self.render()
        return obs, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        live = self._state is not None and not self._state.done
        obs = self.observer.observe(self.store[self._state.prompt], self._state) if live else None
        text = render_text(self._state, self._last_info,
                           obs["features"].reshape(self.width, len(FEATURES)) if live else None)
        return print(text) if self.render_mode == "human" else text

    def close(self):
        self.expander.close()
        self.models.close()
        self.observer.clear()
        super().close()

    def action_masks(self) -> np.ndarray:
        """Valid actions of the current state (sb3-contrib's MaskablePPO calls this)."""
        if self._state is None:
            raise EnvStateError("action_masks() called before reset()")
        return self.observer.mask(self.store[self._state.prompt], self._state).astype(bool)

    # -- planner API (the agents' door: tokentree_env.env.door; read-only views: tokentree_env.env.views) ---------
    @property
    def trees(self) -> dict[str, TokenTree]:
        """The token trees by prompt (for tools such as the viewer; agents use the door's views)."""
        return self.store.trees

    def get_state(self) -> EnvState:
        """A handle to the current position (cheap; restore it with :meth:`set_state`)."""
        if self._state is None:
            raise EnvStateError("get_state() called before reset()")
        return self._state

    def set_state(self, state: EnvState) -> None:
        """Move the episode to ``state`` (from :meth:`get_state` or :meth:`simulate`)."""
        if not isinstance(state, EnvState) or state.prompt not in self.store:
            raise EnvStateError(f"set_state() needs an EnvState of this env's trees, got {state!r:.80}")
        self._state = state

    def prepare(self, prompts: Sequence[str], *, roots: bool = False) -> int:
        """Build the trees of many prompts ahead of their episodes, in batches (the teachers' reference answers, the
        judge's workings, and with ``roots`` the roots' slates: for prompts that are all about to be played); the
        episodes are the same as without. Each prompt's share of the work is charged to its first episode. Returns how
        many trees it built."""
        return self.store.prepare(prompts, verdicts=self.judge_verdict, roots=roots)

    def prefetch(self, states: Sequence[EnvState], actions: Sequence[int]) -> None:
        """Lockstep batching: the model work of the transitions ``(states[i], actions[i])`` of any prompts, in one
        batch per model; the ``simulate``/``step`` calls that follow hit warm caches (:mod:`.prefetch`). An action
        ``WRITE`` asks for the writer's rollout of its state (:meth:`rollout`, ``policy="writer"``)."""
        written = [s for s, a in zip(states, actions, strict=True) if a == WRITE]
        if written:
            self.writer_rollouts.warm(written)
            kept = [(s, a) for s, a in zip(states, actions, strict=True) if a != WRITE]
            states, actions = [s for s, _ in kept], [a for _, a in kept]
        prefetch(self.expander, self.detector, self.judge, [self.store[s.prompt] for s in states], states, actions,
                 width=self.width, verdicts=self.judge_verdict)

    def simulate(self, state: EnvState, action: int):
        """Expand ``action`` from ``state`` without moving the episode: ``(next_state, observation, reward,
        terminated, truncated, info)``. The verifier's term is left out (a search used to decode cannot peek at the
        answer), except with ``planner_verifier=True`` on a train-split prompt (self-play). Weightage stays."""
        if state.done:
            raise EnvStateError("simulate() from a finished state; its episode has ended")
        return self._transition(state, action, planner=True)

    def update_weightage(self, path: Sequence[tuple[int, int]], episode_return: float, prompt: str | None = None) -> bool:
        """Apply the weightage rule along a (simulated) path; returns whether the return improved (always False in
        evaluation mode, where weightage is frozen)."""
        if not self.apply_weightage_updates:
            return False
        prompt = prompt or (self._state.prompt if self._state else None)
        return self.store.apply_weightage(prompt, path, episode_return).improved

    def hard_reward(self, state: EnvState) -> float:
        """The task verifier's score in [0, 1] of a finished episode's answer (for evaluation reports). Only for
        finished states, so a search never reads the verifier before the final answer; in evaluation mode only the
        episode's own final state may be scored (a simulated one raises :class:`VerifierLeakError`)."""
        if not state.done:
            raise EnvStateError("hard_reward() reads the verifier only for a finished episode's answer")
        completion = self.expander.decode(self.store[state.prompt].path_tokens(state.node))
        return self.verifier.score_final(state.prompt, completion, simulated=state.simulated)

    def costs(self) -> dict[str, dict[str, int]]:
        """Forward calls, forwarded and generated tokens per model so far (judge included)."""
        return self.models.costs()

    def episode_costs(self) -> dict[str, int]:
        """The current (or last) episode's work, summed over models: what ran since its ``reset``, plus
        what :meth:`prepare` spent on its prompt if it is the prompt's first episode."""
        return self.cost_window.current()

    # -- lockstep play of many episodes -------------------------------------------------------------
    def begin(self, prompt: str, *, answer: str | None = None) -> tuple[EnvState, dict, dict]:
        """Start a concurrent episode on ``prompt`` (lockstep play of many at once, e.g. batched self-play) without
        touching the env's own: its root handle, observation and info. Play it with :meth:`advance`."""
        self.verifier.problem(prompt, answer)
        self._concurrent[prompt] = CostWindow(self.models.counters)
        tree = self._open(prompt, self._concurrent[prompt])
        state = EnvState(prompt, ROOT)
        return state, self.observer.observe(tree, state), self.observer.info(tree, state, {}, None, False)

    def advance(self, state: EnvState, action: int):
        """A real step of a concurrent episode, like :meth:`step` for its handle: the verifier scores its end, the
        weightage rule applies when it ends, and the last ``info`` holds ``episode_cost`` (its own work only)."""
        if state.done or state.prompt not in self._concurrent:
            raise EnvStateError(f"advance() needs a live episode started with begin(), got {state!r:.80}")
        next_state, obs, reward, terminated, truncated, info = self._transition(state, action, planner=False)
        if next_state.done:
            self._finish(next_state, self._concurrent.pop(state.prompt), info)
        return next_state, obs, reward, terminated, truncated, info

    def _open(self, prompt: str, window: CostWindow) -> TokenTree:
        """Open an episode's cost window on ``prompt`` and build its tree (charged to the episode)."""
        owner = self.store.owner(prompt)
        window.open(owner, self.store.take_pending(prompt))
        with self.models.charging(owner):
            tree = self.store.ensure(prompt)
            self.observer.prepare(tree)
        return tree

    def _finish(self, state: EnvState, window: CostWindow, info: dict) -> None:
        """A real episode ended: apply the weightage rule along its path and close its cost window into ``info``."""
        if self.apply_weightage_updates:
            count = self.store.apply_weightage(state.prompt, state.path, state.episode_return)
            info["weightage_update"] = {"lowered": count.lowered, "raised": count.raised}
        info["episode_cost"], info["episode_cost_by_model"] = window.close(), dict(window.final_by_model)

    def _transition(self, state: EnvState, action, *, planner: bool, observe: bool = True):
        tree = self.store[state.prompt]
        with self.models.charging(tree.owner):  # work that names no owner is this episode's
            return self.transitions(tree, state, action, planner=planner, observe=observe)

