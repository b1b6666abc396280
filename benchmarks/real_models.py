"""``python -m benchmarks.real_models``: the two real open models on the real-language task, and the real stack's
speed ratios.

- Each model's greedy accuracy on the 200 held-out ``arith-words`` problems (target: 15-85 % each), with a 95 %
  Wilson interval; SmolLM2 answers through its chat template, Gemma (which has none) on the plain prompt.
- The judge (Gemma, ``yesno`` protocol: P(yes) / (P(yes) + P(no)) after a yes/no question): its ROC AUC on both
  models' answers, right against wrong.
- The speed ratios of the real stack (Gemma and SmolLM2 as teachers, SmolLM2 as the primary): a node's
  expansion against the bare forwards of the same models (:mod:`tokentree_benchmarks.expansion`), and greedy play
  through the env against ``generate`` (:mod:`tokentree_benchmarks.env_overhead`). Target: at most 1.1 each.

Needs the real models installed (README, "Real open models").
"""

from __future__ import annotations

import argparse

MODELS = ("pkg:smollm2-135m-instruct", "pkg:gemma3-270m")
JUDGE = "pkg:gemma3-270m"
PROTOCOLS = ("yesno", "fewshot", "chat", "likelihood")
FEWSHOT_PROBLEMS = 8
"""Train problems (the split's last ones, outside every AUC set) whose answers make the few-shot judge's examples."""


def play_answers(lms: dict, problems: list, max_new_tokens: int = 16) -> dict[str, list[str]]:
    """Each model's greedy answers, in the format it plays in (its chat template, when it has one)."""
    from tokentree_env.teachers import HFTeacher

    prompts = [p.prompt for p in problems]
    return {spec: HFTeacher(lm).answers(prompts, max_new_tokens=max_new_tokens) for spec, lm in lms.items()}


def judge_protocols(n_train: int = 100, n_heldout: int = 200) -> dict:
    """Every (judge model, protocol)'s ROC AUC on both models' answers, right against wrong: on ``n_train`` train
    problems (where the protocol is chosen) and on ``n_heldout`` held-out ones (where it is reported). The few-shot
    examples come from the train split's last problems, outside both sets."""
    from tokentree_env.judge import Judge
    from tokentree_env.models import load_model
    from tokentree_env.stats import auc_interval, roc_auc
    from tokentree_env.tasks import load_task

    task = load_task("arith-words")
    train, held = list(task.problems("train")), list(task.problems("heldout"))[:n_heldout]
    lms = {spec: load_model(spec) for spec in MODELS}
    shots_problems = train[-FEWSHOT_PROBLEMS:]
    shots = [(p.prompt, a, task.verify(p, a) >= 0.5) for spec, answers in play_answers(lms, shots_problems).items()
             for p, a in zip(shots_problems, answers, strict=True)]
    right, wrong = [s for s in shots if s[2]], [s for s in shots if not s[2]]
    examples = [x for pair in zip(right[:2], wrong[:2], strict=False) for x in pair]
    sets = {"train": train[:n_train], "heldout": held}
    answers = {name: play_answers(lms, problems) for name, problems in sets.items()}
    out: dict = {"examples": examples, "rows": []}
    for judge_spec in MODELS:
        for protocol in PROTOCOLS:
            if protocol == "chat" and not getattr(lms[judge_spec].tokenizer, "chat_template", None):
                continue
            judge = Judge(lms[judge_spec], protocol=protocol, examples=examples if protocol == "fewshot" else ())
            row = {"judge": judge_spec, "protocol": protocol}
            for name, problems in sets.items():
                pos, neg = [], []
                for spec in MODELS:
                    for p, a in zip(problems, answers[name][spec], strict=True):
                        (pos if task.verify(p, a) >= 0.5 else neg).append(judge.verdict(p.prompt, a))
                auc = roc_auc(pos, neg)
                row[name] = {"auc": auc, "interval": auc_interval(auc, len(pos), len(neg)), "right": len(pos),
                             "wrong": len(neg)}
            out["rows"].append(row)
    best = max(out["rows"], key=lambda r: r["train"]["auc"])
    out["chosen"] = {"judge": best["judge"], "protocol": best["protocol"], "train_auc": best["train"]["auc"],
                     "heldout_auc": best["heldout"]["auc"], "meets_0.65": best["heldout"]["auc"] >= 0.65}
    return out


def mixture(n: int = 200, max_new_tokens: int = 16) -> dict:
    """Ensemble greedy under the mixture panel on the real stack (Gemma and SmolLM2 as teachers, SmolLM2 the primary,
    judge off) on ``n`` held-out problems: accuracy and writer switches, beside each model's own greedy answers."""
    from agents.baselines import EnsembleGreedy
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.scoring.panel import writer_switches, writers
    from tokentree_env.stats import wilson
    from tokentree_env.tasks import load_task

    task = load_task("arith-words")
    problems = list(task.problems("heldout"))[:n]
    env = TokenTreeEnv(teachers=list(reversed(MODELS)), primary=MODELS[0], judge=None, task="arith-words",
                       evaluation=True, max_new_tokens=max_new_tokens)
    agent, rows, alone = EnsembleGreedy(), [], {name: [] for name in env.teacher_names}
    for p in problems:
        r = agent.run_episode(env, options={"prompt": p.prompt})
        rows.append((r.hard_reward, writer_switches(writers([s.teacher_logprobs for s in r.records]))))
        for name, path in env.trees[p.prompt].reference_paths.items():
            alone[name].append(task.verify(p, env.expander.decode(path)))
    env.close()
    acc = sum(x for x, _ in rows) / n
    out = {"ensemble_greedy_mixture": {"accuracy": acc, "interval": wilson(sum(x for x, _ in rows), n),
                                       "writer_switches": sum(w for _, w in rows) / n},
           "alone": {name: sum(v) / n for name, v in alone.items()}, "problems": n}
    return out


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
    from . import env_overhead, expansion

    exp = expansion.run("real", steps)
    env = env_overhead.run("real", prompts, 16, 1)
    return {"expansion_over_bare": exp["ratio_median"], "expand_ms": exp["expand_ms_median"],
            "bare_forwards_ms": exp["bare_forwards_ms_median"], "env_over_generate": env["ratio"],
            "env_ms_per_token": env["env_ms_per_token"], "generate_ms_per_token": env["generate_ms_per_token"],
            "token_mismatches": env["token_mismatches"]}


