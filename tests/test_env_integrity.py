"""Specification of what the env guarantees beyond the Gymnasium API: prompts are read faithfully or
refused, a failed reset leaves no stale episode, trees keep their provenance, evaluation mode never
shows the verifier to a planner, and every forwarded token is charged to an episode."""

import numpy as np
import pytest

from agents.training.selfplay import SelfPlayJob, play_episodes
from tokentree_env.env import TokenTreeEnv
from tokentree_env.errors import (
    ContextTooLongError,
    EnvStateError,
    PromptError,
    TreeMismatchError,
    VerifierLeakError,
)
from tokentree_env.teachers import ScriptedTeacher

SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "max_new_tokens": 12}


@pytest.fixture(scope="module")
def env():
    e = TokenTreeEnv(**SMALL)
    yield e
    e.close()


def finish(env, obs):
    while True:
        obs, _, terminated, truncated, info = env.step(int(np.flatnonzero(obs["action_mask"])[0]))
        if terminated or truncated:
            return info


# -- prompts --------------------------------------------------------------------------------------
def test_a_prompt_with_characters_the_primary_cannot_encode_is_refused_naming_them(env):
    with pytest.raises(PromptError, match="'é'"):
        env.reset(options={"prompt": "12+3é="})


@pytest.mark.parametrize("text", ["<eos>", "<bos>", "<pad>"])
def test_special_token_text_in_a_prompt_is_refused_not_read_as_a_special_token(env, text):
    with pytest.raises(PromptError, match="special-token text"):
        env.reset(options={"prompt": f"12+35{text}="})


def test_the_documented_option_runs_a_lossy_prompt_as_the_primary_reads_it():
    lossy = TokenTreeEnv(**SMALL, judge=None, allow_lossy_prompts=True)
    obs, _info = lossy.reset(options={"prompt": "12+3é="})
    assert lossy.trees["12+3é="].root_text == "12+3="
    finish(lossy, obs)


# -- a failed reset ---------------------------------------------------------------------------------
def test_a_failed_reset_leaves_the_env_needing_a_reset(env):
    env.reset(options={"prompt": "12+35+20="})
    with pytest.raises(ContextTooLongError):
        env.reset(options={"prompt": "1+" * 200 + "1="})
    with pytest.raises(EnvStateError, match="reset"):
        env.step(0)
    obs, _ = env.reset(options={"prompt": "12+35+20="})  # and a good reset works again
    assert obs["action_mask"].any()


# -- scripted teachers ------------------------------------------------------------------------------
def test_a_scripted_teacher_gives_reference_answers_in_an_env():
    from tokentree_env.models import load_model

    tok = load_model("zoo:primary").tokenizer
    digits = {tok.convert_tokens_to_ids(c): 0.1 for c in "0123456789"}
    scripted = ScriptedTeacher(lambda text: digits, len(tok), answers={"12+35=": "47."})
    env = TokenTreeEnv(teachers=[scripted], task="add2", max_new_tokens=4, judge=None)
    env.reset(options={"prompt": "12+35="})
    assert env.expander.decode(env.trees["12+35="].reference_paths["scripted"]) == "47."


# -- tree provenance --------------------------------------------------------------------------------
def test_trees_are_refused_by_an_env_with_other_teachers_but_a_trained_primary_keeps_its_own(tmp_path, env):
    env.reset(options={"prompt": "12+35+20="})
    env.save_trees(tmp_path)
    other = TokenTreeEnv(teachers=["zoo:teacher-gpt2"], max_new_tokens=12)
    with pytest.raises(TreeMismatchError, match="teachers"):
        other.load_trees(tmp_path)
    trained = TokenTreeEnv(**SMALL)
    trained.primary.mark_updated()  # new weights, same tokenizer: the trees load, stale slates are recomputed
    assert trained.load_trees(tmp_path) == 1
    trained.reset(options={"prompt": "12+35+20="})
    assert trained.trees["12+35+20="].nodes[0].slate.primary_version == trained.primary.version


# -- the verifier and who may see it ----------------------------------------------------------------
def test_evaluation_refuses_the_self_play_verifier_switch():
    with pytest.raises(VerifierLeakError, match="planner_verifier"):
        TokenTreeEnv(**SMALL, evaluation=True, planner_verifier=True)


