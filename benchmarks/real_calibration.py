"""``python -m benchmarks.real_calibration``: the real models on ``arith2-words`` before any search runs, on the
routes the learning run uses, and SmolLM2's start on the ``probe-words`` probe.

Rows (greedy, 24 new tokens, the task's verifier, a 95 % Wilson interval each):

- each real model as a teacher answers in the env: ``HFTeacher(spec).answers(prompts, max_new_tokens=24)``.
  SmolLM2 shares the primary's tokenizer in the run, so it reads the primary's format: its chat template, no
  system prompt; Gemma (no chat template) reads the bare prompt;
- SmolLM2 as the primary, greedy through the env's tree (``greedy-primary`` with both models as teachers under
  the mixture panel, judge off), last and on the first ``--env-n`` problems (it takes ~50 s a problem on 2 cores),
  with how often it agrees with SmolLM2's direct greedy, problem by problem;
- SmolLM2's direct greedy in its chat format (``agents.training.measure.greedy_results``: the route of the run's
  evaluation);
- for reference, SmolLM2 with the fewest-steps system prompt (a chat teacher beside a primary of another tokenizer;
  not a route of the run).

Target: each model's accuracy in its own format between 10 % and 60 % on the held-out split. The task's difficulty
is tuned on the train split (``--split train``) and the held-out split is measured once. The probe's target:
SmolLM2 at least 0.70 on its 500 held-out items (measured before the play through the tree; the outputs are written
then, and again at the end). Also reported: the longest reference answer in each model's tokens
(it must fit 24), the content space, and the held-out problems sharing a step with train (0 by construction;
``arith-words``: 189 of 200).
"""

from __future__ import annotations

import argparse
import time

SMOL, GEMMA = "pkg:smollm2-135m-instruct", "pkg:gemma3-270m"
TASK, PROBE = "arith2-words", "probe-words"
MAX_NEW_TOKENS = 24


def _row(route: str, results: list[float], seconds: float, problems: list | None = None) -> dict:
    """One measured route: its accuracy, Wilson interval, whether it is in the 10-60 % target, its wall time, and
    (given the problems) its accuracy on the one-step and the two-step problems apart."""
    from tokentree_env.stats import wilson

    n, right = len(results), sum(r >= 0.5 for r in results)
    low, high = wilson(right, n)
    row = {"route": route, "problems": n, "right": right, "accuracy": right / n, "low": low, "high": high,
           "in_target_10_60": 0.10 <= right / n <= 0.60, "seconds": round(seconds, 1)}
    if problems is not None:
        for steps in (1, 2):
            mine = [r >= 0.5 for r, p in zip(results, problems, strict=True) if len(p.content_key) == 2 * steps + 1]
            row[f"{steps}_step"] = [sum(mine), len(mine)]
    return row


def calibrate(split: str = "heldout", n: int = 200, env: bool = True, probe: bool = True,
              env_n: int | None = None, save=lambda out: None) -> dict:
    """Every route's accuracy on the first ``n`` problems of ``split`` (see the module docstring); the greedy play
    through the env's tree on the first ``env_n`` of them (all when None: it takes ~50 s a problem on 2 cores)."""
    from agents import evaluate, make_agent
    from agents.training.measure import greedy_results
    from tokentree_env.models import load_model
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import HFTeacher

    task = load_task(TASK)
    problems = list(task.problems("heldout"))[:n] if split == "heldout" else _like_heldout(task, n)
    prompts = [p.prompt for p in problems]
    lms = {spec: load_model(spec) for spec in (SMOL, GEMMA)}
    rows, answers = [], {}
    for spec, lm in lms.items():
        started = time.perf_counter()
        answers[spec] = HFTeacher(lm).answers(prompts, max_new_tokens=MAX_NEW_TOKENS)
        results = [task.verify(p, a) for p, a in zip(problems, answers[spec], strict=True)]
        rows.append(_row(f"{spec} as a teacher answers in the env (its own format)", results,
                         time.perf_counter() - started, problems))
    started = time.perf_counter()
    results = direct = greedy_results(lms[SMOL], task, problems, max_new_tokens=MAX_NEW_TOKENS)
    rows.append(_row(f"{SMOL} direct greedy in its chat format (the run's evaluation)", results,
                     time.perf_counter() - started, problems))
    started = time.perf_counter()
    system = HFTeacher(lms[SMOL])
    system.shares_primary_tokenizer = False  # reads its own format with the fewest-steps system prompt
    results = [task.verify(p, a) for p, a in zip(problems, system.answers(prompts, max_new_tokens=MAX_NEW_TOKENS),
                                                 strict=True)]
    rows.append(_row(f"{SMOL} with the fewest-steps system prompt (reference only)", results,
                     time.perf_counter() - started, problems))
    out = {"task": TASK, "split": split, "problems": len(problems), "max_new_tokens": MAX_NEW_TOKENS, "rows": rows,
           "facts": task_facts(lms), "examples": {spec: [[p.prompt, a] for p, a in zip(problems[:4], ans[:4],
                                                                                       strict=True)]
                                                   for spec, ans in answers.items()},
           "answers": answers}
    if probe:
        probe_task = load_task(PROBE)
        items = list(probe_task.problems("heldout"))
        started = time.perf_counter()
        out["probe"] = _row(f"{SMOL} direct greedy in its chat format on {PROBE}",
                            greedy_results(lms[SMOL], probe_task, items, max_new_tokens=MAX_NEW_TOKENS),
                            time.perf_counter() - started)
        out["probe"]["meets_0.70"] = out["probe"]["accuracy"] >= 0.70
    if env:
        save(out)  # the play through the tree is the slow part: what came before is kept whatever happens to it
        started = time.perf_counter()
        env_kwargs = {"teachers": [GEMMA, SMOL], "primary": SMOL, "judge": None, "task": TASK,
                      "max_new_tokens": MAX_NEW_TOKENS}
        some = problems[:env_n or len(problems)]
        _, episodes = evaluate(make_agent("greedy-primary"), [p.prompt for p in some], env_kwargs, batch=8)
        tree = [e.hard_reward for e in episodes]
        rows.append(_row(f"{SMOL} as the primary, greedy through the env's tree", tree,
                         time.perf_counter() - started, some))
        rows[-1]["agrees_with_direct_greedy"] = sum((a >= 0.5) == (b >= 0.5) for a, b in zip(tree, direct))
    return out


