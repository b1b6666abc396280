"""Statistics the reports share: intervals of proportions and of ROC AUCs, and paired comparisons.

Every figure a benchmark or report prints carries its 95 % interval; comparisons of two agents on the same
problems are paired (McNemar's exact test, a paired-bootstrap interval of the difference).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """ROC AUC: the probability that a random positive outscores a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    ranked = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(label for _, label in ranked[i:j]) * (i + j + 1) / 2
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_interval(auc: float, n_pos: int, n_neg: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a ROC AUC by Hanley & McNeil (1982)'s standard error."""
    if not n_pos or not n_neg or math.isnan(auc):
        return 0.0, 1.0
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = math.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc))
                   / (n_pos * n_neg))
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def mcnemar(a: Sequence[float], b: Sequence[float]) -> dict:
    """McNemar's exact test of two agents' successes on the same problems: the discordant counts (``a`` right
    and ``b`` wrong, and the reverse) and the two-sided binomial p-value."""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x >= 0.5 > y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y >= 0.5 > x)
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": p}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, seed: int = 0) -> dict:
    """The mean difference ``a - b`` over the same problems and its 95 % paired-bootstrap interval."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    if not n:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan")}
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return {"difference": sum(diffs) / n, "low": means[int(0.025 * resamples)], "high": means[int(0.975 * resamples) - 1]}


def t_interval(values: Sequence[float]) -> dict:
    """Mean and 95 % t-interval of a few values (seeds)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n if n else float("nan")
    if n < 2:
        return {"mean": mean, "low": mean, "high": mean, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}
