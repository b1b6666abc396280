"""Any agent's episodes in lockstep: many episodes advance together, and each round's model work is one batched
``prefetch`` (one padded forward per model), whatever agent or prompt it serves.

- MCTS agents run through the one search driver (:func:`agents.search.lockstep.play_lockstep`).
- Planners (:class:`~agents.base.PlanningAgent`) first plan side by side: every round, each episode's step generator
  yields the transitions it wants simulated, all of them are prefetched together, then simulated.
- Then every episode plays its moves (a planner's plan, or ``act`` for step-by-step agents), one ``advance`` per
  episode per round, again prefetched together.

Every episode's agent is reseeded by ``(seed, iteration, prompt index, repeat)`` (where it has a random stream), so
an episode depends neither on the batch it was played in nor on the episodes before it, and the repeats of a prompt
differ. A prompt's repeats are played one after another (the weightage rule compares an episode with the previous
one on its prompt). Records come from the one builder (:mod:`agents.records`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from agents.base import Agent, PlanningAgent
from agents.records import episode_result, step_record


def play_many(env, agents: Sequence[Agent], items: Sequence[tuple[int, str]], *, seed: int = 0,
              iteration: int = 0, repeats: Sequence[int] = (0,)) -> Iterator[dict]:
    """Episodes of ``items`` (prompt index, prompt), each played once per repeat in ``repeats``, ``len(agents)`` at a
    time, slot ``k`` played by ``agents[k]``; yields one record per finished episode (the fields of
    :class:`~agents.records.EpisodeResult`, and ``iteration``, ``prompt_index``, ``repeat``), in the order they
    finish."""
    from agents.search import MCTSAgent
    from agents.search.lockstep import play_lockstep

    prompts = [p for _, p in items]
    if len(set(prompts)) != len(prompts):
        from tokentree_env.errors import ConfigError

        raise ConfigError("play_many plays each prompt once per repeat: the items hold a prompt twice (an episode's "
                          "costs are kept per prompt while it runs); ask for more repeats instead")
    if all(isinstance(a, MCTSAgent) for a in agents):
        yield from play_lockstep(env, agents, [(i, p, list(repeats)) for i, p in items], seed=seed,
                                 iteration=iteration)
        return
    for repeat in repeats:
        queue = list(items)
        while queue:
            batch, queue = queue[: len(agents)], queue[len(agents):]
            for record in _play_batch(env, agents[: len(batch)], batch, seed, iteration, repeat):
                yield record | {"iteration": iteration, "repeat": repeat}


def _play_batch(env, agents: Sequence[Agent], batch: Sequence[tuple[int, str]], seed: int, iteration: int,
                repeat: int):
    slots = []
    for agent, (index, prompt) in zip(agents, batch, strict=True):
        if hasattr(agent, "reseed"):
            agent.reseed([seed, iteration, index, repeat])
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
            s["records"].append(step_record(s["agent"], s["obs"], s["info"], action))
            actions.append(action)
        env.prefetch([s["state"] for s in live], actions)
        still = []
        for s, action in zip(live, actions, strict=True):
            s["state"], s["obs"], reward, terminated, truncated, s["info"] = env.advance(s["state"], action)
            s["records"][-1].reward = float(reward)
            s["total"] += reward
            if terminated or truncated:
                result = episode_result(env, s["agent"].name, s["state"], s["info"], s["records"], s["total"],
                                        s["started"], s["agent"].verified_answers())
                yield result.to_json() | {"prompt_index": s["index"]}
            else:
                still.append(s)
        live = still


def _plan_together(env, slots: list[dict]) -> None:
    """Run the planners' step generators side by side: each round, every request of every planner in one
    ``prefetch``; each planner's plan is handed to its agent (``act`` then plays it)."""
    running = []
    for s in slots:
        steps = s["agent"].plan_steps(env, s["state"], s["obs"])
        try:
            running.append((s, steps, next(steps)))
        except StopIteration as done:
            s["agent"].set_plan(done.value)
    while running:
        requests = [r for _, _, reqs in running for r in reqs]
        if requests:
            env.prefetch([state for state, _ in requests], [action for _, action in requests])
        following = []
        for s, steps, reqs in running:
            try:
                following.append((s, steps, steps.send([env.simulate(state, a) for state, a in reqs])))
            except StopIteration as done:
                s["agent"].set_plan(done.value)
        running = following


__all__ = ["play_many"]