def _like_heldout(task, n: int) -> list:
    """``n`` train problems with as many one-step problems as the first ``n`` held-out ones have (as far as the train
    split has them: most one-step contents are held out), the rest two-step: tuning sees the held-out mix."""
    one = sum(len(p.content_key) == 3 for p in task.problems("heldout")[:n])
    train = list(task.problems("train"))
    ones = [p for p in train if len(p.content_key) == 3][:one]
    return ones + [p for p in train if len(p.content_key) == 5][:n - len(ones)]


def task_facts(lms: dict) -> dict:
    """The task's calibration facts: the longest reference answer in each model's tokens, the content space, and the
    held-out problems that share a step with train (``arith-words`` beside it)."""
    from tokentree_env.tasks import load_task
    from tokentree_env.tasks.word_problems import heldout_sharing_train, word_problem_facts, words_fact

    task = load_task(TASK)
    every = [*task.problems("train"), *task.problems("heldout")]
    longest = {spec: max(len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
                         for p in every for text in p.solutions.values()) for spec, lm in lms.items()}
    held = task.problems("heldout")
    return {"longest_reference_tokens": longest, "train": len(task.problems("train")), "heldout": len(held),
            "heldout_two_steps": sum(len(p.content_key) == 5 for p in held),
            "heldout_sharing_a_train_step": heldout_sharing_train(task, word_problem_facts),
            "arith_words_heldout_sharing_a_train_fact": heldout_sharing_train(load_task("arith-words"), words_fact)}


def _kind(row: dict, steps: int) -> str:
    right, n = row.get(f"{steps}_step", (0, 0))
    return f"{right}/{n}" if n else "-"


def markdown(result: dict) -> str:
    """The calibration table and its facts."""
    lines = [(f"| route ({result['problems']} {result['split']} `{result['task']}` problems, greedy, "
              f"{result['max_new_tokens']} new tokens) | accuracy | 95 % interval | in 10-60 % | one step | two steps "
              "| seconds |"), "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['route']} | {r['accuracy']:.3f} ({r['right']}/{r['problems']}) | {r['low']:.3f}-"
                     f"{r['high']:.3f} | {'yes' if r['in_target_10_60'] else 'no'} | {_kind(r, 1)} | {_kind(r, 2)} | "
                     f"{r['seconds']:.0f} |")
    lines += [f"\nThe play through the env's tree ({r['problems']} problems) agrees with SmolLM2's direct greedy on "
              f"{r['agrees_with_direct_greedy']} of them (right or wrong alike)." for r in result["rows"]
              if "agrees_with_direct_greedy" in r]
    f = result["facts"]
    lines += ["", ("Longest reference answer: " + ", ".join(f"{k} {v} tokens" for k, v in
                                                          f["longest_reference_tokens"].items())
                  + f" (of {result['max_new_tokens']}). Splits: {f['train']} train, {f['heldout']} held-out "
                  f"({f['heldout_two_steps']} with two steps). Held-out problems sharing a step with train: "
                  f"{f['heldout_sharing_a_train_step']} (`arith-words`: {f['arith_words_heldout_sharing_a_train_fact']}"
                  " of 200 share a fact).")]
    if "probe" in result:
        p = result["probe"]
        lines += ["", (f"Probe `{PROBE}` ({p['problems']} held-out items): SmolLM2 greedy in its chat format "
                      f"{p['accuracy']:.3f} ({p['low']:.3f}-{p['high']:.3f}), "
                      f"{'meets' if p['meets_0.70'] else 'misses'} the 0.70 start target; {p['seconds']:.0f} s.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, measure, write ``results/real-calibration/real_calibration[-train].{json,md}``."""
    import torch

    from agents.quiet import quiet_libraries

    from .report import write_outputs

    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("train", "heldout"), default="heldout",
                        help="tune on train (as many one-step problems as held-out, as far as train has them); "
                             "measure held-out once")
    parser.add_argument("--n", type=int, default=200, help="problems of the split")
    parser.add_argument("--no-env", action="store_true", help="skip the greedy play through the env's tree")
    parser.add_argument("--env-n", type=int, default=None,
                        help="play through the env's tree on the first N problems only (~50 s a problem on 2 cores)")
    parser.add_argument("--no-probe", action="store_true", help="skip the probe")
    parser.add_argument("--out", default="results/real-calibration")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    quiet_libraries()
    started = time.perf_counter()
    name = "real_calibration" + ("" if args.split == "heldout" else f"-{args.split}")

    def save(result: dict) -> None:
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        write_outputs(args.out, name, result, markdown(result) + f"\nWall time {result['wall_seconds'] / 60:.1f} min.\n")

    result = calibrate(args.split, args.n, env=not args.no_env, probe=not args.no_probe, env_n=args.env_n, save=save)
    save(result)
    return result


if __name__ == "__main__":
    main()
