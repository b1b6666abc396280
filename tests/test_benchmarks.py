"""Specification of the benchmarks: each runs on a tiny budget and writes well-formed results.

No benchmark is a timed test: these check shape and consistency, never speed."""

import json

from agents.bench import learning, suite


def test_the_suite_runs_every_part_on_a_tiny_budget_and_writes_json_plots_and_a_table(tmp_path):
    cfg = suite.SuiteConfig(name="tiny", out=str(tmp_path), tiny=True, parts=("speed", "search", "ablations"))
    suite.run(cfg)
    result = json.loads((tmp_path / "tiny.json").read_text())
    assert {"machine", "config", "speed", "search", "ablations", "seconds"} <= set(result)
    assert result["machine"]["versions"]["torch"] and result["config"]["seed"] == 0
    speed = result["speed"]
    assert [r["stack"] for r in speed["expansion"]] == ["zoo", "benchmark"]
    assert all(r["ratio"] > 0 and r["token_mismatches"] == 0 for r in speed["env_overhead"])
    assert list(speed["cost"]["by_teachers"]) == ["1", "2", "3"] and list(speed["cost"]["by_k"]) == ["4", "8", "16", "32"]
    assert speed["mcts"]["simulations_per_second"] > 0
    assert all(isinstance(t["met"], bool) for t in speed["targets"].values())
    rows = result["search"]["rows"]
    agents = ("ensemble-greedy", "best-reference", "majority-vote", "best-of-4", "mcts-2", "mcts-gumbel-4")
    assert [(r["agent"], r["judge"]) for r in rows] == [(a, j) for j in (True, False) for a in agents]
    assert all(0 <= r["accuracy_low"] <= r["accuracy"] <= r["accuracy_high"] <= 1 and r["episodes"] == 3 for r in rows)
    assert [r["variant"] for r in result["ablations"]["teachers"]] == ["3 teachers", "1 teacher"]
    for name in ("tiny.md", "tiny-search.png", "tiny-speed.png", "tiny-ablations.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| expansion / bare forwards (median) |" in (tmp_path / "tiny.md").read_text()


def test_the_learning_benchmark_runs_on_a_tiny_budget_and_reports_every_target(tmp_path):
    summary = learning.main(["--tiny", "--seeds", "2", "--signals", "sft", "--out", str(tmp_path)])
    assert set(summary["signals"]) == {"sft"} and len(summary["signals"]["sft"]["task_accuracy"]) == 3
    assert summary["signals"]["sft"]["gap_closed"]["n"] == 2
    assert set(summary["forgetting"]) == {"none", "ewc", "si", "replay"}
    assert {"gap_closed_>=0.80_within_10_min", "search_at_least_control", "no_cl_forgets"} <= set(summary["targets"])
    assert all(isinstance(t["met"], bool) for t in summary["targets"].values())
    saved = json.loads((tmp_path / "learning.json").read_text())
    assert len([r for r in saved["runs"] if r["kind"] == "control"]) == 2
    assert (tmp_path / "learning.png").stat().st_size > 0 and (tmp_path / "learning.md").read_text().startswith("Best")


def test_interval_is_a_t_interval_over_seeds():
    out = learning.interval([0.5, 0.7, 0.9])
    assert abs(out["mean"] - 0.7) < 1e-12
    assert abs(out["ci95"] - 4.302652729911275 * 0.2 / 3 ** 0.5) < 1e-9


def test_the_search_benchmark_declares_before_measuring_compares_paired_and_resumes(tmp_path):
    """The declared budget is written before any measured episode and kept; every evaluation row appears with
    the judge on and off; the MCTS rows carry paired comparisons; a rerun plays nothing new."""
    from agents.bench.search import SearchBenchConfig, run

    cfg = SearchBenchConfig(task="chain3", n=2, pilot=1, value_head_problems=1, out=str(tmp_path), workers=1,
                            budgets=(1, 2), best_of=(2,), max_new_tokens=16)
    result = run(cfg)
    declared = json.loads((tmp_path / "declared.json").read_text())
    assert declared["mcts_budget"] in (1, 2) and declared["leaf_sources"]
    evaluation = result["tables"]["evaluation"].values()
    for agent in ("ensemble-greedy", "best-reference", "majority-vote"):
        assert {r["judge"] for r in evaluation if r["agent"] == agent} == {True, False}
    comparison = next(iter(result["evaluation_comparisons"].values()))
    assert set(comparison) == {"ensemble-greedy", "majority-vote", "best-reference"}
    assert {"difference", "low", "high", "p_value"} <= set(comparison["ensemble-greedy"])
    assert set(result["targets"]) == {"self_play_at_least_best_of_n", "self_play_15_points_over_best_teacher",
                                      "evaluation_beats_all_strong_baselines"}
    assert result["value_sources"]["training_examples"] > 0
    assert (tmp_path / "search.png").exists() and "Paired comparisons" in (tmp_path / "search.md").read_text()
    stored = (tmp_path / "episodes.jsonl").read_text()
    run(cfg)
    assert (tmp_path / "episodes.jsonl").read_text() == stored
