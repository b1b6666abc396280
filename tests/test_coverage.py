"""Specification of coverage-first self-play and trees as data: the teachers' verified greedy answers first, search
only where they fail, a search that stops at its first verified leaf, every verified answer kept, per-node targets
and verified-wrong negatives, the student in the panel, and the export TRL reads."""

import numpy as np
import pytest

from agents.search import MCTSAgent, MCTSConfig
from agents.training.datasets import distillation_dataset, dpo_dataset, improved_target, sft_dataset
from agents.training.selfplay import SelfPlayJob, play_episodes
from tests.helpers import char_primary
from tokentree_env.env import TokenTreeEnv
from tokentree_env.tasks import load_task

SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "max_new_tokens": 14, "planner_verifier": True}


def _train_prompts(n: int, offset: int = 0) -> list[str]:
    return [p.prompt for p in load_task("chain3").problems("train")[offset:offset + n]]


def test_a_search_stops_at_its_first_verified_leaf_and_plays_that_answer_out():
    prompt = _train_prompts(1)[0]
    played = {}
    for stop in (False, True):
        env = TokenTreeEnv(**SMALL)
        agent = MCTSAgent(MCTSConfig(num_simulations=8, stop_at_verified=stop))
        played[stop] = agent.run_episode(env, options={"prompt": prompt})
    stopped = played[True]
    assert stopped.hard_reward == 1.0 and stopped.verified_answers  # the verified answer it found, played out
    searched = sum(1 for step in stopped.records if step.visits)
    assert searched < played[False].steps  # the planned moves after the find are not searched
    assert [stopped.tokens] == [a for a in stopped.verified_answers if a == stopped.tokens]


def test_coverage_first_self_play_searches_only_the_prompts_no_teacher_solved():
    env = TokenTreeEnv(**SMALL)
    items = [(i, p, [0]) for i, p in enumerate(_train_prompts(6))]
    records = list(play_episodes(env, items, SelfPlayJob(agent="mcts:2", coverage_first=True,
                                                         settings=(("stop_at_verified", True),))))
    teachers = [r for r in records if r.get("source") == "teachers"]
    searched = [r for r in records if r.get("source") != "teachers"]
    assert len(records) == 6 and teachers  # one record per prompt
    for r in teachers:  # solved by a teacher: no search, its verified answers kept, its preparation charged to it
        assert r["steps"] == 0 and r["verified_answers"] and r["forwarded_tokens"] > 0
    for r in searched:  # no teacher's greedy answer was right
        answers = env.reference_answers(r["prompt"])
        assert all(env.verify(r["prompt"], env.decode(a)) < 0.5 for a in answers)
    charged = sum(r["forwarded_tokens"] for r in records)
    assert charged == sum(c["forwarded_tokens"] for c in env.costs().values())  # every model call charged once


def _step(candidates, visits, q, panel, scores=None, continuations=None, total=8):
    return {"candidates": candidates, "visits": visits, "q_values": q, "panel_logprobs": panel, "prior": visits,
            "continuation_scores": scores or [None] * len(candidates), "visit_total": total,
            "continuations": continuations or [[] for _ in candidates], "directions": [], "chosen": 0, "reward": 0.0}


def test_the_improved_target_is_the_softmax_of_panel_logits_plus_the_scaled_completed_q():
    step = _step([5, 6, 7], [0.75, 0.25, 0.0], [1.0, 0.0, 0.0], list(np.log([0.2, 0.5, 0.3])), total=8)
    counts = np.array([6.0, 2.0, 0.0])
    prior = np.array([0.2, 0.5, 0.3])
    mixed = (0.2 * 1.0 + 0.5 * 0.0) / 0.7  # the prior-weighted Q of the visited children, for the unvisited one
    completed = np.array([1.0, 0.0, mixed])
    scores = np.log(prior) + (50 + counts.max()) * 0.1 * (completed - completed.min()) / np.ptp(completed)
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    np.testing.assert_allclose(improved_target(step), expected, atol=1e-12)


