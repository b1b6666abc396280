"""Specification of judge-guided step-wise greedy (agents.stepwise): at each step every teacher writes the step and
finishes greedily, the best finish's step is kept; so it solves whatever some teacher's greedy walk solves, and it
can pass the chain from one teacher to another."""

import pytest

from agents.evaluation import evaluate, make_agent
from agents.stepwise import StepwiseGreedy, _Finish
from tokentree_env.env import TokenTreeEnv
from tokentree_env.errors import VerifierLeakError
from tokentree_env.tasks import load_task
from tokentree_env.zoo.catalog import default_models

CHAIN5 = {"task": "chain5", "max_new_tokens": 40, "judge": None,
          **{k: v for k, v in default_models("chain5").items() if k != "judge"}}


def _teacher_walks(env, prompt):
    """Each teacher's own greedy walk through the env from the root, to the end: right or not."""
    obs, info = env.reset(options={"prompt": prompt})
    right = []
    for k in range(len(env.teacher_names)):
        walk = _Finish(k, env.get_state(), obs, info)
        while not walk.done:
            walk.take(walk.choose(), env.simulate(walk.state, walk.choose()), env.at_step_boundary)
        right.append(walk.terms.get("task", 0.0) >= 0.5)
    return right


def test_with_the_verifier_it_solves_every_problem_some_teachers_greedy_walk_solves():
    env = TokenTreeEnv(**CHAIN5, split="train", planner_verifier=True)
    prompts = [p.prompt for p in load_task("chain5").problems("train")[:10]]
    _, results = evaluate(make_agent("stepwise-greedy-verifier"), prompts,
                          CHAIN5 | {"split": "train", "planner_verifier": True, "evaluation": False})
    walks = [_teacher_walks(env, p) for p in prompts]
    assert any(any(w) for w in walks) and not all(all(w) for w in walks)  # the problems tell the arms apart
    for r, w in zip(results, walks, strict=True):
        if any(w):
            assert r.hard_reward == 1.0


def test_it_keeps_one_step_at_a_time_and_names_the_teacher_of_each():
    env = TokenTreeEnv(**CHAIN5)
    prompt = load_task("chain5").problems("heldout")[0].prompt
    agent = StepwiseGreedy(rank="return")
    obs, _ = env.reset(options={"prompt": prompt})
    plan = agent.plan(env, obs)
    text = env.decode(plan)
    steps = sum(bool(env.at_step_boundary(text[:i + 1])) for i in range(len(text)))  # its boundaries ('=', ',', '.')
    assert steps >= 2 and steps <= len(agent.writers) <= steps + 1  # + the end of the answer (EOS), its own step
    assert set(agent.writers) <= set(range(len(env.teacher_names)))


def test_the_verifier_rank_is_refused_where_the_env_hides_the_verifier():
    env = TokenTreeEnv(**CHAIN5, evaluation=True)
    obs, _ = env.reset(options={"prompt": load_task("chain5").problems("heldout")[0].prompt})
    with pytest.raises(VerifierLeakError):
        StepwiseGreedy(rank="verifier").plan(env, obs)
