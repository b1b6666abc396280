"""Statistics the reports share: intervals of proportions and of ROC AUCs, and paired comparisons.

Every figure a benchmark or report prints carries its 95 % interval; comparisons of two agents on the same
problems are paired (McNemar's exact test, a paired-bootstrap interval of the difference). The computations are
SciPy's (``scipy.stats``: ``binomtest``'s Wilson interval and exact test, ``bootstrap``, ``mannwhitneyu``, the t
distribution); these are thin wrappers with the report's conventions. SciPy is imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (``binomtest(...).proportion_ci(method="wilson")``; a fractional
    count, e.g. a mean of partial rewards, is rounded to whole successes)."""
    from scipy.stats import binomtest

    if n == 0:
        return 0.0, 1.0
    ci = binomtest(round(successes), n).proportion_ci(confidence_level=_level(z), method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def _level(z: float) -> float:
    """The two-sided confidence level of a normal quantile ``z`` (1.96 -> 0.95)."""
    from scipy.stats import norm

    return float(2 * norm.cdf(z) - 1)


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """ROC AUC: the probability that a random positive outscores a random negative (ties count half): the
    Mann-Whitney U of the positives over ``n_pos · n_neg``."""
    from scipy.stats import mannwhitneyu

    if not len(positives) or not len(negatives):
        return float("nan")
    u = mannwhitneyu(positives, negatives, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (len(positives) * len(negatives))


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
    from scipy.stats import binomtest

    only_a = sum(1 for x, y in zip(a, b, strict=True) if x >= 0.5 > y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y >= 0.5 > x)
    n = only_a + only_b
    p = float(binomtest(only_a, n, 0.5, alternative="two-sided").pvalue) if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": min(1.0, p)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, seed: int = 0) -> dict:
    """The mean difference ``a - b`` over the same problems and its 95 % paired-bootstrap percentile interval
    (``scipy.stats.bootstrap`` on the per-problem differences, seeded)."""
    import numpy as np
    from scipy.stats import bootstrap

    diffs = np.asarray([x - y for x, y in zip(a, b, strict=True)], dtype=np.float64)
    if not diffs.size:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan")}
    mean = float(diffs.mean())
    if np.all(diffs == diffs[0]):  # no spread: every resample has the same mean
        return {"difference": mean, "low": mean, "high": mean}
    ci = bootstrap((diffs,), np.mean, n_resamples=resamples, method="percentile", vectorized=True,
                   rng=np.random.default_rng(seed)).confidence_interval
    return {"difference": mean, "low": float(ci.low), "high": float(ci.high)}


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


def pair_by_problem(a: Sequence[dict], b: Sequence[dict], *, key: str = "index", value: str = "correct"
                    ) -> tuple[list, list[float], list[float]]:
    """Two rows' results on the same problems, paired by problem id (``key``), never by list position: the shared
    ids (sorted) and each row's ``value`` on them. A problem one row lacks is left out of both."""
    x, y = {r[key]: float(r[value]) for r in a}, {r[key]: float(r[value]) for r in b}
    shared = sorted(set(x) & set(y))
    return shared, [x[k] for k in shared], [y[k] for k in shared]


def seeds_paired(a: dict, b: dict, *, resamples: int = 10_000, seed: int = 0) -> dict:
    """Two arms run with the same seeds on the same problems: ``a[seed][problem] -> score`` (and ``b``).

    Every seed sees the same problems, so problems are the unit: each problem's difference is averaged over the
    seeds first, and the bootstrap resamples problems of those seed-averaged differences (``scipy.stats.bootstrap``;
    resampling problems within each seed apart would treat seeds as independent samples of the problems and give
    intervals too narrow). Beside it, a t-interval over the seeds' mean differences (the seed-to-seed spread). A
    difference counts as shown only where **both** intervals exclude 0 (``above`` / ``below``).

    Pairs by seed and by problem id; a seed or problem missing from either arm is left out."""
    import numpy as np
    from scipy.stats import bootstrap

    seeds = sorted(set(a) & set(b))
    problems = sorted(set.intersection(*(set(a[s]) & set(b[s]) for s in seeds))) if seeds else []
    if not problems:
        return {"difference": float("nan"), "bootstrap": {"low": float("nan"), "high": float("nan")},
                "t": t_interval([]), "per_seed": [], "seeds": len(seeds), "problems": 0, "above": False,
                "below": False}
    d = np.asarray([[float(a[s][p]) - float(b[s][p]) for p in problems] for s in seeds])  # (S, P)
    per_problem = d.mean(axis=0)  # (P,)
    mean = float(per_problem.mean())
    if np.all(per_problem == per_problem[0]):
        low = high = mean
    else:
        ci = bootstrap((per_problem,), np.mean, n_resamples=resamples, method="percentile", vectorized=True,
                       rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    per_seed = d.mean(axis=1).tolist()
    t = t_interval(per_seed)
    shown = len(seeds) >= 2
    return {"difference": mean, "bootstrap": {"low": low, "high": high}, "t": t, "per_seed": per_seed,
            "seeds": len(seeds),
            "problems": len(problems), "above": shown and low > 0 and t["low"] > 0,
            "below": shown and high < 0 and t["high"] < 0}
