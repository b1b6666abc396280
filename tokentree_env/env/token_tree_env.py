"""TokenTree-v0: text generation as a game tree, as a Gymnasium environment."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tokentree_env.errors import ConfigError, EnvStateError, InvalidActionError
from tokentree_env.judge import Judge
from tokentree_env.rewards import RewardConfig, RewardFn, final_terms, step_terms
from tokentree_env.scoring import MeanEmbeddingSimilarity, Similarity, prior
from tokentree_env.tasks import DEFAULT_TASK, Problem, Task, load_task
from tokentree_env.teachers import HFTeacher, Teacher
from tokentree_env.teachers.alignment import UNMAPPED_LOGPROB
from tokentree_env.terminal import TerminalConfig, TerminalDetector
from tokentree_env.tree import ROOT, Expander, ExpansionConfig, TokenTree, WeightageRule
from tokentree_env.zoo.catalog import DEFAULT_JUDGE, DEFAULT_PRIMARY, DEFAULT_TEACHERS

FEATURES: tuple[str, ...] = (
    "prior", "similarity", "weightage", "primary_logprob", "teacher_logprob", "votes", "right", "reference")
"""Per-candidate features, in the order they are flattened into ``obs["features"]``."""
_FEATURE_LOW = np.array([0.0, -1.0, 0.0, UNMAPPED_LOGPROB, UNMAPPED_LOGPROB, 0.0, 0.0, 0.0], dtype=np.float32)
MASKED_ACTIONS = ("remap", "raise")


@dataclass(frozen=True)
class EnvState:
    """A cheap handle to a position in an episode: the prompt's tree, a node, and the path to it.

    ``path`` holds ``(node, child index)`` pairs from the root; ``episode_return`` the rewards so far.
    """

    prompt: str
    node: int
    length: int = 0
    path: tuple[tuple[int, int], ...] = ()
    episode_return: float = 0.0
    done: bool = False


def tree_filename(prompt: str) -> str:
    """The file a prompt's tree is saved in by :meth:`TokenTreeEnv.save_trees` (a hash of the prompt)."""
    return f"{hashlib.sha1(prompt.encode()).hexdigest()[:16]}.json"


