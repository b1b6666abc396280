"""Any agent's episodes in lockstep: many episodes advance together, and each round's model work is one batched
``prefetch`` (one padded forward per model), whatever agent or prompt it serves.

- MCTS agents run through the one search driver (:func:`agents.search.lockstep.play_lockstep`).
- Planners (:class:`~agents.base.PlanningAgent`) first plan side by side: every round, each episode's step generator
  yields the transitions it wants simulated, all of them are prefetched together, then simulated.
- Then every episode plays its moves (a planner's plan, or ``act`` for step-by-step agents), one ``advance`` per
  episode per round, again prefetched together.

Each slot's agent is reseeded per episode by ``(seed, iteration, prompt index, repeat)`` where it can be (as
self-play seeds its searches), so an episode does not depend on the batch it was played in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict

from agents.base import PRIOR, Agent, EpisodeResult, PlanningAgent, StepRecord, _chosen_logprobs, features


def play_many(env, agents: Sequence[Agent], items: Sequence[tuple[int, str]], *, seed: int = 0,
              iteration: int = 0, repeat: int = 0) -> Iterator[dict]:
    """Episodes of ``items`` (prompt index, prompt), ``len(agents)`` at a time, slot ``k`` played by ``agents[k]``;
    yields one record per finished episode (the fields of :class:`~agents.base.EpisodeResult` and
    ``prompt_index``), in the order they finish."""
    from agents.search import MCTSAgent
    from agents.search.lockstep import play_lockstep

    prompts = [p for _, p in items]
    if len(set(prompts)) != len(prompts):
        from tokentree_env.errors import ConfigError

        raise ConfigError("play_many plays each prompt once: the items hold a prompt twice (an episode's costs are "
                          "kept per prompt while it runs); play repeats one after another instead")
    if all(isinstance(a, MCTSAgent) for a in agents):
        yield from play_lockstep(env, agents, [(i, p, [0]) for i, p in items], seed=seed, iteration=iteration)
        return
    queue = list(items)
    while queue:
        batch, queue = queue[: len(agents)], queue[len(agents):]
        yield from _play_batch(env, agents[: len(batch)], batch, seed, iteration)


def _play_batch(env, agents: Sequence[Agent], batch: Sequence[tuple[int, str]], seed: int, iteration: int):
    slots = []
    for agent, (index, prompt) in zip(agents, batch, strict=True):
        if hasattr(agent, "reseed"):
            agent.reseed([seed, iteration, index, 0])
        state, obs, info = env.begin(prompt)
        if not isinstance(agent, PlanningAgent):  # a planner plans below, beside the others
            env.set_state(state)
            agent.begin(env, obs, info)
        slots.append({"agent": agent, "index": index, "state": state, "obs": obs, "info": info, "records": [],
                      "total": 0.0, "started": time.perf_counter()})
    _plan_together(env, [s for s in slots if isinstance(s["agent"], PlanningAgent)])
    live = list(slots)
    while live:
        actions = []
        for s in live:
            env.set_state(s["state"])  # an agent that reads the env's state reads its own episode's
            action = int(s["agent"].act(env, s["obs"], s["info"]))
            mask = s["obs"]["action_mask"] == 1
            s["records"].append(StepRecord(
                candidates=s["obs"]["candidates"][mask].tolist(), directions=list(s["info"]["directions"]),
                proposed_by=[p["proposed_by"] for p in s["info"]["provenance"]],
                prior=features(s["obs"])[mask, PRIOR].tolist(), chosen=action, reward=0.0,
                panel_weights=list(s["info"].get("panel", {}).get("weights", [])),
                teacher_logprobs=_chosen_logprobs(s["info"], action)))
            actions.append(action)
        env.prefetch([s["state"] for s in live], actions)
        still = []
        for s, action in zip(live, actions, strict=True):
            s["state"], s["obs"], reward, terminated, truncated, s["info"] = env.advance(s["state"], action)
            s["records"][-1].reward = float(reward)
            s["total"] += reward
            if terminated or truncated:
                yield _record(env, s)
            else:
                still.append(s)
        live = still


def _plan_together(env, slots: list[dict]) -> None:
    """Run the planners' step generators side by side: each round, every request of every planner in one
    ``prefetch``; each planner's plan is set on its agent (``act`` then plays it)."""
    running = []
    for s in slots:
        steps = s["agent"].plan_steps(env, s["state"], s["obs"])
        try:
            running.append((s, steps, next(steps)))
        except StopIteration as done:
            s["agent"]._plan = list(done.value)
    while running:
        requests = [r for _, _, reqs in running for r in reqs]
        if requests:
            env.prefetch([state for state, _ in requests], [action for _, action in requests])
        following = []
        for s, steps, reqs in running:
            try:
                following.append((s, steps, steps.send([env.simulate(state, a) for state, a in reqs])))
            except StopIteration as done:
                s["agent"]._plan = list(done.value)
        running = following


def _record(env, slot: dict) -> dict:
    state, info = slot["state"], slot["info"]
    tree, cost = env.trees[state.prompt], info["episode_cost"]
    return asdict(EpisodeResult(
        agent=slot["agent"].name, prompt=state.prompt, completion=info["text"], hard_reward=env.hard_reward(state),
        episode_return=float(slot["total"]), reward_terms=info["reward_terms"], terminal_reason=info["terminal_reason"],
        steps=len(slot["records"]), forwarded_tokens=cost["forwarded_tokens"], model_calls=cost["forward_calls"],
        generated_tokens=cost["generated_tokens"], seconds=time.perf_counter() - slot["started"],
        tokens=list(tree.path_tokens(state.node)), prompt_ids=list(tree.nodes[0].ids), records=slot["records"],
        weightage_update=dict(info.get("weightage_update") or {}),
        forwarded_by_model=dict(info.get("episode_cost_by_model") or {}))) | {"prompt_index": slot["index"]}


__all__ = ["play_many"]
