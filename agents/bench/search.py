"""Search strength in evaluation mode: accuracy against total forwarded tokens, per agent.

Every agent plays the same held-out prompts of the default task on a fresh env (fresh trees; the
teachers' reference answers are charged to every agent). The search never sees the verifier; it
scores only the final answers. Budgeted agents are swept (MCTS simulations, best-of-N samples, beam
width); fixed-cost agents are points at their own cost. Writes JSON, a PNG of accuracy vs tokens and
a Markdown table, and checks the issue's comparison: at each budget, is MCTS more accurate than
best-of-N and beam at no more compute, and than every fixed-cost agent whose cost is within it?

Run: ``python -m benchmarks.search`` (``--n 20`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from agents.bench.config import SuiteConfig

FIXED = ("random", "greedy-primary", "greedy-prior", "ensemble-greedy", "best-reference")
SWEEPS = {"mcts": (2, 4, 8, 16), "mcts-gumbel": (4, 8), "mcts-design-prior": (8,), "best-of": (2, 4, 8),
          "beam": (1, 2, 3)}


def heldout_prompts(cfg: SuiteConfig) -> list[str]:
    """The first ``cfg.n`` held-out prompts of the suite's task."""
    from tokentree_env.tasks import load_task

    return [p.prompt for p in load_task(cfg.task).problems("heldout")][: cfg.n]


def env_kwargs(cfg: SuiteConfig, **extra) -> dict:
    """Env arguments for the suite's models and task, with ``extra`` on top."""
    return {"teachers": list(cfg.teachers), "primary": cfg.primary, "task": cfg.task} | extra


def ppo_agent(cfg: SuiteConfig, timesteps: int = 2048):
    """sb3-contrib MaskablePPO after a fixed training budget on the task's train split."""
    from sb3_contrib import MaskablePPO

    from agents.baselines import MaskablePPOAgent
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.env.sb3 import TokenTreeExtractor

    env = TokenTreeEnv(**env_kwargs(cfg))
    model = MaskablePPO("MultiInputPolicy", env, n_steps=256, batch_size=64, n_epochs=4, seed=cfg.seed, verbose=0,
                        policy_kwargs={"features_extractor_class": TokenTreeExtractor})
    model.learn(total_timesteps=timesteps)
    env.close()
    return MaskablePPOAgent(model)


def suite_search(cfg: SuiteConfig, progress) -> dict:
    """The suite's search part: every agent of ``cfg.search_agents`` in evaluation mode on held-out prompts."""
    from agents.evaluation import evaluate, make_agent

    prompts, rows = heldout_prompts(cfg), []
    for spec in cfg.search_agents:
        agent = ppo_agent(cfg) if spec == "maskable-ppo" else make_agent(spec, seed=cfg.seed)
        summary, _ = evaluate(agent, prompts, env_kwargs(cfg))
        rows.append(asdict(summary))
        progress(f"search: {spec} {summary.accuracy:.2f}")
    return {"prompts": len(prompts), "rows": rows}


def compare(rows: list[dict]) -> list[dict]:
    """For each MCTS point: the best accuracy any other agent reaches at no more forwarded tokens."""
    checks = []
    for m in (r for r in rows if r["agent"].startswith("mcts-") and "gumbel" not in r["agent"]
              and "design" not in r["agent"]):
        rivals = [r for r in rows if not r["agent"].startswith("mcts") and r["forwarded_tokens"] <= m["forwarded_tokens"]]
        best = max(rivals, key=lambda r: r["accuracy"], default=None)
        checks.append({"mcts": m["agent"], "mcts_accuracy": m["accuracy"], "mcts_tokens": m["forwarded_tokens"],
                       "best_rival": best["agent"] if best else None,
                       "rival_accuracy": best["accuracy"] if best else None,
                       "mcts_strictly_better": best is None or m["accuracy"] > best["accuracy"]})
    return checks


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    families: dict[str, list[dict]] = {}
    for r in rows:
        families.setdefault(r["agent"].rsplit("-", 1)[0] if r["agent"][-1].isdigit() else r["agent"], []).append(r)
    for name, pts in families.items():
        pts = sorted(pts, key=lambda r: r["forwarded_tokens"])
        xs, ys = [p["forwarded_tokens"] for p in pts], [p["accuracy"] for p in pts]
        err = [[max(0.0, p["accuracy"] - p["accuracy_low"]) for p in pts],
               [max(0.0, p["accuracy_high"] - p["accuracy"]) for p in pts]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name, linestyle="-" if len(pts) > 1 else "none")
    ax.set_xscale("log")
    ax.set_xlabel("total forwarded tokens per episode (all models)")
    ax.set_ylabel("held-out accuracy (95% CI)")
    ax.set_title("Search strength, evaluation mode (chain3, zoo)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="held-out prompts")
    parser.add_argument("--out", default="results/search")
    args = parser.parse_args(argv)
    import torch

    from agents.evaluation import evaluate, make_agent
    from tokentree_env.tasks import builtin_task

    torch.set_num_threads(1)
    prompts = [p.prompt for p in builtin_task("chain3").problems("heldout")[: args.n]]
    specs = [*FIXED, *(f"{name}:{b}" for name, budgets in SWEEPS.items() for b in budgets)]
    rows = []
    for spec in specs:
        summary, _ = evaluate(make_agent(spec), prompts)
        rows.append(asdict(summary))
        print(f"{summary.agent:22s} acc {summary.accuracy:.3f} [{summary.accuracy_low:.2f}, {summary.accuracy_high:.2f}]"
              f"  tokens/ep {summary.forwarded_tokens:7.0f}  {summary.seconds:6.1f}s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "search", "task": "chain3", "split": "heldout", "prompts": len(prompts), "rows": rows,
              "mcts_vs_rivals": compare(rows)}
    (out / "search.json").write_text(json.dumps(result, indent=1))
    plot(rows, out / "search.png")
    lines = ["| agent | accuracy | 95% CI | forwarded tokens / episode | model calls / episode |", "|---|---|---|---|---|"]
    lines += [f"| {r['agent']} | {r['accuracy']:.3f} | {r['accuracy_low']:.2f}-{r['accuracy_high']:.2f} | "
              f"{r['forwarded_tokens']:.0f} | {r['model_calls']:.0f} |" for r in sorted(rows, key=lambda r: r["forwarded_tokens"])]
    (out / "search.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for c in result["mcts_vs_rivals"]:
        print(c)
    print(f"wrote {out}/search.json, search.png, search.md")
    return result


if __name__ == "__main__":
    main()
