"""Specification of ``python -m benchmarks.coverage``: declared before any arm runs, every arm under the same
per-round budget on one walk of the pool, coverage and pass@1 per round, paired statistics, a plot, a resume."""

import json

from benchmarks import coverage


def test_the_coverage_comparison_declares_budgets_runs_every_arm_under_them_and_resumes(tmp_path):
    out = tmp_path / "coverage"
    argv = ["--tiny", "--task", "chain3", "--seeds", "2", "--rounds", "2", "--prompts", "4", "--arms", "search",
            "greedy", "sampling", "--out", str(out)]
    summary = coverage.main(argv)
    declared = json.loads((out / "declared.json").read_text())
    budget = declared["budget"]
    assert budget["cpu_seconds_per_round"] > 0 and budget["weighted_tokens_per_round"] > 0
    assert declared["sampling"]["temperature"] in coverage.TEMPERATURES and declared["sampling"]["cap"] >= 1
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*-seed*.json")]
    assert sorted((r["arm"], r["seed"]) for r in runs) == sorted((a, s) for a in ("search", "greedy", "sampling")
                                                                  for s in (0, 1))
    for r in runs:
        for h, data in zip(r["history"], r["rounds"], strict=True):
            # a round ends at its budget or when its fixed prompts are played
            assert h["round_stopped"] or len(data["played"]) == 4
            assert len(data["played"]) <= 4
            assert set(data["covered"]) <= set(data["played"])
        walked = [p for data in r["rounds"] for p in data["played"]]
        assert len(walked) == len(set(walked))  # a pool walk never plays a prompt twice
    assert {"search - greedy", "search - sampling"} == set(summary["paired"])
    assert all(len(a["coverage"]) == 2 and len(a["pass1"]) == 3 for a in summary["arms"].values())
    text = (out / "coverage.md").read_text()
    assert (out / "coverage.png").stat().st_size > 0 and "coverage-first sampling" in text
    assert "(of the budget)" in text and "Where each arm's data came from" in text
    for arm, rows in summary["sources"].items():  # one stored episode per prompt played, by where its data came from
        assert sum(row["prompts"] for row in rows.values()) == sum(len(d["played"]) for r in runs if r["arm"] == arm
                                                                   for d in r["rounds"])
        assert rows["teachers"]["prompts"] > 0  # every arm is coverage-first: the teachers answer first
    for seed in (0, 1):  # every arm of a seed plays the same prompts, the next ones of the seed's walk
        first = [r["rounds"][0]["played"] for r in runs if r["seed"] == seed and not r["history"][0]["round_stopped"]]
        assert all(p == first[0] for p in first)
    saved = {p.name: p.stat().st_mtime for p in (out / "runs").glob("*.json")}
    coverage.main(argv)
    assert {p.name: p.stat().st_mtime for p in (out / "runs").glob("*.json")} == saved