def test_evaluation_refuses_turning_the_hide_flag_off_at_creation_or_later():
    with pytest.raises(VerifierLeakError, match="hide_verifier_from_planner"):
        TokenTreeEnv(**SMALL, evaluation=True, hide_verifier_from_planner=False)
    evaluating = TokenTreeEnv(**SMALL, evaluation=True, judge=None)
    with pytest.raises(VerifierLeakError):
        evaluating.hide_verifier_from_planner = False
    with pytest.raises(VerifierLeakError):
        evaluating.planner_verifier = True


def test_evaluation_refuses_hard_reward_on_a_simulated_state():
    evaluating = TokenTreeEnv(**SMALL, evaluation=True, judge=None)
    obs, _ = evaluating.reset(options={"prompt": "12+35+20="})
    state = evaluating.get_state()
    while not state.done:
        state, obs, *_ = evaluating.simulate(state, int(np.flatnonzero(obs["action_mask"])[0]))
    with pytest.raises(VerifierLeakError, match="simulated"):
        evaluating.hard_reward(state)
    finish(evaluating, evaluating.reset(options={"prompt": "12+35+20="})[0])
    assert evaluating.hard_reward(evaluating.get_state()) in (0.0, 1.0)  # the episode's own answer: allowed


def test_the_self_play_switch_scores_simulated_leaves_on_train_prompts_only():
    from tokentree_env.tasks import builtin_task

    selfplay = TokenTreeEnv(**SMALL, judge=None, planner_verifier=True)
    task = builtin_task("chain3")
    for prompt, shown in ((task.problems("train")[0].prompt, True), (task.problems("heldout")[0].prompt, False)):
        obs, _ = selfplay.reset(options={"prompt": prompt})
        state = selfplay.get_state()
        while not state.done:
            state, obs, _, _, _, info = selfplay.simulate(state, int(np.flatnonzero(obs["action_mask"])[0]))
        assert ("task" in info["reward_terms"]) is shown


# -- compute accounting -----------------------------------------------------------------------------
def test_over_prepared_self_play_the_episodes_forwarded_tokens_sum_to_the_models_counters():
    selfplay = TokenTreeEnv(**SMALL, planner_verifier=True)
    from tokentree_env.tasks import builtin_task

    items = [(i, p.prompt, [0, 1]) for i, p in enumerate(builtin_task("chain3").problems("train")[:4])]
    job = SelfPlayJob(agent="mcts:2")
    records = list(play_episodes(selfplay, items, job))
    charged = sum(r["forwarded_tokens"] for r in records)
    counted = sum(c["forwarded_tokens"] for c in selfplay.costs().values())
    assert len(records) == 8 and charged == counted
    for name, counters in selfplay.costs().items():  # and per model
        assert sum(r["forwarded_by_model"].get(name, 0) for r in records) == counters["forwarded_tokens"], name
    first, second = records[0], records[1]  # the prompt's reference answers and judge working go to its first
    assert first["forwarded_tokens"] > second["forwarded_tokens"]


def test_two_copies_of_one_model_are_charged_apart_and_named_apart():
    twins = TokenTreeEnv(teachers=["zoo:teacher-llama", "zoo:teacher-llama"], judge=None, max_new_tokens=8)
    assert twins.teacher_names == ["zoo:teacher-llama", "zoo:teacher-llama#2"]
    info = finish(twins, twins.reset(options={"prompt": "12+35+20="})[0])
    by_model = info["episode_cost_by_model"]
    assert set(by_model) == {"zoo:teacher-llama", "zoo:teacher-llama#2", "zoo:primary"}
    assert by_model["zoo:teacher-llama"] == by_model["zoo:teacher-llama#2"] > 0  # each copy forwarded its own
    assert info["episode_cost"]["forwarded_tokens"] == sum(c["forwarded_tokens"] for c in twins.costs().values())
    assert len(twins.trees["12+35+20="].reference_paths) == 2
    twins.close()


def test_teacher_objects_that_share_a_name_are_refused(env):
    from tokentree_env.errors import ConfigError

    a, b = (ScriptedTeacher(lambda text: {5: 1.0}, 100, name="same") for _ in range(2))
    with pytest.raises(ConfigError, match="two models are named 'same'"):
        TokenTreeEnv(teachers=[a, b], primary=env.primary, judge=None)
    with pytest.raises(ConfigError, match="listed twice"):
        TokenTreeEnv(teachers=[a, a], primary=env.primary, judge=None)


