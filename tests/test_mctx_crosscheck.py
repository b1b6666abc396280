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


def reference_puct(tables: Tables, simulations: int, c: float = 1.25) -> list[int]:
    """A hand-written reference of the project's default PUCT, from MuZero's pseudocode (Schrittwieser et al. 2020,
    Appendix B / its ``MinMaxStats``), independent of ``agents.search``. Root visit counts after ``simulations``.

    Its departures from ``mctx.muzero_policy``, which is why the defaults are checked here and not against mctx:
    - Q is min-max normalised by the bounds of every value seen in this search (MuZero's ``MinMaxStats``); mctx's
      transforms normalise per node (``qtransform_by_parent_and_siblings``) or by fixed bounds;
    - an unvisited child is valued at its parent's mean value (first-play urgency); mctx values it at 0 (its
      ``children_values`` start at 0) before the transform;
    - the exploration term uses ``sqrt(max(1, N(s)))``: a fresh root with no visit of its own follows the prior
      at its first simulation, where mctx's ``sqrt(N(s)) = 0`` gives a pure-Q choice;
    - ``c`` is constant (no ``c_base`` schedule) and the root's value is not counted as a visit.
    """
    n, v = {0: 0}, {0: 0.0}  # node visits and mean value backed up at the node
    lo, hi = np.inf, -np.inf
    for _ in range(simulations):
        path, node = [0], 0
        while True:  # select: descend while the chosen child exists
            children = [node * A + a + 1 for a in range(A)]
            # an edge's Q: its reward plus its child's mean value; an unvisited edge: the parent's mean value
            q = [tables.rewards[ch] + v[ch] if n.get(ch, 0) else v[node] for ch in children]
            norm = [(x - lo) / (hi - lo) if hi > lo else 0.0 for x in q]
            prior = tables.prior(node)
            score = [norm[a] + c * prior[a] * np.sqrt(max(1, n[node])) / (1 + n.get(children[a], 0)) for a in range(A)]
            node = children[int(np.argmax(score))]
            path.append(node)
            if node not in n:
                n[node], v[node] = 0, 0.0
                break
        value = float(tables.values[node])
        for i in range(len(path) - 1, -1, -1):  # backup with edge rewards, discount 1
            here = path[i]
            n[here] += 1
            v[here] += (value - v[here]) / n[here]
            if i > 0:
                value = float(tables.rewards[here]) + value
                q = tables.rewards[here] + v[here]  # the edge's Q, as it stands after this backup
                lo, hi = min(lo, q), max(hi, q)
    return [n.get(a + 1, 0) for a in range(A)]


@pytest.mark.parametrize("seed,simulations", [(0, 5), (1, 12), (2, 20), (4, 16), (5, 9), (6, 24)])
def test_the_default_puct_matches_a_hand_written_reference(seed, simulations):
    tables = Tables(seed)
    _, tree = _ours(tables, MCTSConfig(num_simulations=simulations, teacher_mix=0.0))
    assert tree.children_visits[ROOT_INDEX].tolist() == reference_puct(tables, simulations)
