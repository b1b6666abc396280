"""The suite's search part: agents in evaluation mode on held-out prompts, each with the judge on and off,
the strong baselines in every table (ensemble greedy, the best reference, the majority vote, best-of-N);
and the accuracy-vs-forwarded-tokens plot the search benchmark shares."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .config import SuiteConfig


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
    """The suite's search part: every agent of ``cfg.search_agents`` in evaluation mode on held-out prompts,
    with the judge on and with it off (a ``judge off`` row has ``judge: false``)."""
    from agents.evaluation import evaluate, make_agent

    prompts, rows = heldout_prompts(cfg), []
    for judge in (True, False):
        for spec in cfg.search_agents:
            if spec.endswith("-judge") and not judge:
                continue  # a judge-valued search needs the judge
            agent = ppo_agent(cfg) if spec == "maskable-ppo" else make_agent(spec, seed=cfg.seed)
            summary, _ = evaluate(agent, prompts, env_kwargs(cfg, **({} if judge else {"judge": None})))
            rows.append(asdict(summary) | {"judge": judge})
            progress(f"search: {spec} (judge {'on' if judge else 'off'}) {summary.accuracy:.2f}")
    return {"prompts": len(prompts), "rows": rows}


def plot(rows: list[dict], path: Path, title: str = "Search strength, evaluation mode") -> None:
    """Accuracy (95 % interval) against forwarded tokens per episode, one line per agent family; judge-off rows
    dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    families: dict[tuple[str, bool], list[dict]] = {}
    for r in rows:
        family = r["agent"].rsplit("-", 1)[0] if r["agent"][-1].isdigit() else r["agent"]
        families.setdefault((family, r.get("judge", True)), []).append(r)
    for (name, judge), pts in families.items():
        pts = sorted(pts, key=lambda r: r["forwarded_tokens"])
        xs, ys = [p["forwarded_tokens"] for p in pts], [p["accuracy"] for p in pts]
        err = [[max(0.0, p["accuracy"] - p["accuracy_low"]) for p in pts],
               [max(0.0, p["accuracy_high"] - p["accuracy"]) for p in pts]]
        ax.errorbar(xs, ys, yerr=err, marker="o" if judge else "s", capsize=3,
                    label=name + ("" if judge else " (judge off)"),
                    linestyle=("-" if judge else "--") if len(pts) > 1 else "none")
    ax.set_xscale("log")
    ax.set_xlabel("total forwarded tokens per episode (all models)")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title(title)
    ax.legend(fontsize=6, loc="best", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
