"""Panel weights come from each node's own evidence: every teacher's log-prob of the node's token, kept from the
node's creation, saved with the tree, and never re-read from a slate that a trained primary recomputed."""

import numpy as np

from tokentree_env.env import TokenTreeEnv
from tokentree_env.teachers import HFTeacher

SMALL = {"teachers": ["zoo:teacher-qwen2", "zoo:teacher-llama"], "judge": None, "max_new_tokens": 10}
PROMPT = "12+35+20="


def _path_through_a_primary_only_child(env) -> list[int]:
    """Actions of an answer whose first token only the primary proposed (teachers' top-1 after it)."""
    obs, info = env.reset(options={"prompt": PROMPT})
    first = next(i for i, p in enumerate(info["provenance"])
                 if len(p["proposed_by"]) == 1 and p["proposed_by"][0] not in env.teacher_names)
    actions, done = [first], False
    obs, _, terminated, truncated, info = env.step(first)
    done = terminated or truncated
    while not done:
        action = int(np.argmax(np.where(obs["action_mask"] == 1, obs["features"].reshape(16, -1)[:, 4], -np.inf)))
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return actions


def _weights_along(env, tokens) -> list[np.ndarray]:
    tree = env.trees[PROMPT]
    ids = tree.nodes[0].ids
    return [np.exp(env.expander.log_weights(tree, tree.find((*ids, *tokens[:i])))) for i in range(len(tokens))]


def test_a_resumed_run_under_a_trained_primary_has_the_weights_of_the_uninterrupted_run(tmp_path):
    first = TokenTreeEnv(**SMALL)
    _path_through_a_primary_only_child(first)
    tokens = list(first.path_tokens(first.get_state()))
    before = _weights_along(first, tokens)
    first.save_trees(tmp_path)
    trained = HFTeacher("zoo:chain5-primary", name="primary")  # another primary, same vocabulary: new slates
    trained.version = 1
    resumed = TokenTreeEnv(**SMALL, primary=trained)
    resumed.load_trees(tmp_path, merge=False)
    tree = resumed.trees[PROMPT]
    root = tree.find(tree.nodes[0].ids)
    resumed.expander.expand(tree, [root])  # the root's slate, recomputed for the trained primary
    assert tree.nodes[root].slate.index_of(tokens[0]) is None  # the first token is off the new slate
    for a, b in zip(before, _weights_along(resumed, tokens), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_node_keeps_each_teachers_log_prob_of_its_token_from_its_creation(tmp_path):
    env = TokenTreeEnv(**SMALL)
    obs, info = env.reset(options={"prompt": PROMPT})
    env.step(0)
    node = env.get_state().node
    evidence = env.trees[PROMPT].nodes[node].evidence
    np.testing.assert_allclose(evidence, info["panel"]["teacher_logprobs"][0], atol=1e-6)
    env.save_trees(tmp_path)
    again = TokenTreeEnv(**SMALL)
    again.load_trees(tmp_path, merge=False)
    assert again.trees[PROMPT].nodes[node].evidence == evidence
