"""``python -m benchmarks.learning``: the learning benchmark run end to end (:mod:`tokentree_benchmarks.learning_arms` has the
headline's arms), with its other parts: every training signal on the task (one seed each, guarded by EWC and
replay), the ablations with learning measured, and the report (curves, paired differences, credit, targets)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .learning_arms import LearningConfig, headline, search_arm

SIGNAL_RUNS = {"sft": {}, "distill": {"signals": ("distill",)},
               "distill-improved": {"signals": ("distill",), "distill_target": "improved", "gumbel": True},
               "dpo": {"signals": ("dpo",)}, "grpo": {"signals": ("grpo",)}, "rloo": {"signals": ("rloo",)}}
ABLATIONS = {"reference": {}, "weightage off": {"update_weightage": False}, "no wrong children": {"k_wrong": 0},
             "1 teacher": "one-teacher", "design prior alone": {"teacher_mix": 0.0}, "product panel": {"panel": "product"}}
HEADLINE = ("search", "sft-greedy-cpu", "rft-cpu", "sft-greedy-tokens", "rft-tokens")


def signals(cfg: LearningConfig, names: tuple[str, ...] = tuple(SIGNAL_RUNS)) -> list[dict]:
    """Each training signal in the loop on the task, one seed, with the guards (EWC, auto-replay) on."""
    out = []
    for name in names:
        overrides = SIGNAL_RUNS[name]
        run = search_arm(cfg, 0, cfg.signal_loop | overrides, name=f"signal-{name}")
        out.append(run | {"arm": "signal", "signal": name})
    return out


def ablations(cfg: LearningConfig) -> list[dict]:
    """The design's ideas switched off one at a time, with the primary's accuracy after training (one seed)."""
    out = []
    for name, overrides in ABLATIONS.items():
        if overrides == "one-teacher":
            overrides = {"teachers": (cfg.train_kwargs()["teachers"][0],)}
        # the reference is the SFT signal run exactly (same config, same seed): run once, reported in both parts
        label = "signal-sft" if not overrides else f"ablation-{name.replace(' ', '-')}"
        run = search_arm(cfg, 0, cfg.signal_loop | overrides, name=label)
        out.append(run | {"arm": "ablation", "ablation": name})
    return out


# -- the report --------------------------------------------------------------------------------------------
def _curve(runs: list[dict]) -> list[dict]:
    from tokentree_env.stats import t_interval

    return [t_interval([r["baseline"]["task_accuracy"] for r in runs])] + [
        t_interval([r["history"][i]["task_accuracy"] for r in runs]) for i in range(len(runs[0]["history"]))]


def _solved(run: dict) -> list[tuple[int, int]]:
    """(episodes solved, episodes) of each iteration's self-play."""
    return [(round(h["mean_hard_reward"] * h["episodes"]), h["episodes"]) for h in run["history"] if "episodes" in h]


def _per_problem(runs: list[dict]) -> dict:
    """``{seed: {held-out problem index: score}}`` of an arm's final primaries (paired by seed and problem id)."""
    return {r["seed"]: dict(enumerate(r["history"][-1]["task_correct"])) for r in runs}


def hard_problem_accuracy(cfg: LearningConfig, runs: list[dict]) -> dict:
    """Each arm's final primary on the held-out problems no teacher's greedy answer solves."""
    from agents.training.measure import greedy_accuracy
    from tokentree_env.models import load_model
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    kwargs, task = cfg.train_kwargs(), load_task(cfg.task)
    held = list(task.problems("heldout"))[: runs[0]["config"]["eval_size"]]
    answers = {spec: HFTeacher(spec).answers([p.prompt for p in held], max_new_tokens=48) for spec in kwargs["teachers"]}
    hard = [p for i, p in enumerate(held) if all(task.verify(p, answers[t][i]) < 0.5 for t in answers)]
    out: dict = {"problems": len(hard), "arms": {}}
    for r in runs:
        out["arms"].setdefault(r["name"].rsplit("-seed", 1)[0], []).append(
            greedy_accuracy(load_model(r["final_primary"]), cfg.task, hard) if hard else float("nan"))
    return out


def credit(cfg: LearningConfig, runs: list[dict]) -> list[dict]:
    """Per seed and iteration: problems the search solved that no teacher's greedy answer, nor any RFT sample
    drawn in that iteration, got right."""
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    task = load_task(cfg.task)
    by_prompt = {p.prompt: p for p in task.problems("train")}
    teachers = [HFTeacher(spec) for spec in cfg.train_kwargs()["teachers"]]
    out = []
    for search in (r for r in runs if r["arm"] == "search" and r["name"].startswith("search-")):
        rft = next((r for r in runs if r["name"] == f"rft-cpu-seed{search['seed']}"), None)
        for i, prompts in enumerate(search["prompts"]):
            greedy_right = set()
            for teacher in teachers:
                answers = teacher.answers(prompts, max_new_tokens=48)
                greedy_right |= {p for p, a in zip(prompts, answers, strict=True) if task.verify(by_prompt[p], a) >= .5}
            sampled_right = set(rft["rft_right"][i]) if rft else set()
            only = set(search["solved"][i]) - greedy_right - sampled_right
            out.append({"seed": search["seed"], "iteration": i, "solved": len(search["solved"][i]),
                        "only_search": len(only), "teacher_greedy_right": len(greedy_right)})
    return out


