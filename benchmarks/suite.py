"""The benchmark suite: speed, search strength, ablations and learning, side by side, in one run.

``tokentree bench`` / ``python -m benchmarks`` runs it on the zoo and writes, under ``--out``
(``results/``): ``<name>.json`` (machine, versions, seeds, settings and every raw sample),
``<name>-search.png``, ``<name>-speed.png``, ``<name>-ablations.png`` and ``<name>.md``.

- **Speed** (ratios measured in this run; absolute times vary between machines): expansion vs the
  bare forwards it needs and forwarded tokens per generated token along a path (zoo and a
  benchmark-size stack, :mod:`benchmarks.expansion`); env greedy play vs ``generate``
  (:mod:`benchmarks.env_overhead`); cost per expansion vs the number of teachers and vs ``K``; MCTS
  simulations per second.
- **Search strength** in evaluation mode (the search never sees the verifier, weightage frozen,
  every agent on a fresh tree): accuracy with a 95 % Wilson interval over the held-out prompts
  against forwarded tokens per episode.
- **Ablations** of the design's ideas, each with MCTS at a fixed budget: weightage updates on/off;
  the prior (weightage × similarity mixed with the panel, vs uniform, vs the primary's
  probabilities); wrong-direction children on/off; 1 vs 3 teachers; same- vs cross-tokenizer teacher.
- **Learning** (full mode only): :mod:`benchmarks.learning`.

``--quick`` (under 5 minutes on 2 cores): the speed ratios on shorter paths, three agents (greedy on
the panel prior, best-of-N, MCTS) at two budgets, and one ablation (1 vs 3 teachers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from tokentree_env.zoo.catalog import DEFAULT_PRIMARY, DEFAULT_TEACHERS

PARTS = ("speed", "search", "ablations", "learning")


@dataclass
class SuiteConfig:
    """What the suite runs; ``quick`` shrinks every part to fit in under 5 minutes on 2 cores."""

    name: str = "bench"
    out: str = "results"
    quick: bool = False
    task: str = "chain3"
    teachers: tuple[str, ...] = DEFAULT_TEACHERS
    primary: str = DEFAULT_PRIMARY
    prompts: int | None = None  # held-out prompts per agent (default: 30 quick, 100 full)
    seed: int = 0
    learning_seeds: int = 3
    parts: tuple[str, ...] = PARTS
    tiny: bool = False  # a smoke run for the tests: every part on a handful of samples; not a measurement

    def size(self, full: int, quick: int, tiny: int) -> int:
        """A sample count for the configured mode."""
        return tiny if self.tiny else quick if self.quick else full

    @property
    def n(self) -> int:
        return self.prompts or self.size(100, 30, 3)

    @property
    def search_agents(self) -> tuple[str, ...]:
        if self.quick or self.tiny:
            return ("greedy-prior", "best-of:2", "best-of:4", "mcts:2", "mcts:4")
        return ("random", "greedy-primary", "greedy-prior", "ensemble-greedy", "best-reference", "best-of:2",
                "best-of:4", "best-of:8", "beam:1", "beam:2", "beam:3", "mcts:2", "mcts:4", "mcts:8", "mcts:16",
                "mcts-gumbel:4", "mcts-gumbel:8", "maskable-ppo")


# -- machine and versions ---------------------------------------------------------------------------
def machine() -> dict:
    """Where the numbers came from."""
    import gymnasium
    import numpy
    import torch
    import transformers
    import trl

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip() or None
    except OSError:
        commit = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                         "gymnasium": gymnasium.__version__, "numpy": numpy.__version__},
            "git_commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# -- speed -----------------------------------------------------------------------------------------
def _walk(expander, steps: int) -> dict:
    """Expand along one greedy path of ``steps`` tokens; seconds and forwarded tokens per step."""
    from benchmarks.expansion import PROMPT, total_forwarded

    tree = expander.new_tree(PROMPT, references=False)
    expander.expand(tree, [0])
    start, node, seconds = total_forwarded(expander), 0, []
    eos = expander.primary.tokenizer.eos_token_id
    for _ in range(steps):
        token = next(int(t) for t in tree.nodes[node].slate.tokens if t != eos)
        node = tree.child(node, token)
        begin = time.perf_counter()
        expander.expand(tree, [node])
        seconds.append(time.perf_counter() - begin)
    return {"ms_per_expansion": 1e3 * statistics.median(seconds),
            "forwarded_tokens_per_step": (total_forwarded(expander) - start) / steps}


def cost_curves(steps: int) -> dict:
    """Cost of one expansion vs the number of teachers (1..3) and vs the slate width K."""
    from benchmarks.expansion import make_stack
    from tokentree_env.tree.expander import Expander, ExpansionConfig

    teachers, primary = make_stack("zoo")
    by_teachers = {}
    for n in range(1, len(teachers) + 1):
        for t in [*teachers, primary]:
            t.store.clear()
        by_teachers[n] = _walk(Expander(teachers[:n], primary, primary.tokenizer, ExpansionConfig()), steps)
    by_k = {}
    for k in (4, 8, 16, 32):
        for t in [*teachers, primary]:
            t.store.clear()
        by_k[k] = _walk(Expander(teachers, primary, primary.tokenizer, ExpansionConfig(width=k)), steps)
    return {"steps": steps, "by_teachers": by_teachers, "by_k": by_k}


def simulations_per_second(cfg: SuiteConfig, simulations: int = 8) -> dict:
    from agents.evaluate import evaluate, make_agent

    prompts = _prompts(cfg)[: cfg.size(20, 5, 1)]
    summary, results = evaluate(make_agent(f"mcts:{simulations}"), prompts, _env_kwargs(cfg))
    steps = sum(len(r.records) for r in results)
    return {"simulations": simulations, "episodes": len(results), "steps": steps, "seconds": summary.seconds,
            "simulations_per_second": simulations * steps / summary.seconds}


def speed(cfg: SuiteConfig) -> dict:
    from benchmarks import env_overhead, expansion

    steps = cfg.size(100, 50, 8)
    out = {"expansion": [expansion.run(size, steps) for size in ("zoo", "benchmark")]}
    prompts, repeats = cfg.size(30, 10, 2), cfg.size(3, 1, 1)
    out["env_overhead"] = [env_overhead.run(size, prompts, 48, repeats) for size in ("zoo", "benchmark")]
    out["cost"] = cost_curves(cfg.size(30, 12, 3))
    out["mcts"] = simulations_per_second(cfg)
    out["targets"] = {
        "expansion_ratio_<=1.2_benchmark_size": _met(out["expansion"][1]["ratio_median"], 1.2),
        "env_vs_generate_<=1.3_zoo": _met(out["env_overhead"][0]["ratio"], 1.3),
        "env_vs_generate_<=1.3_benchmark_size": _met(out["env_overhead"][1]["ratio"], 1.3),
        "forwarded_tokens_per_step_flat": {
            "windows": [v["window"] for r in out["expansion"] for v in r["forwarded_tokens_per_generated_token"].values()],
            "met": all(_flat(r) for r in out["expansion"])},
        "revisit_calls_0": {"measured": sum(r["revisit_model_calls"] for r in out["expansion"]),
                            "met": all(r["revisit_model_calls"] == 0 for r in out["expansion"])},
    }
    return out


def _met(value: float, limit: float) -> dict:
    return {"measured": value, "limit": limit, "met": value <= limit}


def _flat(run: dict) -> bool:
    """Forwarded tokens per generated token over each window stay within 10 % of the first window."""
    windows = [v["window"] for v in run["forwarded_tokens_per_generated_token"].values()]
    return max(windows) <= 1.1 * windows[0]


# -- search and ablations ------------------------------------------------------------------------
def _prompts(cfg: SuiteConfig) -> list[str]:
    from tokentree_env.tasks import load_task

    return [p.prompt for p in load_task(cfg.task).problems("heldout")][: cfg.n]


def _env_kwargs(cfg: SuiteConfig, **extra) -> dict:
    return {"teachers": list(cfg.teachers), "primary": cfg.primary, "task": cfg.task} | extra


def _ppo_agent(cfg: SuiteConfig, timesteps: int = 2048):
    """sb3-contrib MaskablePPO after a fixed training budget on the task's train split."""
    from sb3_contrib import MaskablePPO

    from agents.baselines import MaskablePPOAgent
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.env.sb3 import TokenTreeExtractor

    env = TokenTreeEnv(**_env_kwargs(cfg))
    model = MaskablePPO("MultiInputPolicy", env, n_steps=256, batch_size=64, n_epochs=4, seed=cfg.seed, verbose=0,
                        policy_kwargs={"features_extractor_class": TokenTreeExtractor})
    model.learn(total_timesteps=timesteps)
    env.close()
    return MaskablePPOAgent(model)