def test_distillation_keeps_only_nodes_with_enough_visits():
    record = {"prompt_ids": [1, 2], "tokens": [5, 9], "records": [
        _step([5, 6], [0.5, 0.5], [0.1, 0.2], [-0.5, -1.0], total=8),
        _step([9, 3], [1.0, 0.0], [0.3, 0.0], [-0.1, -3.0], total=2)]}
    rows = distillation_dataset([record], target="improved", min_visits=4)
    assert len(rows) == 1 and rows[0]["input_ids"] == [1, 2]


def test_dpo_negatives_are_only_siblings_whose_continuations_were_verified_wrong():
    tok = char_primary()
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    right, other_right, wrong = ids("6."), ids("3+3=6."), ids("7.")
    record = {"prompt": "1+2+3=", "prompt_ids": ids("1+2+3="), "completion": "6.", "tokens": right,
              "hard_reward": 1.0, "episode_return": 1.0, "records": [
                  _step([right[0], other_right[0], wrong[0]], [0.6, 0.2, 0.2], [1.0, 0.5, 0.2], [-1, -1, -1],
                        scores=[1.0, 1.0, 0.0], continuations=[right, other_right, wrong])]}
    rows = dpo_dataset([record], tok, max_pairs_per_step=5)
    assert [r["rejected_ids"][:-1] for r in rows] == [wrong]  # the other right answer is no negative


def test_sft_on_every_distinct_verified_answer_of_a_coverage_first_run():
    tok = char_primary()
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    record = {"prompt": "1+2+3=", "prompt_ids": ids("1+2+3="), "completion": "6.", "tokens": ids("6."),
              "hard_reward": 1.0, "episode_return": 1.0, "verified_answers": [ids("6."), ids("3+3=6.")]}
    assert len(sft_dataset([record], tok)) == 1 and len(sft_dataset([record, record], tok, distinct=True)) == 2


def test_the_student_joins_the_panel_from_the_second_iteration(tmp_path):
    from agents.training import TrainConfig, TrainingRun

    run = TrainingRun(TrainConfig(output_dir=str(tmp_path / "run"), student_in_panel=True,
                                  teachers=("zoo:teacher-qwen2", "zoo:teacher-llama")))
    assert run._env_kwargs(0)["teachers"] == ["zoo:teacher-qwen2", "zoo:teacher-llama"]
    assert run._env_kwargs(1)["teachers"] == ["zoo:teacher-qwen2", "zoo:teacher-llama", "primary"]
    from tokentree_env.teachers import HFTeacher

    env = TokenTreeEnv(primary=HFTeacher("zoo:primary", name="primary"), **(run._env_kwargs(1) | {"judge": None}))
    _, info = env.reset(options={"prompt": _train_prompts(1)[0]})
    assert env.teacher_names[-1] == "primary" and len(info["panel"]["weights"]) == 3


def test_a_zero_loss_weight_leaves_the_primary_as_it_was(tmp_path):
    import torch

    from agents.training import TrainConfig, TrainingRun
    from tokentree_env.models import load_model

    config = TrainConfig(output_dir=str(tmp_path / "run"), teachers=("zoo:teacher-qwen2",), ewc=0.0, replay="off",
                         signal_weights={"sft": 0.0}, epochs=1)
    run = TrainingRun(config)
    lm = load_model("zoo:primary", trainable=True)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    tok = lm.tokenizer
    record = {"prompt": "1+2+3=", "completion": "6.", "hard_reward": 1.0, "episode_return": 1.0}
    run.train_round(lm, [record] * 4)
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert run._signal_cpu["sft"] > 0 and tok is not None


def test_the_export_is_read_by_trls_sft_and_dpo_trainers(tmp_path):
    from datasets import load_from_disk

    from agents.training import TrainConfig, TrainingRun
    from agents.training.export import export_run

    config = TrainConfig(output_dir=str(tmp_path / "run"), iterations=1, prompts_per_iteration=4, epochs=1,
                         eval_size=4, validation_size=4, teachers=("zoo:teacher-qwen2", "zoo:teacher-llama"),
                         max_new_tokens=14, simulations=4, workers=1)
    TrainingRun(config).run()
    counts = export_run(tmp_path / "run", tmp_path / "export")
    assert counts["sft"] >= 1
    sft = load_from_disk(str(tmp_path / "export" / "sft"))
    assert set(sft.column_names) == {"prompt", "completion"} and sft[0]["completion"]
    from trl import SFTConfig, SFTTrainer

    from tokentree_env.models import load_model

    lm = load_model("zoo:primary", trainable=True)
    args = SFTConfig(output_dir=str(tmp_path / "t"), max_steps=1, report_to="none", use_cpu=True,
                     per_device_train_batch_size=2, save_strategy="no")
    SFTTrainer(model=lm.model, args=args, train_dataset=sft, processing_class=lm.tokenizer).train()
    if counts["dpo"]:
        dpo = load_from_disk(str(tmp_path / "export" / "dpo"))
        assert set(dpo.column_names) == {"prompt", "chosen", "rejected"}


