"""Specification of TokenTree-v0 as a Gymnasium environment, on the built-in zoo."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokentree_env  # noqa: F401 - registers TokenTree-v0
from tokentree_env.env import FEATURES, TokenTreeEnv
from tokentree_env.errors import ConfigError, EnvStateError, InvalidActionError

SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "max_new_tokens": 12}


@pytest.fixture(scope="module")
def env():
    e = gym.make("TokenTree-v0", **SMALL)
    yield e
    e.close()


def play(env, rng, seed=None, options=None):
    obs, info = env.reset(seed=seed, options=options)
    total, steps = 0.0, 0
    while True:
        action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
        if terminated or truncated:
            return total, steps, info


def test_make_without_arguments_plays_an_episode_and_itemises_the_reward():
    env = gym.make("TokenTree-v0")
    total, steps, info = play(env, np.random.default_rng(0), seed=0)
    assert steps >= 1
    assert info["terminal_reason"] in {"eos", "judge", "max_new_tokens"}
    assert {"panel_logprob", "length_cost", "task", "judge"} <= set(info["reward_terms"])
    assert np.isfinite(total)
    assert len(env.unwrapped.expander.teachers) == 3
    env.close()


def test_make_with_the_module_prefix_needs_no_prior_import():
    code = ("import gymnasium as gym; e = gym.make('tokentree_env:TokenTree-v0', teachers=['zoo:teacher-qwen2'],"
            " judge=None); print(type(e.unwrapped).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TokenTreeEnv" in out.stdout


def test_gymnasium_check_env_passes_without_warnings():
    from gymnasium.utils.env_checker import check_env

    env = TokenTreeEnv(**SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    ours = [str(w.message) for w in caught if "gymnasium" in str(w.filename) or "tokentree" in str(w.filename)]
    assert ours == []


def test_sb3_check_env_passes_without_warnings():
    from stable_baselines3.common.env_checker import check_env

    env = TokenTreeEnv(**SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, warn=True)
    assert [str(w.message) for w in caught if "stable_baselines3" in str(w.filename)] == []


def test_maskable_ppo_trains_with_the_packaged_feature_extractor():
    from sb3_contrib import MaskablePPO

    from tokentree_env.env.sb3 import TokenTreeExtractor

    env = TokenTreeEnv(teachers=["zoo:teacher-qwen2"], judge=None, max_new_tokens=10)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, verbose=0,
                        policy_kwargs={"features_extractor_class": TokenTreeExtractor})
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert any(not np.allclose(a, b.detach()) for a, b in zip(before, model.policy.parameters(), strict=True))


def test_observations_are_in_the_space_and_masks_match_the_slate(env):
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    n = int(obs["action_mask"].sum())
    assert n == len(info["candidates"]) == len(info["provenance"]) >= 1
    assert (env.unwrapped.action_masks() == obs["action_mask"].astype(bool)).all()
    feats = obs["features"].reshape(-1, len(FEATURES))
    assert feats[:n, 0].sum() == pytest.approx(1.0, abs=1e-5)  # the prior is normalised over the slate


def test_step_before_reset_and_after_the_end_raise_clear_errors():
    env = TokenTreeEnv(**SMALL)
    with pytest.raises(EnvStateError, match="before reset"):
        env.step(0)
    play(env, np.random.default_rng(0), seed=0)
    with pytest.raises(EnvStateError, match="episode ended"):
        env.step(0)


@pytest.mark.parametrize("action", [16, -1, 99, 1.5, "a", None])
def test_an_action_outside_the_space_raises(env, action):
    env.reset(seed=0)
    with pytest.raises(InvalidActionError):
        env.step(action)


def _state_with_a_masked_slot(env):
    """Walk the first children of a few episodes until a slate leaves a slot masked; that state's observation."""
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        while True:
            if (obs["action_mask"] == 0).any():
                return obs
            obs, _, terminated, truncated, _ = env.step(int(np.flatnonzero(obs["action_mask"])[0]))
            if terminated or truncated:
                break
    raise AssertionError("no slate with a masked slot in 30 episodes: the test needs one")


def test_a_masked_action_is_remapped_with_a_penalty_or_raises_when_asked():
    env = TokenTreeEnv(**SMALL)
    obs = _state_with_a_masked_slot(env)
    masked = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    _, _, _, _, info = env.step(masked)
    assert info["invalid_action"] and info["reward_terms"]["invalid_action"] < 0
    strict = TokenTreeEnv(masked_action="raise", **SMALL)
    obs = _state_with_a_masked_slot(strict)
    with pytest.raises(InvalidActionError, match="masked"):
        strict.step(int(np.flatnonzero(obs["action_mask"] == 0)[0]))


