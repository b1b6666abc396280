"""The real learning run's driver (issue 37), on the zoo's models so that it runs anywhere: four arms a seed, the
controls matched round by round to the search's weighted tokens of every model, the probe every round, resumable."""

import json

import pytest

from agents.compute import weighted_tokens
from benchmarks.real_learning import ARMS, RealLearningConfig, run

TINY = {"iterations": 2, "prompts_per_iteration": 3, "repeats": 1, "lora": False, "max_new_tokens": 16,
        "eval_size": 10, "epochs": 1, "learning_rate": 2e-3, "validation_size": 10, "selfplay_batch": 2,
        "general_task": "reverse"}


def test_every_arm_of_every_seed_runs_matched_to_the_search_and_a_rerun_resumes(tmp_path):
    cfg = RealLearningConfig(task="chain3", seeds=2, search="mcts:2", loop=TINY, workers=1, pilot_prompts=2,
                             models={"teachers": ("zoo:teacher-qwen2", "zoo:teacher-llama"), "primary": "zoo:primary"},
                             out=str(tmp_path / "learning"))
    summary = run(cfg, progress=lambda _: None)
    runs = json.loads((tmp_path / "learning" / "learning.json").read_text())["runs"]
    assert sorted((r["arm"], r["seed"]) for r in runs) == sorted((a, s) for a in ARMS for s in range(2))
    for r in runs:  # the probe and the task after every round; each arm measured in its own process
        assert len(r["history"]) == 2 and all("general_accuracy" in h for h in r["history"])
        assert r["attempts"] == 1 and r["peak_memory_gb"] > 0.1  # a process with torch and models: over 100 MB
    for search in (r for r in runs if r["arm"] == "search"):
        params, ref = search["parameters"], search["reference_parameters"]
        for r in (r for r in runs if r["seed"] == search["seed"] and r["arm"] != "search"):
            if r["arm"] == "mixture-greedy":  # the panel without search: each round stops at the search's tokens,
                stored = [[weighted_tokens(e, params, ref) for e in h] for h in _rounds(tmp_path, r)]
                assert all(h["round_stopped"] for h in r["history"])
                assert r["config"]["replay_rows"] == 1  # replay as the search's rounds have it (3 prompts x 0.5)
                for i, (episodes, budget) in enumerate(zip(stored, search["weighted_tokens"], strict=True)):
                    assert sum(episodes[:-1]) < budget <= sum(episodes)  # the last stored episode crossed it
                    unstored = r["history"][i]["round_unstored"]["forwarded_by_model"]
                    assert r["weighted_tokens"][i] == pytest.approx(sum(episodes)
                                                                    + weighted_tokens(unstored, params, ref))
                    assert r["weighted_tokens"][i] <= budget + 4 * max(episodes)  # no pool prepared ahead of play
            else:
                spent = [h["weighted_tokens"] for h in r["history"]]
                assert all(s >= b > 0 for s, b in zip(spent, search["weighted_tokens"], strict=True))
    assert set(summary["paired"]) == {f"search - {a}" for a in ARMS[1:]}
    assert summary["targets"]["the search's probe within its start's interval"] == summary["probe"]["search"]["within"]
    assert (tmp_path / "learning" / "learning.png").stat().st_size > 0
    saved = {p.name: p.stat().st_mtime for p in (tmp_path / "learning" / "runs").glob("*.json")}
    run(cfg, progress=lambda _: None)
    assert {p.name: p.stat().st_mtime for p in (tmp_path / "learning" / "runs").glob("*.json")} == saved


def _rounds(tmp_path, r) -> list[list[dict]]:
    """The mixture arm's stored episodes, per round: each model's forwarded tokens."""
    lines = (tmp_path / "learning" / "runs" / r["name"] / "episodes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [[e["forwarded_by_model"] for e in records if e["iteration"] == i] for i in range(len(r["history"]))]


def test_a_config_declared_once_is_refused_under_another(tmp_path):
    from tokentree_env.errors import ConfigError

    cfg = RealLearningConfig(task="chain3", seeds=1, loop=TINY, workers=1, pilot_prompts=2,
                             models={"teachers": ("zoo:teacher-qwen2",), "primary": "zoo:primary"},
                             out=str(tmp_path / "learning"))
    from benchmarks.learning_arms import declare
    from benchmarks.real_learning import learning_config

    declare(learning_config(cfg))
    with pytest.raises(ConfigError, match="another configuration"):
        declare(learning_config(RealLearningConfig(**{**cfg.__dict__, "search": "mcts:4"})))