def report(cfg: LearningConfig, runs: list[dict]) -> dict:
    """Summaries, paired differences, credit, targets; ``learning.json``, ``learning.png``, ``learning.md``."""
    from tokentree_env.stats import seeds_paired, t_interval

    from .config import machine
    from .learning_report import markdown, plot

    out = Path(cfg.out)
    summary: dict = {"task": cfg.task, "machine": machine(), "config": {"loop": cfg.loop, "seeds": cfg.seeds}}
    headline = [r for r in runs if r["name"].rsplit("-seed", 1)[0] in HEADLINE]
    if headline:
        arms: dict[str, list[dict]] = {}
        for r in headline:
            arms.setdefault(r["name"].rsplit("-seed", 1)[0], []).append(r)
        search = sorted(arms["search"], key=lambda r: r["seed"])
        best = (search[0].get("teachers") or {}).get("best")
        summary["best_teacher"] = best
        summary["arms"] = {name: {"task_accuracy": _curve(rs), "wall_seconds": t_interval([r["wall_seconds"] for r in rs]),
                                  "weighted_tokens": t_interval([sum(r.get("weighted_tokens") or [
                                      h.get("weighted_tokens") or 0 for h in r["history"]]) for r in rs]),
                                  "train_seconds": t_interval([sum(h.get("train_seconds", 0.0) for h in r["history"])
                                                               for r in rs]),
                                  "general_accuracy": t_interval([r["history"][-1]["general_accuracy"] for r in rs]),
                                  "generation_cpu_seconds": t_interval([sum(r.get("cpu_seconds") or [
                                      h.get("generation_cpu_seconds", 0.0) for h in r["history"]]) for r in rs]),
                                  "distinct_right": [r.get("distinct_right") or [h.get("distinct_right") for h in
                                                                                 r["history"]] for r in rs],
                                  "pass_at_k": {k: t_interval([r["pass_at_k"][k] for r in rs])
                                                for k in (rs[0].get("pass_at_k") or {})}}
                           for name, rs in arms.items()}
        summary["paired"] = {}
        for name, rs in arms.items():
            if name == "search":
                continue
            paired = seeds_paired(_per_problem(search), _per_problem(rs))
            summary["paired"][name] = {"bootstrap": {"difference": paired["difference"], **paired["bootstrap"]},
                                       "t_interval": paired["t"], "differences": paired["per_seed"],
                                       "seeds": paired["seeds"],
                                       "problems": paired["problems"], "search_better": paired["above"]}
        summary["weightage"] = [[h.get("weightage", {}) for h in r["history"]] for r in search]
        summary["credit"] = credit(cfg, headline)
        summary["hard_problems"] = hard_problem_accuracy(cfg, headline)
        gap = [(s["history"][-1]["task_accuracy"] - s["baseline"]["task_accuracy"])
               / max(1e-9, (best or 0) - s["baseline"]["task_accuracy"]) for s in search]
        summary["gap_closed"] = t_interval(gap)
        passes = {name: a["pass_at_k"].get("64", {}).get("mean") for name, a in summary["arms"].items()}
        summary["targets"] = {
            "search_beats_sft_greedy_at_equal_cpu": summary["paired"].get("sft-greedy-cpu", {}).get("search_better",
                                                                                                     False),
            "search_beats_rft_at_equal_cpu": summary["paired"].get("rft-cpu", {}).get("search_better", False),
            "search_pass64_at_least_the_controls": bool(passes.get("search") is not None and all(
                passes["search"] >= (passes.get(c) or 0.0) for c in ("sft-greedy-cpu", "rft-cpu"))),
            "stretch_search_above_best_teacher": bool(best is not None and summary["arms"]["search"]["task_accuracy"][-1]
                                                      ["mean"] > best),
            "main_job_on_task": bool(summary["gap_closed"]["mean"] >= 0.5
                                     and summary["arms"]["search"]["wall_seconds"]["mean"] <= 600)}
    summary["signals"] = {r["signal"]: {"task_accuracy": _curve([r]), "general_accuracy":
                          [r["baseline"]["general_accuracy"]] + [h["general_accuracy"] for h in r["history"]],
                          "replay": [h.get("replay") for h in r["history"]], "self_play_solved": _solved(r)}
                          for r in runs if r["arm"] == "signal"}
    summary["ablations"] = {r["ablation"]: {"task_accuracy_after": r["history"][-1]["task_accuracy"],
                                            "task_accuracy_before": r["baseline"]["task_accuracy"],
                                            "weightage": [h.get("weightage", {}) for h in r["history"]],
                                            "self_play_solved": _solved(r)}
                            for r in runs if r["arm"] == "ablation"}
    (out / "learning.json").write_text(json.dumps({"summary": summary, "runs": runs}, indent=1, default=str))
    plot(summary, out / "learning.png")
    (out / "learning.md").write_text(markdown(summary))
    return summary


