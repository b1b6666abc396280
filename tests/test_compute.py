"""Specification of compute accounting (agents.compute): every model's tokens weighted by its size, CPU seconds per
phase, and budgets that stop a run cleanly and resumably."""

import pytest

from agents.compute import Budget, BudgetReached, Ledger, weighted_tokens
from agents.training import TrainConfig, TrainingRun
from tokentree_env.errors import ConfigError


def test_weighted_tokens_are_primary_token_equivalents_and_a_model_of_unknown_size_is_listed_apart():
    tokens = {"teacher": 1000, "primary": 500, "server": 70}
    sizes = {"teacher": 300, "primary": 100, "server": None}
    assert weighted_tokens(tokens, sizes, reference=100) == 1000 * 3 + 500
    ledger = Ledger(tokens, {"generation": 2.0, "training": 1.0, "evaluation": 0.5}, sizes, 100)
    text = "\n".join(ledger.lines())
    assert "teacher: 1,000 tokens" in text and "server: 70 tokens (size unknown: not weighted)" in text
    assert "weighted total: 3,500 primary-token equivalents (1,570 tokens in all)" in text
    assert "generation 2.0, training 1.0, evaluation 0.5" in text


def test_a_budget_is_spent_by_cpu_seconds_of_every_phase_or_by_weighted_tokens():
    ledger = Ledger({"primary": 50}, {"generation": 3.0, "training": 2.0, "evaluation": 0.0}, {"primary": 10}, 10)
    assert Budget(cpu_seconds=5.0).spent(ledger) == "5.0 of 5 CPU seconds spent"
    assert Budget(cpu_seconds=6.0).spent(ledger) is None
    assert Budget(weighted_tokens=50).spent(ledger) and Budget(weighted_tokens=51).spent(ledger) is None
    with pytest.raises(ConfigError, match="cpu_seconds must be positive"):
        Budget(cpu_seconds=0)