def markdown(result: dict) -> str:
    lines = []
    if "accuracy" in result:
        lines += ["| model | greedy accuracy on arith-words (200 held-out) | 95 % interval | in 15-85 % |", "|---|---|---|---|"]
        for spec, m in result["accuracy"]["models"].items():
            lines.append(f"| `{spec}` | {m['accuracy']:.3f} | {m['low']:.3f}-{m['high']:.3f} | {m['in_target_15_85']} |")
        j = result["accuracy"]["judge"]
        lines += ["", (f"Judge `{j['model']}` ({j['protocol']} protocol): ROC AUC {j['auc']:.3f} "
                  f"({j['interval'][0]:.3f}-{j['interval'][1]:.3f}) on {j['right_answers']} right and "
                  f"{j['wrong_answers']} wrong answers of both models."), ""]
    if "judge" in result:
        j = result["judge"]
        lines += ["| judge | protocol | train AUC | held-out AUC [95 % interval] |", "|---|---|---|---|"]
        for r in j["rows"]:
            h = r["heldout"]
            lines.append(f"| `{r['judge']}` | {r['protocol']} | {r['train']['auc']:.3f} | {h['auc']:.3f} "
                         f"[{h['interval'][0]:.3f}, {h['interval'][1]:.3f}] |")
        c = j["chosen"]
        lines += ["", (f"Chosen on train answers: `{c['judge']}` with `{c['protocol']}`: held-out AUC "
                  f"{c['heldout_auc']:.3f} ({'meets' if c['meets_0.65'] else 'misses'} the 0.65 aim)."), ""]
    if "mixture" in result:
        m = result["mixture"]
        e = m["ensemble_greedy_mixture"]
        lines += [f"Ensemble greedy under the mixture on the real stack ({m['problems']} held-out problems, judge off): "
                  f"{e['accuracy']:.3f} ({e['interval'][0]:.3f}-{e['interval'][1]:.3f}), "
                  f"{e['writer_switches']:.2f} writer switches per answer; each model alone: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in m["alone"].items()) + ".", ""]
    if "speed" in result:
        s = result["speed"]
        lines += ["| real stack | ratio | target |", "|---|---|---|",
                  (f"| expansion / bare forwards ({s['expand_ms']:.0f} vs {s['bare_forwards_ms']:.0f} ms a node) | "
                  f"{s['expansion_over_bare']:.3f} | <= 1.1 |"),
                  (f"| env greedy play / `generate` ({s['env_ms_per_token']:.0f} vs {s['generate_ms_per_token']:.0f} ms a "
                  f"token; {s['token_mismatches']} mismatches) | {s['env_over_generate']:.3f} | <= 1.1 |"), ""]
    if "learning" in result:
        from .real_learning import markdown as learning_markdown

        lines.append(learning_markdown(result["learning"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    import torch

    from agents.quiet import quiet_libraries

    from .report import write_outputs

    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_models", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="held-out problems")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed ratios")
    parser.add_argument("--judge", action="store_true", help="every judge protocol's AUC; choose one on train answers")
    parser.add_argument("--mixture", action="store_true", help="ensemble greedy under the mixture on the real stack")
    parser.add_argument("--learning", action="store_true",
                        help="the real learning run: LoRA SmolLM2, search against three controls, 3 seeds (6-8 h)")
    parser.add_argument("--out", default="results/real-models")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    quiet_libraries()
    result: dict = {}
    if not (args.judge or args.mixture or args.learning):
        result["accuracy"] = accuracies(args.n)
        if not args.no_speed:
            result["speed"] = speed()
    if args.judge:
        result["judge"] = judge_protocols(n_heldout=args.n)
    if args.mixture:
        result["mixture"] = mixture(args.n)
    if args.learning:
        from agents.training.stopping import sigterm_as_interrupt

        from .real_learning import RealLearningConfig
        from .real_learning import run as learning

        try:
            with sigterm_as_interrupt():  # SIGTERM unwinds like Ctrl-C: the self-play workers stop, not orphaned
                result["learning"] = learning(RealLearningConfig(out=f"{args.out}/learning"))
        except KeyboardInterrupt:
            print(f"stopped; finished iterations are kept under {args.out}/learning/runs. Resume with the same command.")
            raise SystemExit(130) from None
    name = "real_models" if "accuracy" in result else "real_models-" + "-".join(
        k for k in ("judge", "mixture", "learning") if k in result)
    write_outputs(args.out, name, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
