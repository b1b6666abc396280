"""Leaf-value sources of the search benchmark: the value head fitted on self-play returns, and every source's
training size and held-out error.

The head is fitted on the returns-to-go of MCTS self-play episodes on train-split problems (the verifier in
their returns, as a value network learns from game outcomes). Each source is then scored on held-out states,
under the mixture panel: those the best reference's and ensemble greedy's (the mixture's) episodes pass through on
held-out problems, labelled afterwards by whether that episode's answer was right (the verifier reads only the
finished answers, never the search). Both agents are right on about a third of the ``chain5`` problems and choose
without the judge, the head or a rollout, so the states carry both labels and favour no source.
For every source: its training examples, and its ROC AUC at telling states of episodes whose answer is
right from those of episodes whose answer is wrong; for the head also its mean squared error on held-out returns-to-go.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HELD_OUT_STATES = 25  # held-out problems per agent whose episodes give the scored states
HELD_OUT_AGENTS = ("best-reference", "ensemble-greedy")  # the agents that play them (``make_agent`` specs)


def fit_value_head(cfg, declared: dict, out: Path, progress=None) -> dict:
    """Fit (or load, when resuming) the value head; measure every leaf source on held-out states."""
    import json

    path, summary_path = out / "value_head.pt", out / "value_sources.json"
    if path.exists() and summary_path.exists():
        return json.loads(summary_path.read_text())
    import torch

    from agents.search import MCTSAgent, MCTSConfig, ValueHead, collect_returns
    from tokentree_env.env import TokenTreeEnv

    from .search_config import env_kwargs, problems

    torch.set_num_threads(1)
    if progress:
        progress("value head: self-play episodes on train problems")
    env = TokenTreeEnv(**env_kwargs(cfg, "self-play"))
    prompts = [p.prompt for p in problems(cfg, "value-head")]
    env.prepare(prompts)
    simulations = declared["settings"].get("self-play|mcts", {}).get("2.0") or 2
    agent = MCTSAgent(MCTSConfig(num_simulations=simulations, dirichlet_fraction=0.25), seed=cfg.seed)
    xs, ys = collect_returns(env, agent, prompts)
    env.close()
    head = ValueHead(xs.shape[1], seed=cfg.seed)
    losses = head.fit(xs, ys)
    head.save(path)
    if progress:
        progress("value head: held-out error of every leaf source")
    sources = held_out_errors(cfg, head)
    result = {"path": str(path), "training_examples": len(ys), "training_problems": len(prompts),
              "final_training_loss": losses[-1], "sources": sources}
    summary_path.write_text(json.dumps(result, indent=1))
    return result


def held_out_errors(cfg, head) -> dict:
    """Each leaf source's training size and held-out error on the states of the best reference's and ensemble
    greedy's held-out episodes."""
    from agents.evaluation import make_agent
    from agents.search import MCTS, MCTSConfig
    from agents.search.value import value_inputs
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.stats import roc_auc

    from .search_config import env_kwargs, problems

    # a training-mode env whose episode rewards include the verifier (the head's target); planners' rollouts
    # inside it never see the verifier (planner_verifier is off)
    env = TokenTreeEnv(**(env_kwargs(cfg, "evaluation-judge-on") | {"evaluation": False, "split": "heldout"}))
    rollout, judge = (MCTS(MCTSConfig(leaf_value=s)) for s in ("rollout", "judge"))
    rows, right = [], 0
    held = problems(cfg, "evaluation")[:HELD_OUT_STATES]
    for problem, spec in ((p, a) for a in HELD_OUT_AGENTS for p in held):
        obs, info = env.reset(options={"prompt": problem.prompt})
        agent, states, rewards, done = make_agent(spec), [], [], False
        agent.begin(env, obs, info)
        while not done:
            state = env.get_state()
            states.append((value_inputs(obs), rollout.leaf_value(env, state, obs), judge.leaf_value(env, state, obs)))
            obs, reward, terminated, truncated, info = env.step(agent.act(env, obs, info))
            rewards.append(reward)
            done = terminated or truncated
        correct = env.hard_reward(env.get_state())
        right += int(correct >= 0.5)
        to_go = np.cumsum(rewards[::-1])[::-1]
        rows += [(x, r, j, correct, g) for (x, r, j), g in zip(states, to_go, strict=True)]
    env.close()
    inputs = np.stack([r[0] for r in rows])
    labels = np.asarray([r[3] for r in rows]) >= 0.5
    predicted = head.predict(inputs)
    targets = np.asarray([r[4] for r in rows])

    def auc(values) -> float:
        values = np.asarray(values)
        return roc_auc(values[labels].tolist(), values[~labels].tolist())

    return {"held_out_states": len(rows), "held_out_problems": HELD_OUT_STATES, "held_out_agents": HELD_OUT_AGENTS,
            "held_out_right": right, "right_states": int(labels.sum()),
            "rollout": {"training_examples": 0, "auc": auc([r[1] for r in rows])},
            "judge": {"training_examples": "the zoo judge's own training", "auc": auc([r[2] for r in rows])},
            "value-head": {"auc": auc(predicted), "mse": float(np.mean((predicted - targets) ** 2))}}
