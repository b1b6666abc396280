"""The suite's ablations of the design's ideas, each with MCTS at a fixed budget: weightage updates on/off;
the prior (weightage × similarity mixed with the panel, vs uniform, vs the primary's probabilities);
wrong-direction children on/off; 1 vs 3 teachers; same- vs cross-tokenizer teacher."""

from __future__ import annotations

import time
from dataclasses import asdict

from .config import SuiteConfig
from .suite_search import env_kwargs, heldout_prompts

ABLATION_BUDGET = 4


def _ablation_runs(cfg: SuiteConfig) -> dict[str, list[tuple[str, str, dict]]]:
    """Ablation -> [(variant, agent spec, env kwargs)]."""
    s = ABLATION_BUDGET
    runs = {
        "teachers": [("3 teachers", f"mcts:{s}", env_kwargs(cfg)),
                     ("1 teacher", f"mcts:{s}", env_kwargs(cfg, teachers=[cfg.teachers[0]]))],
    }
    if cfg.quick or cfg.tiny:
        return runs
    runs["prior"] = [("weightage×similarity + panel", f"mcts:{s}", env_kwargs(cfg)),
                     ("weightage×similarity only", f"mcts-design-prior:{s}", env_kwargs(cfg)),
                     ("uniform", f"mcts-uniform-prior:{s}", env_kwargs(cfg)),
                     ("primary's probabilities", f"mcts-primary-prior:{s}", env_kwargs(cfg))]
    runs["wrong_children"] = [("with wrong-direction children", f"mcts:{s}", env_kwargs(cfg)),
                              ("without", f"mcts:{s}", env_kwargs(cfg, k_wrong=0))]
    runs["tokenizer"] = [("same tokenizer (pair-mistral-char)", f"mcts:{s}",
                          env_kwargs(cfg, teachers=["zoo:pair-mistral-char"])),
                         ("cross tokenizer (pair-mistral-bpe)", f"mcts:{s}",
                          env_kwargs(cfg, teachers=["zoo:pair-mistral-bpe"]))]
    return runs


def weightage_ablation(cfg: SuiteConfig, repeats: int = 3) -> list[dict]:
    """Weightage updates on vs off: each train-split prompt played ``repeats`` times in training mode
    with the design's prior alone (so the weightage is what steers the search); accuracy of the last
    play. Only this mode lets weightage act: evaluation mode freezes it by design."""
    from agents.evaluation import make_agent, summarise
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.tasks import load_task

    prompts = [p.prompt for p in load_task(cfg.task).problems("train")][: cfg.n // 2]
    rows = []
    for variant, update in (("weightage updates on", True), ("off", False)):
        env = TokenTreeEnv(**env_kwargs(cfg, update_weightage=update))
        agent, last, started = make_agent(f"mcts-design-prior:{ABLATION_BUDGET}", seed=cfg.seed), [], time.perf_counter()
        for prompt in prompts:
            for _ in range(repeats):
                result = agent.run_episode(env, options={"prompt": prompt})
            last.append(result)
        env.close()
        rows.append({"variant": variant, **asdict(summarise(agent.name, last, time.perf_counter() - started))})
    return rows


def ablations(cfg: SuiteConfig, progress) -> dict:
    from agents.evaluation import evaluate, make_agent

    prompts, out = heldout_prompts(cfg), {}
    for ablation, variants in _ablation_runs(cfg).items():
        out[ablation] = []
        for variant, spec, kwargs in variants:
            summary, _ = evaluate(make_agent(spec, seed=cfg.seed), prompts, kwargs)
            out[ablation].append({"variant": variant, **asdict(summary)})
            progress(f"ablation {ablation}: {variant} {summary.accuracy:.2f}")
    if not (cfg.quick or cfg.tiny):
        out["weightage"] = weightage_ablation(cfg)
        progress("ablation weightage")
    return out
