"""Specification of the benchmarks: each runs on a tiny budget and writes well-formed results.

No benchmark is a timed test: these check shape and consistency, never speed."""

import json

import pytest

from benchmarks import learning, suite


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
    for target in (t for t in speed["targets"].values() if "limit" in t):  # met exactly when within the limit
        assert target["met"] == (target["measured"] <= target["limit"])
    rows = result["search"]["rows"]
    agents = ("ensemble-greedy", "best-reference", "majority-vote", "best-of-4", "mcts-2", "mcts-gumbel-4")
    assert [(r["agent"], r["judge"]) for r in rows] == [(a, j) for j in (True, False) for a in agents]
    from tokentree_env.stats import wilson

    for r in rows:  # the interval is the Wilson interval of the row's own count
        assert r["episodes"] == 3
        assert (r["accuracy_low"], r["accuracy_high"]) == pytest.approx(wilson(r["accuracy"] * 3, 3))
    assert [r["variant"] for r in result["ablations"]["teachers"]] == ["3 teachers", "1 teacher"]
    for name in ("tiny.md", "tiny-search.png", "tiny-speed.png", "tiny-ablations.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| expansion / bare forwards (median) |" in (tmp_path / "tiny.md").read_text()


def test_the_learning_benchmark_pairs_search_with_both_controls_at_equal_budget_and_reports_credit(tmp_path):
    """Every seed gets a search run and the two controls twice (by CPU seconds and by weighted tokens of every model); the
    report pairs them per seed, counts what only the search solved and writes its files; a rerun resumes."""
    out = tmp_path / "learning"
    argv = ["--tiny", "--task", "chain3", "--seeds", "2", "--parts", "headline", "signals", "--signals", "dpo",
            "--search", "mcts-steps:2", "--out", str(out)]
    summary = learning.main(argv)
    declared = json.loads((out / "declared.json").read_text())
    assert declared["search"]["spec"] == "mcts-steps:2" and declared["budget"]["cpu_seconds_per_iteration"] > 0
    assert set(summary["arms"]) == {"search", "sft-greedy-cpu", "sft-greedy-tokens", "rft-cpu", "rft-tokens"}
    assert all(set(arm["pass_at_k"]) == {"1", "4"} for arm in summary["arms"].values())
    assert all({"bootstrap", "t_interval"} <= set(p) for p in summary["paired"].values())
    assert all(len(arm["task_accuracy"]) == 3 for arm in summary["arms"].values())
    assert set(summary["paired"]) == set(summary["arms"]) - {"search"}
    assert all(len(p["differences"]) == 2 for p in summary["paired"].values())
    assert [(c["seed"], c["iteration"]) for c in summary["credit"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(0 <= c["only_search"] <= c["solved"] for c in summary["credit"])
    assert set(summary["hard_problems"]["arms"]) == set(summary["arms"])
    assert all("lowered" in w and "raised" in w for seed in summary["weightage"] for w in seed)
    assert set(summary["signals"]) == {"dpo"}
    assert [e for _, e in summary["signals"]["dpo"]["self_play_solved"]] == [6, 6]  # 3 prompts x 2 repeats a round
    assert all(0 <= n <= e for n, e in summary["signals"]["dpo"]["self_play_solved"])
    assert {"search_beats_rft_at_equal_cpu", "search_pass64_at_least_the_controls", "main_job_on_task"} <= set(
        summary["targets"])
    runs = json.loads((out / "learning.json").read_text())["runs"]
    search = [r for r in runs if r["arm"] == "search"]
    from agents.compute import weighted_tokens

    for s in search:  # the search arm's budget counts every model it ran, the primary and the judge too
        params, ref = s["parameters"], s["reference_parameters"]
        for by_model, w in zip(s["forwarded_by_model"], s["weighted_tokens"], strict=True):
            others = set(by_model) - set(s["config"]["teachers"])
            assert f"judge:{s['config']['judge']}" in others and len(others) == 2 and all(by_model.values())
            teachers_only = {m: n for m, n in by_model.items() if m in s["config"]["teachers"]}
            assert w == pytest.approx(weighted_tokens(by_model, params, ref))
            assert w > weighted_tokens(teachers_only, params, ref)
    for control in (r for r in runs if r.get("by") in ("tokens", "cpu")):  # charged the same way, as the search is
        paired = next(s for s in search if s["seed"] == control["seed"])
        for h in control["history"]:
            assert h["weighted_tokens"] > 0
            assert h["weighted_tokens"] == pytest.approx(weighted_tokens(h["forwarded_by_model"], paired["parameters"],
                                                                         paired["reference_parameters"]))
        if control["by"] == "tokens":  # and stops only once it has spent the search's weighted tokens
            assert all(h["weighted_tokens"] >= b for h, b in zip(control["history"], paired["weighted_tokens"],
                                                                 strict=True))
    assert (out / "learning.png").stat().st_size > 0 and "search" in (out / "learning.md").read_text()
    saved = {p.name: p.stat().st_mtime for p in (out / "runs").glob("*.json")}
    learning.main(argv)
    assert {p.name: p.stat().st_mtime for p in (out / "runs").glob("*.json")} == saved


def test_the_search_benchmark_declares_before_measuring_compares_paired_and_resumes(tmp_path):
    """The unit, the budgets and every row's setting per budget are written before any measured episode (every
    measured episode is logged after it); the headline rows are compared paired at each budget; the targets are
    named; the leaf sources are scored; a rerun plays nothing new."""
    from benchmarks.search import run
    from benchmarks.search_config import SearchBenchConfig

    cfg = SearchBenchConfig(n=2, pilot=2, value_head_problems=1, out=str(tmp_path), workers=1, budgets=(2.0, 4.0),
                            largest_setting=3, families=("mcts", "best-of-n", "teacher-samples-majority", "mcts-steps"))
    result = run(cfg)
    declared = json.loads((tmp_path / "declared.json").read_text())
    unit = declared["unit"]["weighted_tokens_per_problem"]
    assert unit > 0 and {2.0, 4.0} <= set(declared["budgets"]) and len(declared["budgets"]) == 4
    assert declared["headline"]["mcts"] == "mcts" and declared["settings_fixed"]["panel"]["rule"] == "mixture"
    for key, by_budget in declared["settings"].items():  # each setting is the largest within its budget
        costs = declared["pilot"][key]
        for budget, setting in by_budget.items():
            within = [int(s) for s, (cost, _) in costs.items() if cost <= float(budget) * unit]
            assert setting == (max(within) if within else None), (key, budget)
    logged = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    for r in logged:  # every episode's budget unit: each model's tokens weighted by its size (the judge counts 2x)
        assert r["weighted_tokens"] > 0 and set(r["forwarded_by_model"] or {}) <= {*cfg.model_kwargs(True)["teachers"],
                                                                                    cfg.model_kwargs(True)["primary"],
                                                                                    f"judge:{cfg.model_kwargs(True)['judge']}"}
    measured = [r for r in logged if not r["mode"].startswith("pilot")]
    assert measured and all(r["logged_at"] >= declared["declared_at"] for r in measured)
    evaluation = result["modes"]["evaluation-judge-on"]
    assert {"mcts", "best-reference", "majority-vote", "mcts-steps"} <= {e["family"] for e in evaluation["rows"]}
    from benchmarks.search_report import teacher_styles

    styles = set(teacher_styles(cfg))
    for e in evaluation["rows"]:  # the style share is the share of the row's own episodes in a teacher's style
        played = [r for r in measured if r["mode"] == "evaluation-judge-on" and r["spec"] == e["spec"]]
        assert e["episodes"] == cfg.n == len(played)
        assert e["style_share"] == pytest.approx(sum(r["style"] in styles for r in played) / cfg.n)
    assert all(0 < e["slate_mass"] <= 1 + 1e-6 for e in evaluation["rows"] if e["slate_mass"] is not None)
    assert {c["searcher"] for c in evaluation["comparisons"]} == {"mcts", "mcts-steps"}
    assert all({"difference", "low", "high", "p_value", "only_a"} <= set(c) for c in evaluation["comparisons"])
    assert "evaluation 4R: mcts beats best-reference" in result["targets"]
    for mode, spec in (("self-play", "stepwise-greedy-verifier"), ("evaluation-judge-on", "stepwise-greedy")):
        stepwise = [e for e in result["modes"][mode]["rows"] if e["family"] == "stepwise-greedy"]
        assert [e["spec"] for e in stepwise] == [spec]  # the strong cheap baseline, the verifier picking in self-play
        assert any(c["family"] == "stepwise-greedy" for c in result["modes"][mode]["comparisons"])
    combine = {k: v for k, v in result["targets"].items() if "step-wise greedy" in k or "teachers' samples" in k}
    above = "at least 15 points above the teachers' samples (the difference; its interval above 0)"
    assert set(combine) == {"self-play 2R: mcts beats step-wise greedy (the verifier picking)",
                            "self-play 4R: mcts beats step-wise greedy (the verifier picking)",
                            f"self-play 2R: mcts {above}", f"self-play 4R: mcts {above}",
                            "evaluation 4R: mcts beats the judge picking among the teachers' samples"}
    assert result["leaf_sources"]["sources"]["held_out_states"] > 0
    assert (tmp_path / "search.png").stat().st_size > 0 and "### self-play" in (tmp_path / "search.md").read_text()
    chunks = {(r["mode"], r["spec"], r["chunk"], r["logged_at"]): r["chunk_seconds"] for r in measured}
    assert result["worker_seconds"] > 0
    assert result["worker_seconds"] == pytest.approx(sum(chunks.values()))  # every chunk once, the pilot's left out
    stored = (tmp_path / "episodes.jsonl").read_text()
    again = run(cfg)  # a resume plays nothing, and still reports the workers' time of every stored episode
    assert again["worker_seconds"] == pytest.approx(result["worker_seconds"])
    assert (tmp_path / "episodes.jsonl").read_text() == stored


def test_ctrl_c_in_the_search_benchmark_keeps_the_stored_episodes_and_leaves_no_worker_running(tmp_path,
                                                                                             monkeypatch):
    """An interrupt between two chunks stops the workers at once: the queued chunks are cancelled, not played
    to the end; what was stored stays, and a rerun plays only what is missing."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import pytest

    from benchmarks import search
    from benchmarks.search import EpisodeLog, run_specs
    from benchmarks.search_config import SearchBenchConfig, problems

    futures = []

    class Recording(ProcessPoolExecutor):
        def submit(self, *args, **kwargs):
            futures.append(super().submit(*args, **kwargs))
            return futures[-1]

    monkeypatch.setattr(search, "ProcessPoolExecutor", Recording)
    cfg = SearchBenchConfig(task="chain3", n=4, out=str(tmp_path), workers=2, max_new_tokens=8)
    items = [(i, p.prompt) for i, p in enumerate(problems(cfg, "evaluation"))]
    specs = ["ensemble-greedy", "greedy-primary", "greedy-prior"]
    log = EpisodeLog(tmp_path / "episodes.jsonl")

    def interrupt(message):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_specs(cfg, log, "evaluation-judge-off", specs, items, progress=interrupt, chunk=1)
    assert not multiprocessing.active_children(), "a worker outlived the interrupt"
    assert any(f.cancelled() for f in futures), "the queued chunks were played instead of cancelled"
    stored = EpisodeLog(tmp_path / "episodes.jsonl")
    assert len(stored.done) == 1, "the first chunk's episode is stored, nothing more"
    run_specs(cfg, stored, "evaluation-judge-off", specs, items, chunk=4)
    assert len(EpisodeLog(tmp_path / "episodes.jsonl").done) == 12


def test_the_throughput_benchmark_runs_on_the_cpu_with_an_explicit_device_and_dtype(tmp_path):
    """The script a GPU machine runs unchanged: every batch size and stack gives a row, with batched expansion
    against the bare batched forwards of the same models."""
    from benchmarks import throughput

    result = throughput.main(["--device", "cpu", "--dtype", "float32", "--episodes", "2", "--batches", "1", "2",
                              "--stacks", "zoo", "--cpu-stacks", "chain5", "--cpu-problems", "2", "--cpu-batch", "2",
                              "--out", str(tmp_path)])
    assert [(r["stack"], r["batch"], r["episodes"]) for r in result["self_play"]] == [("zoo", 1, 2), ("zoo", 2, 2)]
    assert all(r["episodes_per_second"] > 0 and r["forwarded_tokens"] > 0 for r in result["self_play"])
    assert all(e["expand_ms"] > 0 and e["bare_forwards_ms"] > 0 for e in result["expansion"])
    assert result["device"] == "cpu" and result["dtype"] == "torch.float32"
    assert "| zoo | 2 |" in (tmp_path / "throughput.md").read_text()
    rows = {r["row"]: r for r in result["cpu_rows"]}  # sampling beside the search rows, shares of sampling's rate
    sampling = rows["teacher samples (24 per problem)"]["tokens_per_cpu_second"]
    assert len(rows) == 5 and all(r["share_of_sampling"] == pytest.approx(r["tokens_per_cpu_second"] / sampling)
                                  for r in rows.values())


def test_the_panel_benchmark_tunes_alpha_on_train_then_measures_the_three_rules_against_the_teachers(tmp_path):
    from benchmarks.panel import PanelBenchConfig, run

    result = run(PanelBenchConfig(n=4, tuning=(3000, 3003), alphas=(0.0, 0.2), out=str(tmp_path)))
    assert set(result["tuning"]) == {"0.0", "0.2"}  # the most accurate α on the tuning slice, ties to the smaller
    assert result["alpha"]["chosen"] == max((0.0, 0.2), key=lambda a: (result["tuning"][str(a)], -a))
    names = [r["row"] for r in result["rows"]]
    assert len(names) == 6 and names[3].startswith("ensemble greedy, mixture") and names[5] == "ensemble greedy, product"
    assert result["teacher_styles"] and set(result["targets"]) == {"mixture_within_3_points_of_best_teacher",
                                                                   "mixture_95_percent_in_one_style"}
    assert all(len(result["episodes"][rule]) == 4 for rule in ("mixture", "mean", "product"))
    assert "| ensemble greedy, mean |" in (tmp_path / "panel.md").read_text()


def test_the_learnability_check_runs_as_declared_and_prints_pass_or_fail_with_its_numbers(tmp_path, capsys):
    from benchmarks import learning

    result = learning.main(["--check", "--tiny", "--rounds", "1", "--answers", "16", "--out", str(tmp_path)])
    assert result["config"]["primary"] == "zoo:chain5-primary" and result["config"]["validation"] == [3500, 3510]
    assert result["trainer"]["replay"] == "on" and len(result["history"]) == 1
    assert result["history"][0]["answers"] == 16
    final, cfg = result["history"][-1], result["config"]  # passed exactly when both declared thresholds hold
    assert result["passed"] == (final["validation_accuracy"] >= cfg["share"] * result["best_teacher"]
                                and final["general_accuracy"] >= cfg["general_floor"])
    assert "learnability check" in capsys.readouterr().out and (tmp_path / "check.md").exists()


def test_the_held_out_measure_of_a_checked_primary_asks_for_the_check_first(tmp_path):
    from benchmarks import learning

    with pytest.raises(FileNotFoundError, match="run the check first"):
        learning.main(["--heldout-once", "--out", str(tmp_path)])


def test_a_budget_declared_from_a_rows_cost_admits_that_row():
    from benchmarks.search import budget_of

    for tokens, unit in [(295.05, 617.05), (783.7, 617.05), (617.05, 617.05), (1.0, 3.0)]:
        assert budget_of(tokens, unit) * unit >= tokens - 1e-9
    assert budget_of(617.05, 617.05) == 1.0


def test_every_agent_family_has_its_own_colour_in_the_search_plot():
    from matplotlib.colors import to_hex

    from benchmarks.search_report import FAMILY_COLOURS

    colours = [to_hex(c) for c in FAMILY_COLOURS.values()]
    assert len(set(colours)) == len(colours)


def test_the_engine_comparison_plays_the_workload_and_names_any_episode_that_changed(tmp_path, capsys):
    from benchmarks import engine_ab

    run = engine_ab.play(str(tmp_path / "a.json"), problems=2, batch=2)
    assert run["episodes"] and run["cpu_per_episode"] > 0
    changed = json.loads((tmp_path / "a.json").read_text())
    changed["episodes"][1]["tokens"] = changed["episodes"][1]["tokens"][:-1]
    changed["cpu_per_episode"] /= 2
    (tmp_path / "b.json").write_text(json.dumps(changed))
    assert engine_ab.compare(str(tmp_path / "a.json"), str(tmp_path / "a.json"))["differ"] == []
    result = engine_ab.compare(str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result["differ"] == [changed["episodes"][1]["prompt_index"]] and result["ratio"] == pytest.approx(0.5)
    assert "same episodes: 1 of 2" in capsys.readouterr().out
