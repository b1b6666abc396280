"""Cross-check of the project's MCTS against DeepMind's ``mctx`` (a CPU ``jax``; both in the ``dev`` extra).

On a small deterministic tree (seeded prior logits, edge rewards and node values; every node three actions,
deeper than any simulation reaches), with matching Q transforms:

- ``mctx.muzero_policy`` with ``dirichlet_fraction=0`` and the project's PUCT (``c_base`` schedule,
  ``"parent_and_siblings"`` Q transform, the root's value as its first visit) choose the same action with
  the same visit counts;
- ``mctx.gumbel_muzero_policy`` with ``gumbel_scale=0`` and the project's Gumbel MuZero choose the same action
  with the same improved policy, within 1e-5.
"""

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest

from agents.search import MCTS, MCTSConfig, improved_policy
from agents.search.tree import ROOT_INDEX
from tokentree_env.env.observation import FEATURES

jax.config.update("jax_enable_x64", True)
A = 3
DEPTH = 11  # deeper than any simulation path of the budgets below (an index past it fails loudly here)


class Tables:
    """Heap-indexed deterministic tree: node 0 is the root; node i's child by action a is ``i * A + a + 1``."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        n = (A ** (DEPTH + 1) - 1) // (A - 1)
        self.logits = rng.normal(0.0, 1.5, size=(n, A))
        self.values = rng.uniform(-1.0, 1.0, size=n)
        self.rewards = rng.uniform(-0.5, 0.5, size=n)  # of the edge into the node

    def prior(self, node: int) -> np.ndarray:
        e = np.exp(self.logits[node] - self.logits[node].max())
        return e / e.sum()


class TableEnv:
    """The deterministic tree behind the planner API the project's MCTS uses."""

    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def get_state(self) -> int:
        return 0

    def obs(self, node: int) -> dict:
        feats = np.zeros((A, len(FEATURES)), dtype=np.float64)
        feats[:, FEATURES.index("prior")] = self.t.prior(node)
        return {"features": feats.reshape(-1), "action_mask": np.ones(A, dtype=np.int8)}

    def simulate(self, node: int, action: int):
        child = node * A + action + 1
        return child, self.obs(child), float(self.t.rewards[child]), False, False, {}


def _ours(tables: Tables, config: MCTSConfig):
    env = TableEnv(tables)
    search = MCTS(config, value_fn=lambda env, node, obs: float(tables.values[node]))
    tree = search.search(env, env.obs(0))
    return search, tree


def _mctx_inputs(tables: Tables):
    logits, values, rewards = (jnp.asarray(x) for x in (tables.logits, tables.values, tables.rewards))
    root = mctx.RootFnOutput(prior_logits=logits[None, 0], value=values[None, 0], embedding=jnp.zeros(1, jnp.int32))

    def recurrent_fn(params, rng_key, action, embedding):
        child = embedding * A + action + 1
        out = mctx.RecurrentFnOutput(reward=rewards[child], discount=jnp.ones_like(values[child]),
                                     prior_logits=logits[child], value=values[child])
        return out, child

    return root, recurrent_fn


@pytest.mark.parametrize("seed,simulations", [(2, 7), (2, 24), (3, 15), (6, 24), (7, 24)])  # trees with no top tie
def test_puct_matches_mctx_muzero_policy(seed, simulations):
    tables = Tables(seed)
    root, recurrent_fn = _mctx_inputs(tables)
    theirs = mctx.muzero_policy(params=(), rng_key=jax.random.PRNGKey(0), root=root, recurrent_fn=recurrent_fn,
                                num_simulations=simulations, dirichlet_fraction=0.0, temperature=1e-9,
                                qtransform=mctx.qtransform_by_parent_and_siblings, pb_c_init=1.25, pb_c_base=19652)
    config = MCTSConfig(num_simulations=simulations, c_puct=1.25, c_base=19652, q_transform="parent_and_siblings",
                        root_value=True, teacher_mix=0.0)
    search, tree = _ours(tables, config)
    their_visits = np.asarray(theirs.search_tree.children_visits[0, 0])
    assert tree.children_visits[ROOT_INDEX].tolist() == their_visits.tolist()
    assert max(their_visits) > sorted(their_visits)[-2], "a tie at the top would make the check vacuous"
    assert search.choose(tree) == int(theirs.action[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("simulations,considered", [(8, 3), (16, 3), (7, 2)])
def test_gumbel_muzero_matches_mctx_gumbel_muzero_policy(seed, simulations, considered):
    tables = Tables(seed)
    root, recurrent_fn = _mctx_inputs(tables)
    theirs = mctx.gumbel_muzero_policy(params=(), rng_key=jax.random.PRNGKey(0), root=root,
                                       recurrent_fn=recurrent_fn, num_simulations=simulations,
                                       max_num_considered_actions=considered, gumbel_scale=0.0)
    config = MCTSConfig(num_simulations=simulations, gumbel=True, gumbel_actions=considered, gumbel_scale=0.0,
                        teacher_mix=0.0)
    search, tree = _ours(tables, config)
    assert tree.children_visits[ROOT_INDEX].tolist() == np.asarray(theirs.search_tree.children_visits[0, 0]).tolist()
    assert search.choose(tree) == int(theirs.action[0])
    np.testing.assert_allclose(improved_policy(tree, ROOT_INDEX), np.asarray(theirs.action_weights[0]), atol=1e-5)