@pytest.mark.parametrize("field", ["stop_at_verified"])
def test_a_search_setting_only_self_play_can_use_acts_there(field):
    """The field table of tests/test_search_driver.py hides the verifier; here it is shown, and the setting acts."""
    prompt = _train_prompts(1, offset=3)[0]
    runs = []
    for value in (False, True):
        env = TokenTreeEnv(**SMALL)
        runs.append(MCTSAgent(MCTSConfig(num_simulations=8, **{field: value})).run_episode(env, options={"prompt": prompt}))
    assert [s.visits for s in runs[0].records] != [s.visits for s in runs[1].records]


def test_without_a_search_coverage_first_keeps_the_teachers_answers_alone_and_charges_every_prompt():
    env = TokenTreeEnv(**SMALL)
    items = [(i, p, [0]) for i, p in enumerate(_train_prompts(6))]
    job = SelfPlayJob(agent="mcts:2", coverage_first=True, unsolved="none")
    records = list(play_episodes(env, items, job))
    assert [r["prompt_index"] for r in records] == list(range(6))  # one record per prompt, none searched
    assert all(r["source"] == "teachers" and r["steps"] == 0 for r in records)
    for r in records:
        right = [a for a in env.reference_answers(r["prompt"]) if env.verify(r["prompt"], env.decode(a)) >= 0.5]
        assert r["hard_reward"] == float(bool(right)) and len(r["verified_answers"]) == len({tuple(a) for a in right})
    assert sum(r["forwarded_tokens"] for r in records) == sum(c["forwarded_tokens"] for c in env.costs().values())


def test_coverage_first_sampling_draws_round_robin_until_a_verified_answer_and_charges_every_sample():
    from agents.training.datasets import dpo_dataset

    from tokentree_env.zoo.catalog import default_models

    chain5 = {"task": "chain5", "max_new_tokens": 40, "planner_verifier": True, "judge": None,
              **{k: v for k, v in default_models("chain5").items() if k != "judge"}}
    env = TokenTreeEnv(**chain5)  # its teachers err: some prompts are left to the samples
    items = [(i, p.prompt, [0]) for i, p in enumerate(load_task("chain5").problems("train")[:8])]
    job = SelfPlayJob(agent="mcts:2", coverage_first=True, unsolved="samples", unsolved_samples=3, seed=3)
    records = list(play_episodes(env, items, job))
    assert sorted(r["prompt_index"] for r in records) == list(range(8))
    sampled = [r for r in records if r["source"] == "samples"]
    assert sampled and any(r["verified_answers"] for r in sampled)
    for r in sampled:  # no teacher's greedy answer was right; it stopped at its first verified sample or its cap
        assert r["hard_reward"] == float(bool(r["verified_answers"])) and len(r["verified_answers"]) <= 1
        assert 1 <= r["draws"] <= 3 and all(env.verify(r["prompt"], env.decode(a)) < 0.5 for a in r["wrong_answers"])
        assert r["draws"] == 3 or r["verified_answers"]  # it stopped early only at a verified sample
        assert 0 < sum(r["sample_forwarded_by_model"].values()) < r["forwarded_tokens"]  # samples + the greedy answers
    assert sum(r["forwarded_tokens"] for r in records) == sum(c["forwarded_tokens"] for c in env.costs().values())
    again = list(play_episodes(TokenTreeEnv(**chain5), items, job))
    assert [r["tokens"] for r in again] == [r["tokens"] for r in records]  # the same seed, the same samples
    pairs = [r for r in sampled if r["verified_answers"] and r["wrong_answers"]]
    assert len(dpo_dataset(pairs, char_primary())) == len(pairs)
