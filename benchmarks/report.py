"""The suite's report: its figures (PNG) and its Markdown table."""

from __future__ import annotations

from pathlib import Path

from .ablations import ABLATION_BUDGET


def plots(result: dict, out: Path, name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "search" in result:
        from .suite_search import plot as search_plot

        search_plot(result["search"]["rows"], out / f"{name}-search.png")
        written.append(f"{name}-search.png")
    if "speed" in result:
        cost = result["speed"]["cost"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for r in result["speed"]["expansion"]:
            per = r["forwarded_tokens_per_generated_token"]
            axes[0].plot([int(k) for k in per], [v["window"] for v in per.values()], marker="o", label=r["stack"])
        axes[0].set(xlabel="path length (tokens)", ylabel="forwarded tokens per generated token", ylim=(0, None),
                    title="no re-encoding: flat")
        axes[0].legend()
        xs = list(cost["by_teachers"])
        axes[1].plot(xs, [cost["by_teachers"][x]["ms_per_expansion"] for x in xs], marker="o")
        axes[1].set(xlabel="teachers", ylabel="ms per expansion", title="cost vs teachers")
        ks = list(cost["by_k"])
        axes[2].plot(ks, [cost["by_k"][k]["ms_per_expansion"] for k in ks], marker="o")
        axes[2].set(xlabel="K (children per node)", ylabel="ms per expansion", title="cost vs K")
        fig.tight_layout()
        fig.savefig(out / f"{name}-speed.png", dpi=110)
        plt.close(fig)
        written.append(f"{name}-speed.png")
    if "ablations" in result:
        groups = result["ablations"]
        fig, ax = plt.subplots(figsize=(max(6, 1.3 * sum(map(len, groups.values()))), 4))
        labels, x = [], 0
        for g, (ablation, rows) in enumerate(groups.items()):
            for r in rows:
                err = [[r["accuracy"] - r["accuracy_low"]], [r["accuracy_high"] - r["accuracy"]]]
                ax.bar(x, r["accuracy"], yerr=err, capsize=3, color=f"C{g}")
                labels.append(f"{ablation}\n{r['variant']}")
                x += 1
        ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=30, ha="right")
        ax.set(ylabel="held-out accuracy (95 % CI)", ylim=(0, 1.05), title=f"ablations (MCTS, {ABLATION_BUDGET} sims)")
        fig.tight_layout()
        fig.savefig(out / f"{name}-ablations.png", dpi=110)
        plt.close(fig)
        written.append(f"{name}-ablations.png")
    return written


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# {result['name']} ({'quick' if result['config']['quick'] else 'full'})", "",
             (f"{m['date']} · {m['platform']} · {m['cpus']} CPUs, torch threads {m['torch_threads']} · torch "
             f"{m['versions']['torch']}, transformers {m['versions']['transformers']} · commit {m['git_commit']}"),
             ""]
    if "speed" in result:
        s = result["speed"]
        lines += ["## Speed (ratios measured in this run)", "", "| measure | zoo | benchmark size | target |",
                  "|---|---|---|---|",
                  (f"| expansion / bare forwards (median) | {s['expansion'][0]['ratio_median']:.2f} | "
                  f"{s['expansion'][1]['ratio_median']:.2f} | <= 1.2 (benchmark size) |"),
                  (f"| env greedy play / generate | {s['env_overhead'][0]['ratio']:.2f} | "
                  f"{s['env_overhead'][1]['ratio']:.2f} | <= 1.3 |"),
                  "| forwarded tokens / generated token, per window | "
                  + " | ".join(" / ".join(f"{v['window']:.2f}" for v in r["forwarded_tokens_per_generated_token"].values())
                               for r in s["expansion"]) + " | flat |",
                  (f"| revisit model calls | {s['expansion'][0]['revisit_model_calls']} | "
                  f"{s['expansion'][1]['revisit_model_calls']} | 0 |"), "",
                  "| teachers | " + " | ".join(map(str, s["cost"]["by_teachers"])) + " |",
                  "|---" * (1 + len(s["cost"]["by_teachers"])) + "|",
                  "| ms / expansion | " + " | ".join(f"{v['ms_per_expansion']:.1f}" for v in s["cost"]["by_teachers"].values())
                  + " |", "",
                  "| K | " + " | ".join(map(str, s["cost"]["by_k"])) + " |", "|---" * (1 + len(s["cost"]["by_k"])) + "|",
                  "| ms / expansion | " + " | ".join(f"{v['ms_per_expansion']:.1f}" for v in s["cost"]["by_k"].values())
                  + " |", "",
                  (f"MCTS ({s['mcts']['simulations']} simulations per step): {s['mcts']['simulations_per_second']:.0f} "
                  "simulations per second."), ""]
        lines += ["| speed target | met |", "|---|---|"]
        lines += [f"| {k} | {'yes' if v['met'] else 'NO'} |" for k, v in s["targets"].items()] + [""]
    if "search" in result:
        lines += [f"## Search strength ({result['search']['prompts']} held-out prompts, evaluation mode)", "",
                  "| agent | judge | accuracy | 95 % CI | forwarded tokens / episode | seconds |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['agent']} | {'on' if r.get('judge', True) else 'off'} | {r['accuracy']:.3f} | "
                  f"{r['accuracy_low']:.2f}-{r['accuracy_high']:.2f} | {r['forwarded_tokens']:.0f} | {r['seconds']:.1f} |"
                  for r in sorted(result["search"]["rows"], key=lambda r: (not r.get("judge", True),
                                                                           r["forwarded_tokens"]))] + [""]
    if "ablations" in result:
        lines += [f"## Ablations (MCTS, {ABLATION_BUDGET} simulations per step)", "",
                  "| ablation | variant | accuracy | 95 % CI | forwarded tokens / episode |", "|---|---|---|---|---|"]
        lines += [f"| {a} | {r['variant']} | {r['accuracy']:.3f} | {r['accuracy_low']:.2f}-{r['accuracy_high']:.2f} | "
                  f"{r['forwarded_tokens']:.0f} |" for a, rows in result["ablations"].items() for r in rows] + [""]
    if "learning" in result:
        lines += ["## Learning", "", Path(result["learning"]["table"]).read_text()]
    return "\n".join(lines) + "\n"


def write_outputs(out: str | Path, name: str, result: dict, text: str) -> None:
    """Write ``name.json`` (every number) and ``name.md`` (the tables) under ``out``, and print the tables."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    (out / f"{name}.md").write_text(text)
    print(text)