def test_same_seed_and_tree_state_give_the_same_episode(env):
    def trace(seed):
        obs, info = env.reset(seed=seed)
        out = [(obs["candidates"].tolist(), info["text"])]
        for _ in range(4):
            obs, reward, term, trunc, info = env.step(0)
            out.append((obs["candidates"].tolist(), info["text"], round(reward, 9)))
            if term or trunc:
                break
        return out

    env.unwrapped.apply_weightage_updates = False
    assert trace(11) == trace(11)
    env.unwrapped.apply_weightage_updates = True


def test_weightage_is_applied_at_the_end_of_an_episode_and_frozen_in_evaluation():
    env = TokenTreeEnv(**SMALL)
    _obs, info = env.reset(options={"prompt": "12+35+20="})
    wrong = [i for i, d in enumerate(info["directions"]) if d == "wrong"]
    assert wrong, "the default slate has wrong-direction children"
    tree = env.trees["12+35+20="]
    before = tree.weightage(0).copy()
    env.step(wrong[0])
    assert (tree.weightage(0) == before).all()  # not before the end
    while not env.get_state().done:
        env.step(0)
    assert tree.weightage(0)[wrong[0]] < before[wrong[0]]

    frozen = TokenTreeEnv(evaluation=True, **SMALL)
    frozen.reset(options={"prompt": "12+35+20="})
    start = frozen.trees["12+35+20="].weightage(0).copy()
    frozen.step(wrong[0])
    while not frozen.get_state().done:
        frozen.step(0)
    assert (frozen.trees["12+35+20="].weightage(0) == start).all()


def test_simulate_does_not_move_the_episode_and_hides_the_verifier(env):
    env.reset(options={"prompt": "12+35+20="})
    u = env.unwrapped
    state = u.get_state()
    for _ in range(20):
        state, _obs, _reward, terminated, truncated, info = u.simulate(state, 0)
        if terminated or truncated:
            break
    assert state.done and "task" not in info["reward_terms"]
    assert u.get_state().node == 0 and u.get_state().length == 0
    u.set_state(state)
    assert u.get_state() is state


def test_planner_methods_are_reachable_through_the_wrappers(env):
    env.reset(seed=0)
    assert env.get_wrapper_attr("get_state")() == env.unwrapped.get_state()


def test_reset_options_choose_the_prompt_and_split(env):
    _, info = env.reset(options={"prompt": "rev abc=", "answer": "cba"})
    assert info["prompt"] == "rev abc="
    _, info = env.reset(seed=0, options={"split": "heldout"})
    heldout = {p.prompt for p in env.unwrapped.task.problems("heldout")}
    assert info["prompt"] in heldout
    with pytest.raises(ConfigError, match="unknown reset options"):
        env.reset(options={"promt": "x"})


def test_render_ansi_shows_the_text_and_the_slate():
    env = TokenTreeEnv(render_mode="ansi", **SMALL)
    env.reset(seed=0)
    text = env.render()
    assert "prompt:" in text and "right" in text


def test_trees_saved_by_two_workers_merge(tmp_path):
    a, b = TokenTreeEnv(**SMALL), TokenTreeEnv(**SMALL)
    play(a, np.random.default_rng(1), options={"prompt": "12+35+20="})
    play(b, np.random.default_rng(2), options={"prompt": "12+35+20="})
    b.save_trees(tmp_path)
    nodes_before = len(a.trees["12+35+20="])
    assert a.merge_trees(tmp_path) == 1
    assert len(a.trees["12+35+20="]) >= nodes_before


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vectorised_envs_step(vector_cls):
    fns = [lambda: gym.make("TokenTree-v0", teachers=["zoo:teacher-qwen2"], judge=None, max_new_tokens=6)] * 2
    envs = vector_cls(fns)
    obs, _ = envs.reset(seed=0)
    for _ in range(8):
        # a finished sub-env shows an all-zero mask; gymnasium resets it on the next step (action ignored)
        actions = np.array([int(np.flatnonzero(m)[0]) if m.any() else 0 for m in obs["action_mask"]])
        obs, rewards, *_ = envs.step(actions)
    assert rewards.shape == (2,)
    envs.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.integers(-3, 20), st.sampled_from(["masked", "valid"])), max_size=20))
def test_random_action_sequences_raise_only_typed_errors(env, actions):
    obs, _ = env.reset(seed=0)
    done = False
    for a in actions:
        if a == "valid":
            a = int(np.flatnonzero(obs["action_mask"])[0]) if not done else 0
        elif a == "masked":
            a = env.action_space.n - 1
        try:
            obs, _, term, trunc, _ = env.step(a)
            done = term or trunc
        except InvalidActionError:
            assert not 0 <= a < env.action_space.n
        except EnvStateError:
            assert done