def search(cfg: SuiteConfig, progress) -> dict:
    from agents.evaluate import evaluate, make_agent

    prompts, rows = _prompts(cfg), []
    for spec in cfg.search_agents:
        agent = _ppo_agent(cfg) if spec == "maskable-ppo" else make_agent(spec, seed=cfg.seed)
        summary, _ = evaluate(agent, prompts, _env_kwargs(cfg))
        rows.append(asdict(summary))
        progress(f"search: {spec} {summary.accuracy:.2f}")
    return {"prompts": len(prompts), "rows": rows}


ABLATION_BUDGET = 4


def _ablation_runs(cfg: SuiteConfig) -> dict[str, list[tuple[str, str, dict]]]:
    """Ablation -> [(variant, agent spec, env kwargs)]."""
    s = ABLATION_BUDGET
    runs = {
        "teachers": [("3 teachers", f"mcts:{s}", _env_kwargs(cfg)),
                     ("1 teacher", f"mcts:{s}", _env_kwargs(cfg, teachers=[cfg.teachers[0]]))],
    }
    if cfg.quick or cfg.tiny:
        return runs
    runs["prior"] = [("weightage×similarity + panel", f"mcts:{s}", _env_kwargs(cfg)),
                     ("weightage×similarity only", f"mcts-design-prior:{s}", _env_kwargs(cfg)),
                     ("uniform", f"mcts-uniform-prior:{s}", _env_kwargs(cfg)),
                     ("primary's probabilities", f"mcts-primary-prior:{s}", _env_kwargs(cfg))]
    runs["wrong_children"] = [("with wrong-direction children", f"mcts:{s}", _env_kwargs(cfg)),
                              ("without", f"mcts:{s}", _env_kwargs(cfg, k_wrong=0))]
    runs["tokenizer"] = [("same tokenizer (pair-mistral-char)", f"mcts:{s}",
                          _env_kwargs(cfg, teachers=["zoo:pair-mistral-char"])),
                         ("cross tokenizer (pair-mistral-bpe)", f"mcts:{s}",
                          _env_kwargs(cfg, teachers=["zoo:pair-mistral-bpe"]))]
    return runs