def test_an_episodes_cost_excludes_other_prompts_prepared_during_it(env):
    obs, _ = env.reset(options={"prompt": "11+22+33="})
    env.prepare(["44+22+11=", "13+14+15="])
    finish(env, obs)
    charged = env.episode_costs()["forwarded_tokens"]
    alone = TokenTreeEnv(**SMALL)
    finish(alone, alone.reset(options={"prompt": "11+22+33="})[0])
    assert charged == alone.episode_costs()["forwarded_tokens"]


def test_prepared_roots_are_expanded_ahead_and_charged_to_each_prompts_first_episode_as_at_reset():
    """``prepare(roots=True)`` expands every root in one batch per model: a reset then makes no model call for the
    root, and each prompt's first episode is charged what an unprepared env charges it, calls included. Without
    ``roots`` a root waits for its episode (a prompt prepared but never played costs no root)."""
    from tokentree_env.tree import ROOT

    prompts = ["12+35+20=", "7+1+4=", "44+22+11+9="]
    prepared, plain = TokenTreeEnv(**SMALL), TokenTreeEnv(**SMALL)
    plain.prepare(prompts[:1])
    assert plain.trees[prompts[0]].nodes[ROOT].slate is None
    prepared.prepare(prompts, roots=True)
    assert all(prepared.trees[p].nodes[ROOT].slate is not None for p in prompts)
    for prompt in prompts:
        calls = {n: c["forward_calls"] for n, c in prepared.costs().items()}
        obs, _ = prepared.reset(options={"prompt": prompt})
        assert {n: c["forward_calls"] for n, c in prepared.costs().items()} == calls  # the root came ready
        info = finish(prepared, obs)
        alone = TokenTreeEnv(**SMALL)
        expected = finish(alone, alone.reset(options={"prompt": prompt})[0])
        assert info["episode_cost"] == expected["episode_cost"]
        assert info["episode_cost"]["forward_calls"] > 0
        assert info["episode_cost_by_model"] == expected["episode_cost_by_model"]
        assert info["text"] == expected["text"]
        alone.close()
    prepared.close()
    plain.close()


def test_a_batched_answer_is_charged_only_the_tokens_its_row_forwarded():
    from tokentree_env.teachers import HFTeacher

    teacher = HFTeacher("zoo:teacher-gpt2")
    prompts = ["12+35+20=", "1+2+3=", "12+35+20+11+12+13="]
    texts = teacher.answers(prompts, max_new_tokens=10, owners=prompts)
    for prompt, text in zip(prompts, texts, strict=True):
        charged = teacher.counters.take(prompt)
        own = len(teacher.tokenizer(prompt)["input_ids"])
        generated = len(teacher.tokenizer(text, add_special_tokens=False)["input_ids"]) + 1  # + EOS
        assert charged["forwarded_tokens"] == own + min(generated, 10) - 1  # no padding counted


def test_a_sentence_embedders_forwards_are_counted_and_charged_to_the_episode():
    from tokentree_env.scoring import SentenceSimilarity

    semantic = TokenTreeEnv(**SMALL, judge=None, similarity=SentenceSimilarity())
    obs, _ = semantic.reset(options={"prompt": "12+35+20="})
    info = finish(semantic, obs)
    embedder = semantic.costs()["similarity:all-MiniLM-L6-v2"]
    assert embedder["forwarded_tokens"] > 0
    assert info["episode_cost_by_model"]["similarity:all-MiniLM-L6-v2"] == embedder["forwarded_tokens"]
    assert info["episode_cost"]["forwarded_tokens"] == sum(c["forwarded_tokens"] for c in semantic.costs().values())


def test_models_run_where_asked_an_episode_in_bfloat16_on_the_cpu():
    import torch

    half = TokenTreeEnv(**SMALL, device="cpu", dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for m in half.expander.models for p in m.model.parameters())
    assert next(half.judge.teacher.model.parameters()).dtype == torch.bfloat16
    obs, _ = half.reset(options={"prompt": "12+35+20="})
    assert np.isfinite(obs["features"]).all()
    info = finish(half, obs)
    assert info["terminal_reason"] is not None
