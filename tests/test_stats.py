"""Specification of the shared statistics: intervals and paired comparisons, against hand-computed values."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentree_env.stats import auc_interval, mcnemar, paired_bootstrap, roc_auc, t_interval, wilson


def test_wilson_interval_of_a_known_proportion():
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_roc_auc_equals_the_pairwise_definition(pos, neg):
    pairs = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))
    assert roc_auc(pos, neg) == pytest.approx(pairs)


def test_an_auc_interval_contains_its_auc_and_shrinks_with_data():
    small, large = auc_interval(0.8, 20, 20), auc_interval(0.8, 500, 500)
    assert small[0] < 0.8 < small[1] and large[1] - large[0] < small[1] - small[0]


def test_mcnemar_counts_discordant_pairs_and_gives_the_exact_two_sided_p_value():
    a = [1] * 10 + [0] * 2 + [1] * 5
    b = [0] * 10 + [1] * 2 + [1] * 5
    out = mcnemar(a, b)
    assert (out["only_a"], out["only_b"]) == (10, 2)
    assert out["p_value"] == pytest.approx(2 * sum(math.comb(12, i) for i in range(3)) / 2 ** 12)


def test_paired_bootstrap_interval_brackets_the_mean_difference():
    a, b = [1, 1, 1, 0, 1, 1, 0, 1] * 10, [1, 0, 0, 0, 1, 0, 0, 1] * 10
    out = paired_bootstrap(a, b)
    assert out["difference"] == pytest.approx(0.375) and out["low"] < 0.375 < out["high"] and out["low"] > 0


def test_t_interval_of_three_seeds():
    out = t_interval([0.90, 0.90, 0.915])
    assert out["mean"] == pytest.approx(0.905) and out["low"] < 0.905 < out["high"]
    assert out["high"] - out["mean"] == pytest.approx(4.302653 * math.sqrt(0.000075 / 3), rel=1e-4)


def test_the_scipy_statistics_give_what_the_hand_written_ones_gave_on_fixed_inputs():
    """Pinned outputs of the earlier pure-Python statistics (commit 240f88f) on fixed inputs: the SciPy wrappers give
    the same (the bootstrap's interval to within its resampling noise)."""
    pinned_wilson = {(8, 10): (0.49015684672072335, 0.9433190520193067), (0, 20): (0.0, 0.16113012549493322),
                     (20, 20): (0.8388698745050667, 1.0), (37, 200): (0.13730116322736063, 0.2445718205011816)}
    for (k, n), interval in pinned_wilson.items():
        assert wilson(k, n) == pytest.approx(interval, abs=1e-4)
    a, b = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0] * 20, [1, 0, 0, 0, 1, 0, 1, 0, 0, 0] * 20
    assert mcnemar(a, b) == {"only_a": 80, "only_b": 20, "p_value": pytest.approx(1.1159089057251951e-09)}
    assert mcnemar([1, 0, 1], [1, 0, 1]) == {"only_a": 0, "only_b": 0, "p_value": 1.0}
    boot = paired_bootstrap(a, b)
    assert boot["difference"] == pytest.approx(0.3)
    assert boot["low"] == pytest.approx(0.21, abs=0.015) and boot["high"] == pytest.approx(0.39, abs=0.015)
    pos, neg = [0.9, 0.8, 0.8, 0.3, 0.7, 0.65], [0.2, 0.8, 0.4, 0.5, 0.1]
    assert roc_auc(pos, neg) == pytest.approx(0.8)
    assert auc_interval(0.8, 6, 5) == pytest.approx((0.5279956427364254, 1.0))


def test_rows_are_paired_by_problem_id_not_by_list_position():
    from tokentree_env.stats import pair_by_problem

    a = [{"index": 2, "correct": 1.0}, {"index": 0, "correct": 0.0}, {"index": 5, "correct": 1.0}]
    b = [{"index": 0, "correct": 1.0}, {"index": 2, "correct": 0.0}]
    assert pair_by_problem(a, b) == ([0, 2], [0.0, 1.0], [1.0, 0.0])


def test_seeds_paired_resamples_problems_of_seed_averaged_differences_and_needs_both_intervals():
    """Three seeds that agree problem by problem: the interval over problems is the one of the seed-averaged
    differences (resampling within each seed apart would shrink it by about sqrt(3)); a difference shown by the
    problems but not by the seeds' spread is not shown."""
    import numpy as np
    from scipy.stats import bootstrap

    from tokentree_env.stats import seeds_paired

    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, size=60).astype(float)
    a = {s: dict(enumerate(base)) for s in range(3)}
    b = {s: dict(enumerate(np.zeros(60))) for s in range(3)}
    out = seeds_paired(a, b)
    d = base - 0.0
    ci = bootstrap((d,), np.mean, n_resamples=10_000, method="percentile", vectorized=True,
                   rng=np.random.default_rng(0)).confidence_interval
    assert out["difference"] == pytest.approx(d.mean())
    assert (out["bootstrap"]["low"], out["bootstrap"]["high"]) == pytest.approx((ci.low, ci.high))
    assert out["seeds"] == 3 and out["problems"] == 60 and out["above"]
    spread = {0: dict(enumerate(base)), 1: dict(enumerate(base)), 2: dict(enumerate(np.zeros(60)))}
    zeros = {s: dict(enumerate(np.zeros(60))) for s in range(3)}
    mixed = seeds_paired(spread, zeros)
    assert mixed["bootstrap"]["low"] > 0 and mixed["t"]["low"] < 0 and not mixed["above"]