def weightage_ablation(cfg: SuiteConfig, repeats: int = 3) -> list[dict]:
    """Weightage updates on vs off: each train-split prompt played ``repeats`` times in training mode
    with the design's prior alone (so the weightage is what steers the search); accuracy of the last
    play. Only this mode lets weightage act: evaluation mode freezes it by design."""
    from agents.evaluate import make_agent, summarise
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import load_task

    prompts = [p.prompt for p in load_task(cfg.task).problems("train")][: cfg.n // 2]
    rows = []
    for variant, update in (("weightage updates on", True), ("off", False)):
        env = TokenTreeEnv(**_env_kwargs(cfg, update_weightage=update))
        agent, last, started = make_agent(f"mcts-design-prior:{ABLATION_BUDGET}", seed=cfg.seed), [], time.perf_counter()
        for prompt in prompts:
            for _ in range(repeats):
                result = agent.run_episode(env, options={"prompt": prompt})
            last.append(result)
        env.close()
        rows.append({"variant": variant, **asdict(summarise(agent.name, last, time.perf_counter() - started))})
    return rows


def ablations(cfg: SuiteConfig, progress) -> dict:
    from agents.evaluate import evaluate, make_agent

    prompts, out = _prompts(cfg), {}
    for ablation, variants in _ablation_runs(cfg).items():
        out[ablation] = []
        for variant, spec, env_kwargs in variants:
            summary, _ = evaluate(make_agent(spec, seed=cfg.seed), prompts, env_kwargs)
            out[ablation].append({"variant": variant, **asdict(summary)})
            progress(f"ablation {ablation}: {variant} {summary.accuracy:.2f}")
    if not (cfg.quick or cfg.tiny):
        out["weightage"] = weightage_ablation(cfg)
        progress("ablation weightage")
    return out


# -- plots and table -------------------------------------------------------------------------------
def _plots(result: dict, out: Path, name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "search" in result:
        from benchmarks.search import plot as search_plot

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
                  "| agent | accuracy | 95 % CI | forwarded tokens / episode | seconds |", "|---|---|---|---|---|"]
        lines += [f"| {r['agent']} | {r['accuracy']:.3f} | {r['accuracy_low']:.2f}-{r['accuracy_high']:.2f} | "
                  f"{r['forwarded_tokens']:.0f} | {r['seconds']:.1f} |"
                  for r in sorted(result["search"]["rows"], key=lambda r: r["forwarded_tokens"])] + [""]
    if "ablations" in result:
        lines += [f"## Ablations (MCTS, {ABLATION_BUDGET} simulations per step)", "",
                  "| ablation | variant | accuracy | 95 % CI | forwarded tokens / episode |", "|---|---|---|---|---|"]
        lines += [f"| {a} | {r['variant']} | {r['accuracy']:.3f} | {r['accuracy_low']:.2f}-{r['accuracy_high']:.2f} | "
                  f"{r['forwarded_tokens']:.0f} |" for a, rows in result["ablations"].items() for r in rows] + [""]
    if "learning" in result:
        lines += ["## Learning", "", Path(result["learning"]["table"]).read_text()]
    return "\n".join(lines) + "\n"


# -- the run ---------------------------------------------------------------------------------------
def run(cfg: SuiteConfig, console: Console | None = None) -> dict:
    """Run the configured parts; write JSON, plots and the Markdown table; return the result."""
    import torch

    torch.set_num_threads(1)
    console = console or Console()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [p for p in cfg.parts if not ((cfg.quick or cfg.tiny) and p == "learning")]
    result: dict = {"name": cfg.name, "config": asdict(cfg), "machine": machine(), "seconds": {}}
    with Progress(console=console) as bar:
        job = bar.add_task("benchmark suite", total=len(parts))

        def progress(message: str) -> None:
            bar.update(job, description=message)

        for part in parts:
            progress(part)
            began = time.perf_counter()
            if part == "speed":
                result["speed"] = speed(cfg)
            elif part == "search":
                result["search"] = search(cfg, progress)
            elif part == "ablations":
                result["ablations"] = ablations(cfg, progress)
            elif part == "learning":
                from benchmarks import learning

                learning.main(["--out", str(out / f"{cfg.name}-learning"), "--seeds", str(cfg.learning_seeds)])
                result["learning"] = {"folder": str(out / f"{cfg.name}-learning"),
                                      "table": str(out / f"{cfg.name}-learning" / "learning.md")}
            result["seconds"][part] = time.perf_counter() - began
            bar.advance(job)
    result["plots"] = _plots(result, out, cfg.name)
    (out / f"{cfg.name}.json").write_text(json.dumps(result, indent=1, default=str))
    (out / f"{cfg.name}.md").write_text(markdown(result))
    console.print(markdown(result))
    console.print(f"wrote {out}/{cfg.name}.json, {cfg.name}.md, " + ", ".join(result["plots"]))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's options (shared by ``tokentree bench`` and ``python -m benchmarks``)."""
    parser.add_argument("--quick", action="store_true", help="under 5 minutes on 2 cores")
    parser.add_argument("--name", default=None, help="results file stem (default: bench-quick / bench)")
    parser.add_argument("--out", default="results")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--task", default="chain3", help="built-in task name or a JSONL file")
    parser.add_argument("--teacher", dest="teachers", action="append", default=None,
                        help="a teacher (repeat for several; default: the zoo's three)")
    parser.add_argument("--primary", default=DEFAULT_PRIMARY)
    parser.add_argument("--prompts", type=int, default=None, help="held-out prompts per agent")
    parser.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    return SuiteConfig(name=args.name or ("bench-quick" if args.quick else "bench"), out=args.out, quick=args.quick,
                       task=args.task, teachers=tuple(args.teachers or DEFAULT_TEACHERS), primary=args.primary,
                       prompts=args.prompts, seed=args.seed, parts=tuple(args.parts))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(config_from_args(parser.parse_args(argv)))