def _check(args: argparse.Namespace) -> dict:
    from agents.quiet import quiet_libraries
    from tokentree_env.zoo.catalog import default_models

    from .learnability import CheckConfig, check

    quiet_libraries()
    style = f"-{args.style}" if args.style else ""
    cfg = CheckConfig(task=args.task, primary=args.primary or default_models(args.task)["primary"], rounds=args.rounds,
                      answers=args.answers, style=args.style,
                      out=args.out or f"results/learnability-{args.task}{style}")
    if args.tiny:
        cfg.general_size, cfg.validation = 10, (3500, 3510)
    return check(cfg)


def _heldout_once(args: argparse.Namespace) -> dict:
    """Held-out accuracy of a checked primary, read once after the check (the check itself never sees held-out)."""
    from .learnability import heldout_once

    style = f"-{args.style}" if args.style else ""
    out = Path(args.out or f"results/learnability-{args.task}{style}")
    trained = out / "trained-primary"
    if not trained.is_dir():
        raise FileNotFoundError(f"no trained primary at {trained}: run the check first (--check, same --out)")
    result = heldout_once(str(trained), args.task)
    (out / "heldout_once.json").write_text(json.dumps(result, indent=1))
    print(f"held-out: primary {result['primary']:.3f}; teachers "
          + ", ".join(f"{k} {v:.3f}" for k, v in result["teachers"].items()))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learning", description="Does search teach the primary "
                                     "better than the teachers' own answers, at equal data-generation compute?")
    parser.add_argument("--task", default="chain5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parts", nargs="+", default=["headline", "signals", "ablations"],
                        choices=["headline", "signals", "ablations"])
    parser.add_argument("--signals", nargs="+", default=list(SIGNAL_RUNS), choices=list(SIGNAL_RUNS),
                        help="the training signals the signals part runs (default: all)")
    parser.add_argument("--out", default=None, help="results folder (default: results/learning-TASK)")
    parser.add_argument("--tiny", action="store_true", help="a smoke run for the tests: not a measurement")
    parser.add_argument("--search", default=None, help="the search arm's spec (default: the best search of the search "
                        "benchmark's pilot, read from its declared.json)")
    check_args = parser.add_argument_group("the learnability check (--check): can the primary learn the task at all?")
    check_args.add_argument("--check", action="store_true", help="run the learnability check instead, print pass/fail")
    check_args.add_argument("--primary", default=None, help="the primary to check (default: the task's zoo primary)")
    check_args.add_argument("--rounds", type=int, default=3, help="training rounds")
    check_args.add_argument("--answers", type=int, default=2000, help="verified teacher answers per round")
    check_args.add_argument("--style", default=None, help="diagnostic: only answers in this style")
    check_args.add_argument("--heldout-once", action="store_true", help="measure the checked primary (OUT/trained-"
                            "primary) and the teachers once on 200 held-out problems; writes OUT/heldout_once.json")
    args = parser.parse_args(argv)
    if args.heldout_once:
        return _heldout_once(args)
    if args.check:
        return _check(args)
    cfg = LearningConfig(task=args.task, seeds=args.seeds, out=args.out or f"results/learning-{args.task}",
                         parts=tuple(args.parts), search=args.search, search_declared=f"results/search-{args.task}"
                         "/declared.json")
    if args.tiny:
        tiny = {"iterations": 2, "prompts_per_iteration": 3, "repeats": 2, "eval_size": 10, "max_new_tokens": 16,
                "epochs": 1, "validation_size": 10}
        cfg.loop, cfg.signal_loop, cfg.workers = dict(tiny), dict(tiny), 1
        cfg.pilot_prompts, cfg.pass_samples, cfg.pass_at = 1, 4, (1, 4)
    Path(cfg.out, "runs").mkdir(parents=True, exist_ok=True)
    from agents.training.stopping import sigterm_as_interrupt

    with sigterm_as_interrupt():  # SIGTERM unwinds like Ctrl-C, so the self-play workers are stopped, not orphaned
        runs = headline(cfg) if "headline" in cfg.parts else []
        runs += signals(cfg, tuple(args.signals)) if "signals" in cfg.parts else []
        runs += ablations(cfg) if "ablations" in cfg.parts else []
    return report(cfg, runs)


if __name__ == "__main__":
    import sys

    sys.exit(0 if main().get("passed", True) else 1)  # the learnability check (--check) exits 1 when it fails