def test_a_run_stops_at_its_budget_keeping_every_episode_and_resumes_to_the_uninterrupted_run(tmp_path):
    base = {"iterations": 2, "prompts_per_iteration": 4, "epochs": 1, "eval_size": 10, "validation_size": 10,
            "teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "max_new_tokens": 14}
    stopped = TrainingRun(TrainConfig(output_dir=str(tmp_path / "run"), **base), budget=Budget(weighted_tokens=1))
    with pytest.raises(BudgetReached, match="weighted tokens spent"):
        stopped.run()
    kept = list(stopped.store)
    assert 1 <= len(kept) < 8 and stopped.ledger.tokens  # stopped within the first iteration, after a chunk
    resumed = TrainingRun.from_output_dir(tmp_path / "run")
    summary = resumed.run()
    whole = TrainingRun(TrainConfig(output_dir=str(tmp_path / "whole"), **base))
    whole.run()
    key = lambda r: (r["iteration"], r["prompt_index"], r["repeat"])  # noqa: E731
    assert sorted((key(r), r["tokens"]) for r in resumed.store) == sorted((key(r), r["tokens"]) for r in whole.store)
    assert summary["compute"]["tokens"] == whole.ledger.tokens  # the resumed ledger counts every episode once
    assert summary["compute"]["cpu"]["training"] > 0 and summary["compute"]["weighted"] > 0


def test_a_round_budget_stops_self_play_mid_round_and_the_round_trains_on_what_it_has(tmp_path):
    base = {"iterations": 2, "prompts_per_iteration": 6, "epochs": 1, "eval_size": 10, "validation_size": 10,
            "teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "max_new_tokens": 14, "selfplay_batch": 1}
    run = TrainingRun(TrainConfig(output_dir=str(tmp_path / "run"), round_weighted_tokens=1, **base))
    run.run()
    for iteration, metrics in enumerate(run.state["history"]):  # each round: one episode, then training
        assert metrics["episodes"] == 1 and "weighted tokens" in metrics["round_stopped"]
        assert sum(r["iteration"] == iteration for r in run.store) == 1
    free = TrainingRun(TrainConfig(output_dir=str(tmp_path / "free"), iterations=1,
                                   **{k: v for k, v in base.items() if k != "iterations"}))
    free.run()
    assert free.state["history"][0]["episodes"] == 6 and free.state["history"][0]["round_stopped"] is None
    with pytest.raises(ConfigError, match="workers=1"):
        TrainConfig(round_cpu_seconds=10.0, workers=2)


def test_round_budgets_given_per_iteration_stop_each_round_at_its_own_and_survive_a_resume(tmp_path):
    base = {"iterations": 2, "prompts_per_iteration": 6, "epochs": 1, "eval_size": 10, "validation_size": 10,
            "teachers": ("zoo:teacher-qwen2",), "max_new_tokens": 14, "selfplay_batch": 1}
    run = TrainingRun(TrainConfig(output_dir=str(tmp_path / "run"), round_weighted_tokens=(1, 1e12), **base))
    run.run()
    first, second = run.state["history"]
    assert first["episodes"] == 1 and "weighted tokens" in first["round_stopped"]
    assert second["episodes"] == 6 and second["round_stopped"] is None
    assert TrainingRun.from_output_dir(tmp_path / "run").config.round_budget(0) == (None, 1.0)  # read back from JSON
    with pytest.raises(ConfigError, match="one positive budget for each of the 2 iterations"):
        TrainConfig(round_weighted_tokens=(1.0,), **base)


@pytest.mark.parametrize(("field", "value", "says"), [("workers", -3, "workers must be >= 0"),
                                                       ("unsolved", "guess", "unsolved must be one of")])
def test_a_train_config_refuses_a_value_it_cannot_run_naming_it(field, value, says):
    with pytest.raises(ConfigError, match=says):
        TrainConfig(**{field: value})


def test_a_pool_walk_goes_on_after_the_furthest_prompt_played_in_one_order_per_seed(tmp_path):
    from agents.training.pool import pool, walk_order

    base = {"iterations": 2, "prompts_per_iteration": 6, "epochs": 1, "eval_size": 10, "validation_size": 10,
            "teachers": ("zoo:teacher-qwen2",), "max_new_tokens": 14, "selfplay_batch": 1, "pool_walk": True,
            "round_weighted_tokens": 1, "seed": 4}
    run = TrainingRun(TrainConfig(output_dir=str(tmp_path / "run"), **base))
    run.run()
    order = walk_order(pool(run.task, 10, "chain3"), 4)
    played = [r["prompt"] for r in sorted(run.store, key=lambda r: r["iteration"])]
    assert played == order[:2]  # one episode a round (the budget), the second round after the first's prompt
    assert walk_order(pool(run.task, 10, "chain3"), 5) != order


@pytest.mark.parametrize(("coverage_first", "batch"), [(True, 8), (False, 4)], ids=["coverage-first", "lockstep"])
def test_at_a_round_stop_the_ledger_holds_every_token_the_env_forwarded(tmp_path, monkeypatch, coverage_first, batch):
    """Prompts prepared but never played, and the episodes in flight in a lockstep batch, are charged to the round:
    the run's ledger equals what the env's own counters saw, model by model, also after a resume."""
    from tokentree_env.env import TokenTreeEnv

    seen = {}
    close = TokenTreeEnv.close
    monkeypatch.setattr(TokenTreeEnv, "close", lambda self: (seen.update(
        {m: c["forwarded_tokens"] for m, c in self.costs().items()}), close(self))[1])
    base = {"iterations": 1, "prompts_per_iteration": 6, "epochs": 1, "eval_size": 10, "validation_size": 10,
            "teachers": ("zoo:teacher-qwen2",), "max_new_tokens": 14, "coverage_first": coverage_first,
            "selfplay_batch": batch, "round_weighted_tokens": 1}
    run = TrainingRun(TrainConfig(output_dir=str(tmp_path / "run"), **base))
    run.run()
    assert len(list(run.store)) < 6 and run.state["history"][0]["round_stopped"]
    assert {m: n for m, n in run.ledger.tokens.items() if n} == {m: n for m, n in seen.items() if n}
    unstored = run.state["history"][0]["round_unstored"]["forwarded_by_model"]
    assert sum(unstored.values()) > 0  # the chunk's other prompts, or the batch's other episodes
    resumed = TrainingRun.from_output_dir(tmp_path / "run")
    resumed.run()  # finished: the ledger is rebuilt from the store and the state, the same
    assert resumed.ledger.tokens == run.ledger.tokens


def test_a_batched_call_counts_once_and_is_split_among_its_owners_only_inside_splitting_calls():
    from tokentree_env.teachers.base import CostCounter, splitting_calls

    counter = CostCounter()
    with counter.charging("episode"):
        counter.call(["a", "b"])  # outside: the ambient owner, as a plain call
        with splitting_calls([counter]):
            counter.call(["a", "b", "a", None])  # inside: each owner once, no ambient owner
    assert counter.forward_calls == 2
    assert counter.ledger["episode"]["forward_calls"] == 1
    assert counter.ledger["a"]["forward_calls"] == counter.ledger["b"]["forward_calls"] == 1
    counter.call(["a"])
    assert counter.ledger["a"]["forward_calls"] == 1  # restored after the block


def test_overlapping_lockstep_plays_restore_the_collectors_thresholds_when_the_last_one_ends():
    import gc

    from agents.search.lockstep import GC_THRESHOLDS, relaxed_gc

    before = gc.get_threshold()
    first, second = relaxed_gc(), relaxed_gc()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends before the second
    assert gc.get_threshold() == GC_THRESHOLDS
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