class TokenTreeEnv(gym.Env):
    """
    ## Description

    Text generation as an AlphaGo-Zero-style game tree. A stack of teacher LLMs (by default the
    built-in zoo's Llama, Qwen2 and GPT-2 teachers, with different tokenizers) and the primary LLM
    propose the next tokens of an answer to a task prompt: likely ones ("right direction") and
    deliberately unlikely ones ("wrong direction"). The agent picks one child per step. Each
    prompt's token tree persists across episodes, and each child's **weightage** learns from
    returns. The state is the primary-token ids of prompt + answer so far.

    ## Action Space

    `Discrete(width)`: the index of a child on the current slate. Only the first `n` indices are
    valid (`obs["action_mask"]`, `env.action_masks()`). A masked index is remapped to child
    `action % n` with a small penalty (`masked_action="remap"`, the default, because gymnasium's
    checker sends unmasked samples) or raises `InvalidActionError` (`masked_action="raise"`).
    An index outside the space always raises.

    ## Observation Space

    A `Dict` of 1-D `Box` spaces (accepted by SB3's `MultiInputPolicy`):

    | key | shape | dtype | meaning |
    |---|---|---|---|
    | `context` | `(max_context,)` | int64 | the last ids of prompt + answer, left-padded with the pad id |
    | `candidates` | `(width,)` | int64 | primary token id of each child (pad id where masked) |
    | `features` | `(width * 8,)` | float32 | per child, flattened: prior, similarity, weightage, primary log-prob, mean teacher log-prob, vote share, right label, on a reference answer |
    | `action_mask` | `(width,)` | int8 | 1 for a valid child |

    `prior` is the normalised `weightage × similarity` (clipped at 0), optionally mixed with the
    primary's probabilities. Log-probs are floored at log(1e-9).

    ## Rewards

    Per step: `alpha · mean teacher log q(child | context)` (the panel log-perplexity, summed) and
    `-length_cost`. At the end: the task verifier's hard reward (`task_weight`), the judge's verdict
    as a small shift (`judge_weight · (2 P(yes) - 1)`), `-excess_length_weight · max(0, L - L_min)`
    with `L_min` the shortest teacher reference answer, and the terms of a user `reward_fn`. Every
    term is itemised in `info["reward_terms"]`; weights are set with `reward_weights`.

    ## Starting State

    A prompt drawn with `self.np_random` from the task's split (or `options["prompt"]`). Before a
    prompt's first episode, each teacher answers it greedily; the answers become reference paths of
    the tree (`info` marks children on them) and set `L_min`. `env.unwrapped.prepare(prompts)` does
    this for many prompts at once, in batches (the same trees, built far faster).

    ## Episode End

    - Termination: the agent chose the EOS child.
    - Termination: the chosen token ends with terminal punctuation (`.`, `!`, `?`, newline) and the
      judge's P(EOS | context) >= `judge_threshold`.
    - Truncation: `max_new_tokens` tokens were generated. The env owns truncation: it is registered
      without `max_episode_steps`.

    `info["terminal_reason"]` says which. After the end, `reset()` must be called. At each episode's
    end the weightage rule is applied along the path (`update_weightage=True`, off with
    `evaluation=True`, where the verifier must not shape later searches).

    ## Arguments

    ```python
    import gymnasium as gym
    import tokentree_env
    env = gym.make("TokenTree-v0")  # the zoo and the default task (chain3)
    env = gym.make("TokenTree-v0", teachers=["zoo:teacher-llama", "path/to/hf-model"], primary="zoo:primary",
                   judge="zoo:judge", task="my_task.jsonl", width=16, k_right=4, k_wrong=2,
                   max_new_tokens=32, reward_weights={"alpha": 0.05, "judge_weight": 0.1})
    ```

    `teachers`, `primary`, `judge` take `zoo:NAME`, hub ids, local paths, or objects (`Teacher`,
    `Judge`); `judge=None` turns the judge off. `task` takes a built-in name, a JSONL path or a
    `Task`. Planners use `env.unwrapped.get_state()`, `set_state()`, `simulate(state, action)` and
    `update_weightage(path, episode_return)` (or `env.get_wrapper_attr(name)`). Each env instance
    owns its trees (one per prompt); vectorised workers each own theirs, saved with `save_trees` and
    combined with `merge_trees`.

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
        masked_action: str = "remap",
        cache_bytes: int = 256 * 2**20,
        expansion_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}")
        if masked_action not in MASKED_ACTIONS:
            raise ConfigError(f"masked_action {masked_action!r} is not one of {MASKED_ACTIONS}")
        if max_context < 1:
            raise ConfigError(f"max_context must be >= 1, got {max_context}")
        if isinstance(teachers, (str, Teacher)):
            teachers = [teachers]
        self.render_mode = render_mode
        self.task = load_task(task)
        self.split = split or ("heldout" if evaluation else "train")
        self.task.problems(self.split)  # validates the split name
        self.evaluation = evaluation
        self.apply_weightage_updates = update_weightage and not evaluation
        self.hide_verifier_from_planner = hide_verifier_from_planner
        self.masked_action = masked_action
        self.max_context = max_context
        self.references = references
        self.reward_config = RewardConfig.coerce(reward_weights)
        self.reward_fn = reward_fn
        self.weightage_rule = WeightageRule(eta=weightage_eta, cap=weightage_cap)
        self.primary_mix = primary_mix
        self.judge_verdict = judge_verdict

        self.primary = primary if isinstance(primary, HFTeacher) else HFTeacher(primary, cache_bytes=cache_bytes)
        self.tokenizer = self.primary.tokenizer
        stack = [self._teacher(t, cache_bytes) for t in teachers]
        self.expander = Expander(stack, self.primary, self.tokenizer, ExpansionConfig(
            width=width, k_right=k_right, k_wrong=k_wrong, top_p=top_p, primary_proposes=primary_proposes,
            seed=expansion_seed))
        self.judge = Judge(judge) if isinstance(judge, str) else judge  # or any object with Judge's methods
        if self.judge is not None:
            self.judge.bind(self.tokenizer)
        self.similarity = similarity or MeanEmbeddingSimilarity()
        self.similarity.bind(self.primary)
        self._similarity_version = self.primary.version
        self.vocab_size = max(len(self.tokenizer), max(self.tokenizer.get_vocab().values()) + 1)
        self.token_texts = [self.tokenizer.decode([i], skip_special_tokens=True) for i in range(self.vocab_size)]
        self.detector = TerminalDetector(
            TerminalConfig(terminal_punctuation, judge_threshold, max_new_tokens),
            self.tokenizer.eos_token_id, self.token_texts.__getitem__, self.judge)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.n_models = len(self.expander.models)

        self.width = width
        self.action_space = spaces.Discrete(width)
        high = np.array([1.0, 1.0, weightage_cap, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=np.float32)
        self._low, self._high = _FEATURE_LOW, high
        self.observation_space = spaces.Dict({
            "context": spaces.Box(0, self.vocab_size - 1, (max_context,), dtype=np.int64),
            "candidates": spaces.Box(0, self.vocab_size - 1, (width,), dtype=np.int64),
            "features": spaces.Box(np.tile(_FEATURE_LOW, width), np.tile(high, width), dtype=np.float32),
            "action_mask": spaces.Box(0, 1, (width,), dtype=np.int8),
        })
        self.trees: dict[str, TokenTree] = {}
        self._problems: dict[str, Problem] = {}
        self._by_prompt: dict[str, Problem] | None = None
        self._references: dict[str, np.ndarray] = {}
        self._node_cache: dict[tuple[str, int], tuple] = {}
        self._state: EnvState | None = None
        self._last_info: dict[str, Any] = {}

    # -- construction helpers -----------------------------------------------------------------------
    def _teacher(self, spec, cache_bytes: int) -> Teacher:
        if isinstance(spec, Teacher):
            return spec
        if not isinstance(spec, str):
            raise ConfigError(f"a teacher is a model name or a Teacher object, got {type(spec).__name__}")
        if spec == self.primary.name:
            return self.primary  # one model in both roles: one forward serves both
        if spec.startswith("openai:"):
            from tokentree_env.teachers.remote import OpenAITeacher, parse_spec

            model, base_url = parse_spec(spec)
            return OpenAITeacher(base_url, model)
        return HFTeacher(spec, cache_bytes=cache_bytes)

    # -- gymnasium API ---------------------------------------------------------------------------
    def step(self, action):
        if self._state is None:
            raise EnvStateError("step() called before reset(); call env.reset() first")
        if self._state.done:
            raise EnvStateError("step() called after the episode ended; call env.reset() to start a new one")
        state, obs, reward, terminated, truncated, info = self._transition(self._state, action, planner=False)
        self._state = state
        if state.done and self.apply_weightage_updates:
            self.trees[state.prompt].apply_weightage(state.path, state.episode_return, self.weightage_rule)
        self._last_info = info
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"prompt", "split", "answer"}
        if unknown:
            raise ConfigError(f"unknown reset options {sorted(unknown)}; use 'prompt', 'answer' or 'split'")
        prompt = options.get("prompt")
        if prompt is None:
            problems = self.task.problems(options.get("split", self.split))
            problem = problems[int(self.np_random.integers(len(problems)))]
        else:
            if not isinstance(prompt, str) or not prompt:
                raise ConfigError(f"options['prompt'] must be a non-empty string, got {prompt!r}")
            problem = self._known_problem(prompt, options.get("answer"))
        self._ensure_tree(problem)
        self._state = EnvState(problem.prompt, ROOT)
        obs, info = self._observation(self._state), self._info(self._state, {}, None, False)
        self._last_info = info
        if self.render_mode == "human":
            self.render()
        return obs, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        text = self._render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self):
        for model in self.expander.models:
            model.close()
        if self.judge is not None:
            self.judge.close()
        self._node_cache.clear()
        super().close()

    def action_masks(self) -> np.ndarray:
        """Valid actions of the current state (sb3-contrib's MaskablePPO calls this)."""
        if self._state is None:
            raise EnvStateError("action_masks() called before reset()")
        return self._mask(self._state).astype(bool)

    # -- planner API ---------------------------------------------------------------------------------
    def get_state(self) -> EnvState:
        """A handle to the current position (cheap; restore it with :meth:`set_state`)."""
        if self._state is None:
            raise EnvStateError("get_state() called before reset()")
        return self._state

    def set_state(self, state: EnvState) -> None:
        """Move the episode to ``state`` (from :meth:`get_state` or :meth:`simulate`)."""
        if not isinstance(state, EnvState) or state.prompt not in self.trees:
            raise EnvStateError(f"set_state() needs an EnvState of this env's trees, got {state!r:.80}")
        self._state = state

    def prepare(self, prompts: Sequence[str]) -> int:
        """Build the trees of many prompts ahead of their episodes, in batches.

        Each teacher answers all the prompts in batched ``generate`` calls (a tree's reference
        paths) and the judge works them in batches, where :meth:`reset` would decode one prompt at
        a time; the episodes are then the same as without preparing. Call it with the prompts a run
        is about to play (the training loop does, per iteration). Returns how many trees it built.
        """
        prompts = list(dict.fromkeys(prompts))
        todo = [p for p in prompts if p not in self.trees]
        trees = self.expander.new_trees(todo, references=self.references,
                                        max_new_tokens=self.detector.config.max_new_tokens) if todo else []
        self.trees.update(zip(todo, trees, strict=True))
        if self.judge is not None and self.judge_verdict and hasattr(self.judge, "prepare"):
            self.judge.prepare(prompts)
        return len(todo)

    def simulate(self, state: EnvState, action: int):
        """Expand ``action`` from ``state`` without moving the episode.

        Returns ``(next_state, observation, reward, terminated, truncated, info)``. With
        ``hide_verifier_from_planner`` (the default) the task verifier's term is left out, so a
        search used to decode cannot peek at the answer. Weightage is not updated.
        """
        if state.done:
            raise EnvStateError("simulate() from a finished state; its episode has ended")
        return self._transition(state, action, planner=True)

    def update_weightage(self, path: Sequence[tuple[int, int]], episode_return: float, prompt: str | None = None) -> bool:
        """Apply the weightage rule along a (simulated) path; returns whether the return improved.

        Does nothing in evaluation mode (weightage is frozen there) and returns False.
        """
        if not self.apply_weightage_updates:
            return False
        prompt = prompt or (self._state.prompt if self._state else None)
        if prompt not in self.trees:
            raise EnvStateError(f"no tree for prompt {prompt!r}")
        return self.trees[prompt].apply_weightage(path, episode_return, self.weightage_rule)

    def hard_reward(self, state: EnvState) -> float:
        """The task verifier's score in [0, 1] of a finished state's answer (for evaluation reports).

        Only for finished states: a search must never read the verifier before the final answer.
        """
        if not state.done:
            raise EnvStateError("hard_reward() reads the verifier only for a finished episode's answer")
        tree = self.trees[state.prompt]
        return self.task.verify(self._problems[state.prompt], self.expander.decode(tree.path_tokens(state.node)))

    def costs(self) -> dict[str, dict[str, int]]:
        """Forward calls, forwarded and generated tokens per model so far (judge included)."""
        out = self.expander.costs()
        if self.judge is not None:
            out[f"judge:{self.judge.name}"] = self.judge.counters.as_dict()
        return out

    # -- trees ---------------------------------------------------------------------------------------
    def save_trees(self, folder: str | Path, prompts: Sequence[str] | None = None) -> None:
        """Save every tree (or those of ``prompts``) with slates, references and weightage as JSON files
        in ``folder``, one per prompt (named by :func:`tree_filename`)."""
        for prompt in self.trees if prompts is None else prompts:
            self.trees[prompt].save(Path(folder) / tree_filename(prompt))

    def load_trees(self, folder: str | Path, *, merge: bool = True, prompts: Sequence[str] | None = None) -> int:
        """Load trees saved by :meth:`save_trees` (e.g. by other workers), merging into existing ones
        (``merge=False`` replaces them). With ``prompts``, only those prompts' trees, where saved."""
        paths = (sorted(Path(folder).glob("*.json")) if prompts is None
                 else [Path(folder) / tree_filename(p) for p in prompts])
        count = 0
        for path in paths:
            if not path.exists():
                continue
            tree = TokenTree.load(path)
            if merge and tree.prompt in self.trees:
                self.trees[tree.prompt].merge(tree, self.weightage_rule)
            else:
                self.trees[tree.prompt] = tree
            count += 1
        self._node_cache.clear()
        return count

    merge_trees = load_trees

    # -- internals ----------------------------------------------------------------------------------
    def _known_problem(self, prompt: str, answer: str | None) -> Problem:
        if self._by_prompt is None:  # built once: resets by prompt are the evaluation runner's hot path
            self._by_prompt = {p.prompt: p for split in ("heldout", "train") for p in self.task.problems(split)}
        if prompt in self._by_prompt:
            return self._by_prompt[prompt]
        return Problem(prompt, answer if answer is not None else "", verifier=None if answer is not None else (
            lambda completion, ans: 0.0))

    def _ensure_tree(self, problem: Problem) -> TokenTree:
        self._problems.setdefault(problem.prompt, problem)
        tree = self.trees.get(problem.prompt)
        if tree is None:
            tree = self.expander.new_tree(problem.prompt, references=self.references,
                                          max_new_tokens=self.detector.config.max_new_tokens)
            self.trees[problem.prompt] = tree
        if self.primary.version != self._similarity_version:
            self.similarity.bind(self.primary)
            self._similarity_version = self.primary.version
            self._references.clear()
            self._node_cache.clear()
        if problem.prompt not in self._references:
            paths = list(tree.reference_paths.values())
            texts = [self.expander.decode(p) for p in paths]
            self._references[problem.prompt] = self.similarity.reference(paths, texts)
        self.expander.expand(tree, [ROOT])
        return tree

    def _action_index(self, action) -> int:
        if isinstance(action, np.ndarray) and action.shape in ((), (1,)):
            action = action.reshape(-1)[0]
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise InvalidActionError(f"action must be an integer in [0, {self.width}), got {action!r}")
        if not 0 <= int(action) < self.width:
            raise InvalidActionError(f"action {int(action)} is outside the action space Discrete({self.width})")
        return int(action)

    def _transition(self, state: EnvState, action, *, planner: bool):
        index = self._action_index(action)
        tree = self.trees[state.prompt]
        slate, = self.expander.expand(tree, [state.node])
        invalid = index >= len(slate)
        if invalid:
            if self.masked_action == "raise":
                raise InvalidActionError(f"action {index} is masked: this node has {len(slate)} valid children")
            index %= len(slate)
        token = int(slate.tokens[index])
        child = tree.child(state.node, token)
        length = state.length + 1
        terms = step_terms(slate.logprobs[index, self.expander.teacher_columns], self.reward_config)
        if invalid:
            terms["invalid_action"] = -self.reward_config.invalid_action_penalty
        context = tree.context(child, self.expander.decode)
        terminated, truncated, reason = self.detector.check(token, context, length)
        done = terminated or truncated
        if done:
            terms.update(self._final_terms(tree, child, length, planner))
        reward = float(sum(terms.values()))
        next_state = EnvState(state.prompt, child, length, (*state.path, (state.node, index)),
                              state.episode_return + reward, done)
        obs = self._observation(next_state)
        return next_state, obs, reward, terminated, truncated, self._info(next_state, terms, reason, invalid)

    def _final_terms(self, tree: TokenTree, node: int, length: int, planner: bool) -> dict[str, float]:
        problem = self._problems[tree.prompt]
        completion = self.expander.decode(tree.path_tokens(node))
        hide = planner and self.hide_verifier_from_planner
        hard = None if hide else self.task.verify(problem, completion)
        p_yes = self.judge.verdict(problem.prompt, completion) if self.judge and self.judge_verdict else None
        terms = final_terms(hard_reward=hard, judge_p_yes=p_yes, length=length,
                            min_length=tree.min_reference_length, config=self.reward_config)
        if self.reward_fn is not None and not hide:
            summary = {"prompt": problem.prompt, "completion": completion, "answer": problem.answer,
                       "length": length, "min_length": tree.min_reference_length}
            terms.update({f"user:{k}": float(v) for k, v in self.reward_fn(summary).items()})
        return terms

    def _static(self, prompt: str, node: int):
        """Per-node parts of the observation and info that do not change with weightage (cached)."""
        key = (prompt, node)
        found = self._node_cache.get(key)
        tree = self.trees[prompt]
        slate = tree.nodes[node].slate
        if found is not None and found[0] is slate:
            return found
        n = len(slate)
        tokens = slate.tokens
        sim = self.similarity.children(self._references[prompt], tree.path_tokens(node),
                                       tree.nodes[node].text or "", tokens, [self.token_texts[t] for t in tokens])
        feats = np.zeros((self.width, len(FEATURES)), dtype=np.float32)
        feats[:n, 1] = np.clip(sim, -1.0, 1.0)
        feats[:n, 3] = slate.logprobs[:, self.expander.primary_column]
        feats[:n, 4] = slate.logprobs[:, self.expander.teacher_columns].mean(1)
        feats[:n, 5] = slate.votes / max(1, len(self.expander.proposer_columns))
        feats[:n, 6] = slate.right
        feats[:n, 7] = slate.reference
        candidates = np.full(self.width, self.pad_id, dtype=np.int64)
        candidates[:n] = tokens
        mask = np.zeros(self.width, dtype=np.int8)
        mask[:n] = 1
        names = [m.name for m in self.expander.models]
        provenance = [{"token": int(t), "text": self.tokenizer.convert_ids_to_tokens(int(t)),
                       "direction": "right" if r else "wrong", "votes": int(v), "reference": bool(ref),
                       "proposed_by": [names[m] for m in np.flatnonzero(p)]}
                      for t, r, v, ref, p in zip(tokens, slate.right, slate.votes, slate.reference, slate.proposed,
                                                 strict=True)]
        found = (slate, feats, candidates, mask, sim, provenance)
        self._node_cache[key] = found
        return found

    def _mask(self, state: EnvState) -> np.ndarray:
        slate = self.trees[state.prompt].nodes[state.node].slate
        if state.done or slate is None:
            return np.zeros(self.width, dtype=np.int8)
        return self._static(state.prompt, state.node)[3]

    def _observation(self, state: EnvState) -> dict[str, np.ndarray]:
        tree = self.trees[state.prompt]
        ids = tree.nodes[state.node].ids[-self.max_context:]
        context = np.full(self.max_context, self.pad_id, dtype=np.int64)
        context[self.max_context - len(ids):] = ids
        if state.done:
            return {"context": context, "candidates": np.full(self.width, self.pad_id, dtype=np.int64),
                    "features": np.tile(self._low, self.width), "action_mask": np.zeros(self.width, dtype=np.int8)}
        self.expander.expand(tree, [state.node])
        slate, feats, candidates, mask, sim, _ = self._static(state.prompt, state.node)
        feats = feats.copy()
        n = len(slate)
        weightage = tree.weightage(state.node)
        feats[:n, 2] = weightage
        feats[:n, 0] = prior(weightage, sim, primary_logprobs=slate.logprobs[:, self.expander.primary_column],
                             primary_mix=self.primary_mix)
        feats[n:] = self._low
        np.clip(feats, self._low, self._high, out=feats)
        return {"context": context, "candidates": candidates.copy(), "features": feats.reshape(-1),
                "action_mask": mask.copy()}

    def _info(self, state: EnvState, terms: dict, reason: str | None, invalid: bool) -> dict[str, Any]:
        tree = self.trees[state.prompt]
        text = tree.context(state.node, self.expander.decode).text[len(tree.root_text):]  # cached per node
        info = {"prompt": state.prompt, "text": text,
                "step": state.length, "reward_terms": dict(terms), "terminal_reason": reason,
                "invalid_action": invalid, "min_reference_length": tree.min_reference_length}
        if not state.done:
            provenance = self._static(state.prompt, state.node)[5]
            info["candidates"] = [p["text"] for p in provenance]
            info["directions"] = [p["direction"] for p in provenance]
            info["provenance"] = provenance
        return info

    def _render_text(self) -> str:
        if self._state is None:
            return "(call reset() first)"
        info = self._last_info
        lines = [f"prompt: {self._state.prompt!r}", f"answer: {info.get('text', '')!r}  (step {self._state.length})"]
        if self._state.done:
            lines.append(f"episode ended: {info.get('terminal_reason')}; reward terms {info.get('reward_terms')}")
            return "\n".join(lines)
        obs = self._observation(self._state)
        feats = obs["features"].reshape(self.width, len(FEATURES))
        lines.append(" #  token      dir    prior  weight  sim    teacher_lp  proposed by")
        for i, p in enumerate(info.get("provenance", [])):
            lines.append(f"{i:2d}  {p['text']!r:9s}  {p['direction']:5s}  {feats[i, 0]:.3f}  {feats[i, 2]:.3f}   "
                         f"{feats[i, 1]:+.2f}  {feats[i, 4]:8.2f}    {len(p['proposed_by'])} model(s)")
        return "\n".join(lines)

