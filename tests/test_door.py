"""Specification of the agents' door (tokentree_env.env.door): agents, planners and the training loop use the env
through its declared names alone. Every agent spec plays through a proxy that exposes nothing else, and a scan of
the agents package finds no other attribute read on an env."""

import ast
from pathlib import Path

import pytest

from agents.evaluation import make_agent
from agents.play import play_many
from agents.specs import AGENT_SPECS
from tokentree_env.env import AGENT_API, AgentEnv, TokenTreeEnv

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "max_new_tokens": 12, "planner_verifier": True}


class DoorOnly:
    """An env seen through its door: any other attribute raises, naming it."""

    def __init__(self, env) -> None:
        object.__setattr__(self, "_env", env)

    def __getattr__(self, name):
        if name not in AGENT_API:
            raise AssertionError(f"an agent reached past the door: env.{name}")
        if name == "unwrapped":
            return self
        return getattr(object.__getattribute__(self, "_env"), name)


def _runnable(spec: str) -> str:
    name, _, budget = spec.partition(":")
    return f"{name}:2" if budget else name


def test_every_declared_name_exists_on_the_env_and_the_protocol_holds():
    env = TokenTreeEnv(**SMALL)
    assert all(hasattr(env, name) for name in AGENT_API)
    assert isinstance(env, AgentEnv)


@pytest.mark.parametrize("spec", [_runnable(s) for s in AGENT_SPECS])
def test_every_agent_plays_through_the_door_alone_one_at_a_time_and_in_lockstep(spec):
    if spec.startswith("ab-mcts"):
        pytest.importorskip("treequest")
    door = DoorOnly(TokenTreeEnv(**SMALL))
    prompts = [(0, "12+35+20="), (1, "31+42+15=")]
    together = list(play_many(door, [make_agent(spec, seed=1) for _ in prompts], prompts, seed=2))
    assert len(together) == 2
    alone = make_agent(spec, seed=1)
    door.reset(options={"prompt": prompts[0][1]})
    result = alone.run_episode(door, options={"prompt": prompts[0][1]})
    assert result.steps >= 1


def test_self_play_and_the_training_records_use_the_door_alone():
    from agents.training.selfplay import SelfPlayJob, play_episodes

    door = DoorOnly(TokenTreeEnv(**SMALL))
    records = list(play_episodes(door, [(0, "12+35+20=", [0, 1])], SelfPlayJob(agent="mcts:2")))
    assert len(records) == 2


ENV_NAMES = {"env", "u", "door"}
"""Names the agents package gives an env (and ``self.env``, ``env.unwrapped``)."""


def _env_reads(tree: ast.AST):
    """Every attribute read on an env-named expression: ``env.X``, ``u.X``, ``self.env.X``, ``env.unwrapped.X``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Attribute) and base.attr == "unwrapped":
            base = base.value
        named = (isinstance(base, ast.Name) and base.id in ENV_NAMES) or (
            isinstance(base, ast.Attribute) and base.attr == "env" and isinstance(base.value, ast.Name)
            and base.value.id == "self")
        if named:
            yield node.attr, node.lineno


def test_the_agents_package_reads_nothing_of_an_env_outside_the_door():
    offences = []
    for path in sorted((ROOT / "agents").rglob("*.py")):
        for attr, line in _env_reads(ast.parse(path.read_text())):
            if attr not in AGENT_API:
                offences.append(f"{path.relative_to(ROOT)}:{line}: env.{attr}")
    assert not offences, "agents reach past the door:\n" + "\n".join(offences)
