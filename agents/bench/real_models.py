"""``python -m benchmarks.real_models``: the two real open models on the real-language task, and the real stack's
speed ratios.

- Each model's greedy accuracy on the 200 held-out ``arith-words`` problems (target: 15-85 % each), with a 95 %
  Wilson interval; SmolLM2 answers through its chat template, Gemma (which has none) on the plain prompt.
- The judge (Gemma, ``yesno`` protocol: P(yes) / (P(yes) + P(no)) after a yes/no question): its ROC AUC on both
  models' answers, right against wrong.
- The speed ratios of the real stack (Gemma and SmolLM2 as teachers, SmolLM2 as the primary): a node's
  expansion against the bare forwards of the same models (:mod:`agents.bench.expansion`), and greedy play
  through the env against ``generate`` (:mod:`agents.bench.env_overhead`). Target: at most 1.1 each.

Needs the real models installed (README, "Real open models").
"""

from __future__ import annotations

import argparse

MODELS = ("pkg:smollm2-135m-instruct", "pkg:gemma3-270m")
JUDGE = "pkg:gemma3-270m"


def accuracies(n: int = 200, max_new_tokens: int = 16) -> dict:
    """Each model's greedy answers and accuracy on ``n`` held-out problems; the judge's AUC on them."""
    from tokentree_env.judge import Judge
    from tokentree_env.models import load_model
    from tokentree_env.stats import auc_interval, roc_auc, wilson
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    task = load_task("arith-words")
    problems = list(task.problems("heldout"))[:n]
    prompts = [p.prompt for p in problems]
    lms = {spec: load_model(spec) for spec in MODELS}
    out: dict = {"task": "arith-words", "problems": len(problems), "models": {}}
    answers = {}
    for spec, lm in lms.items():
        answers[spec] = HFTeacher(lm).answers(prompts, max_new_tokens=max_new_tokens)
        right = [task.verify(p, a) >= 0.5 for p, a in zip(problems, answers[spec], strict=True)]
        low, high = wilson(sum(right), len(right))
        out["models"][spec] = {"accuracy": sum(right) / len(right), "low": low, "high": high,
                               "in_target_15_85": 0.15 <= sum(right) / len(right) <= 0.85,
                               "examples": [[p.prompt, a] for p, a in zip(problems[:3], answers[spec][:3], strict=True)]}
    judge = Judge(lms[JUDGE], protocol="yesno")
    pos, neg = [], []
    for spec in MODELS:
        for problem, answer, verdict in zip(problems, answers[spec], judge.verdicts(prompts, answers[spec]), strict=True):
            (pos if task.verify(problem, answer) >= 0.5 else neg).append(verdict)
    auc = roc_auc(pos, neg)
    out["judge"] = {"model": JUDGE, "protocol": "yesno", "auc": auc, "interval": auc_interval(auc, len(pos), len(neg)),
                    "right_answers": len(pos), "wrong_answers": len(neg)}
    return out


def speed(prompts: int = 5, steps: int = 24) -> dict:
    """The real stack's two ratios (expansion / bare forwards; env greedy play / ``generate``)."""
    from agents.bench import env_overhead, expansion

    exp = expansion.run("real", steps)
    env = env_overhead.run("real", prompts, 16, 1)
    return {"expansion_over_bare": exp["ratio_median"], "expand_ms": exp["expand_ms_median"],
            "bare_forwards_ms": exp["bare_forwards_ms_median"], "env_over_generate": env["ratio"],
            "env_ms_per_token": env["env_ms_per_token"], "generate_ms_per_token": env["generate_ms_per_token"],
            "token_mismatches": env["token_mismatches"]}


def markdown(result: dict) -> str:
    lines = ["| model | greedy accuracy on arith-words (200 held-out) | 95 % interval | in 15-85 % |", "|---|---|---|---|"]
    for spec, m in result["accuracy"]["models"].items():
        lines.append(f"| `{spec}` | {m['accuracy']:.3f} | {m['low']:.3f}-{m['high']:.3f} | {m['in_target_15_85']} |")
    j = result["accuracy"]["judge"]
    lines += ["", f"Judge `{j['model']}` ({j['protocol']} protocol): ROC AUC {j['auc']:.3f} "
              f"({j['interval'][0]:.3f}-{j['interval'][1]:.3f}) on {j['right_answers']} right and {j['wrong_answers']} "
              "wrong answers of both models."]
    if "speed" in result:
        s = result["speed"]
        lines += ["", "| real stack | ratio | target |", "|---|---|---|",
                  f"| expansion / bare forwards ({s['expand_ms']:.0f} vs {s['bare_forwards_ms']:.0f} ms a node) | "
                  f"{s['expansion_over_bare']:.3f} | <= 1.1 |",
                  f"| env greedy play / `generate` ({s['env_ms_per_token']:.0f} vs {s['generate_ms_per_token']:.0f} ms a "
                  f"token; {s['token_mismatches']} mismatches) | {s['env_over_generate']:.3f} | <= 1.1 |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    import torch

    from agents.bench.report import write_outputs
    from agents.quiet import quiet_libraries

    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_models", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="held-out problems")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed ratios")
    parser.add_argument("--out", default="results/real-models")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    quiet_libraries()
    result = {"accuracy": accuracies(args.n)}
    if not args.no_speed:
        result["speed"] = speed()
    write_outputs(args.out, "real_models", result, markdown(result))
    return result