def test_a_user_reward_function_adds_its_terms_at_the_end():
    def bonus(summary):
        return {"bonus": 1.0 if summary["completion"].endswith(".") else 0.0}

    env = TokenTreeEnv(reward_fn=bonus, **SMALL)
    total, _, info = play(env, np.random.default_rng(0), options={"prompt": "12+35+20="})
    assert "user:bonus" in info["reward_terms"]
    assert np.isfinite(total)


def test_an_instruct_primary_gets_its_chat_template_applied_to_the_prompt():
    from tests.helpers import char_primary, loaded
    from tokentree_env.teachers import HFTeacher
    from tokentree_env.tree import Expander

    tok = char_primary()
    tok.chat_template = "{% for m in messages %}<{{ m['content'] }}>{% endfor %}"
    primary = HFTeacher(loaded(tok))
    tree = Expander([primary], primary, tok).new_tree("12+3=", references=False)
    assert tree.root_text == "<12+3=>"
    assert tree.nodes[0].ids == tuple(tok("<12+3=>", add_special_tokens=False)["input_ids"])
    assert tree.prompt == "12+3="


def test_prepared_trees_play_the_same_episodes_as_trees_built_at_reset():
    """The same children, answers and references; the rewards to 1e-6 (``prepare`` decodes the prompts' reference
    answers in one padded batch, whose reordered sums change the last digits of the cached log-probs)."""
    from tokentree_env.tasks import load_task

    prompts = [p.prompt for p in load_task("add2").problems("train")[:3]]
    plain, prepared = TokenTreeEnv(**SMALL), TokenTreeEnv(**SMALL)
    assert prepared.prepare(prompts) == 3
    assert prepared.prepare(prompts) == 0  # built once
    for prompt in prompts:
        traces, rewards = [], []
        for env in (plain, prepared):
            obs, info = env.reset(options={"prompt": prompt})
            trace, paid = [obs["candidates"].tolist()], []
            terminated = truncated = False
            while not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step(0)
                trace.append(obs["candidates"].tolist())
                paid.append(reward)
            traces.append((trace, info["text"], env.trees[prompt].reference_paths))
            rewards.append(paid)
        assert traces[0] == traces[1]
        np.testing.assert_allclose(rewards[0], rewards[1], rtol=0, atol=1e-6)
    plain.close()
    prepared.close()


def test_make_vec_steps_the_sub_envs_in_lockstep_and_matches_sync_vector_env_step_for_step():
    """``gym.make_vec`` gives the native vector env (shared models, one batched forward per model per step); under
    NEXT_STEP autoreset it matches ``SyncVectorEnv`` over separate envs: observations, rewards, ends and texts.
    Tolerance: 1e-4 absolute and relative on log-prob features and rewards, the last digits a padded batch's reordered
    sums change (a log-prob of -5.5 moved by 1.5e-4 under the 3-layer primary)."""
    from tokentree_env.env.vector import TokenTreeVectorEnv

    kwargs = dict(SMALL, max_new_tokens=6)
    native = gym.make_vec("TokenTree-v0", num_envs=3, **kwargs)
    assert isinstance(native, TokenTreeVectorEnv)
    sync = gym.vector.SyncVectorEnv([lambda: TokenTreeEnv(**kwargs) for _ in range(3)],
                                    autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    obs_a, _ = native.reset(seed=5)
    obs_b, _ = sync.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(14):  # long enough for episodes to end and autoreset
        for key in obs_a:
            np.testing.assert_allclose(obs_a[key], obs_b[key], rtol=1e-4, atol=1e-4)
        actions = [int(rng.choice(np.flatnonzero(m))) if m.any() else 0 for m in obs_a["action_mask"]]
        obs_a, r_a, te_a, tr_a, info_a = native.step(actions)
        obs_b, r_b, te_b, tr_b, info_b = sync.step(actions)
        np.testing.assert_allclose(r_a, r_b, rtol=1e-4, atol=1e-4)
        assert (te_a == te_b).all() and (tr_a == tr_b).all()
        assert list(info_a["text"]) == list(info_b["text"])
    native.close()
    sync.close()


def test_a_prompt_outside_the_tasks_problems_is_worked_out_or_named_as_one_without_an_answer(env):
    _, info = env.reset(options={"prompt": "12+30+41="})  # the task works out its answer from the text
    assert info["answer_known"] and env.unwrapped.verify("12+30+41=", "42+41=83.") == 1.0
    _, info = env.reset(options={"prompt": "twelve plus thirty="})
    assert info["answer_known"] is False
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(0)
        done = terminated or truncated
    assert info["answer_known"] is False and info["reward_terms"]["task"] == 0.0
    _, info = env.reset(options={"prompt": "twelve plus thirty=", "answer": "42"})
    assert info["answer_known"]
