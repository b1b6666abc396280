"""The teacher panel: how the teachers' next-token log-probs combine into one score (DESIGN §11).

Every consumer reads the panel from here: the observation's ``panel_logprob`` feature (and through it the MCTS
prior, rollouts, ensemble greedy, best-of-N and beam), the slates' ranking, the per-step reward (and through it
the weightage rule's "improved" test) and the training signals' panel reward. A new rule is one change here.

Rules (``PanelConfig.rule``):

- ``"mixture"`` (the default) — a mixture over which teacher is writing. Each node holds weights ``w`` over the
  ``K`` teachers: the root has ``w = π``, and the child reached by token ``x`` has

      w' = (1 − α) · normalise(w ⊙ p(x)) + α / K

  (Bayes' rule over "which teacher writes this path", then Herbster and Warmuth's fixed share, 1998, so that
  another teacher can take over). A child's panel probability is ``Σ_k w_k p_k(child)``. With ``α = 0`` the
  weights are the path posterior ``w ∝ π · exp(L_k)``, ``L_k`` teacher ``k``'s log-likelihood of the path, and
  the per-step panel log-probs sum to the Bayesian mixture's log-likelihood ``log Σ_k π_k exp(L_k)``. It is the
  training-free counterpart of Co-LLM's learned gate (Shen et al. 2024).
- ``"mean"`` — fixed weights ``π``: the log of the teachers' (weighted) mean probability.
- ``"product"`` — the mean of the teachers' log-probs (an unnormalised product of experts; the rule before the
  mixture, kept for comparison: it splices the teachers' styles into chains no teacher writes).

Nothing here runs a model: the per-teacher log-probs are the ones the slates already hold (floored at
``log 1e-9``), and the weights are kept in log space, so a long path never underflows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokentree_env.errors import ConfigError

PANEL_RULES: tuple[str, ...] = ("mixture", "mean", "product")
DEFAULT_ALPHA = 0.2
"""Fixed share α of the mixture, chosen on a tuning slice of the ``chain5`` train split (100 problems, never
measured; ``python -m benchmarks.panel``, benchmarks/README.md "The panel"): ensemble greedy scored 0.350, 0.360,
0.370, 0.390, 0.420, 0.420 and 0.380 at α = 0, 0.02, 0.05, 0.1, 0.2, 0.3 and 0.5; the tie goes to the smaller."""


@dataclass(frozen=True)
class PanelConfig:
    """How the teachers' log-probs combine (see the module docstring)."""

    rule: str = "mixture"
    """"mixture" (weights follow the writer), "mean" (fixed weights ``π``) or "product" (mean log-prob)."""
    alpha: float = DEFAULT_ALPHA
    """The mixture's fixed share α in [0, 1): every weight stays at least ``α / K``. Ignored by the other rules."""
    prior: tuple[float, ...] | None = None
    """π: the teachers' weights at the root (normalised; uniform when None)."""

    def __post_init__(self) -> None:
        if self.rule not in PANEL_RULES:
            raise ConfigError(f"PanelConfig.rule must be one of {PANEL_RULES}, got {self.rule!r}")
        if not 0.0 <= self.alpha < 1.0:
            raise ConfigError(f"PanelConfig.alpha (the fixed share) must be in [0, 1), got {self.alpha!r}")
        if self.prior is not None:
            prior = tuple(float(p) for p in self.prior)
            if not prior or any(not np.isfinite(p) or p <= 0 for p in prior):
                raise ConfigError(f"PanelConfig.prior (π) must be positive weights, one per teacher, got {self.prior!r}")
            object.__setattr__(self, "prior", prior)

    @classmethod
    def coerce(cls, value: PanelConfig | str | dict | None) -> PanelConfig:
        """A config from a rule name (``"mixture"``), a dict of fields, or a config (None: the default)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(rule=value)
        if isinstance(value, dict):
            unknown = set(value) - {"rule", "alpha", "prior"}
            if unknown:
                raise ConfigError(f"unknown panel settings {sorted(unknown)}; known: ['alpha', 'prior', 'rule']")
            return cls(**value)
        raise ConfigError(f"panel must be a rule name {PANEL_RULES}, a dict or a PanelConfig, got {value!r:.80}")

    def describe(self) -> dict:
        """The setting as plain data (saved with every tree: it ranked the tree's slates)."""
        return {"rule": self.rule, "alpha": self.alpha if self.rule == "mixture" else None,
                "prior": list(self.prior) if self.prior is not None and self.rule != "product" else None}


class Panel:
    """The panel rule for ``n_teachers`` teachers: root weights, the weights' update along a path, and the panel's
    log-prob of each child of a slate. Pure NumPy on ``(n, K)`` arrays of per-teacher log-probs."""

    def __init__(self, config: PanelConfig | str | dict | None, n_teachers: int) -> None:
        self.config = PanelConfig.coerce(config)
        if n_teachers < 1:
            raise ConfigError(f"the panel needs at least one teacher, got {n_teachers}")
        prior = self.config.prior
        if prior is not None and len(prior) != n_teachers:
            raise ConfigError(f"PanelConfig.prior has {len(prior)} weights but there are {n_teachers} teachers; "
                              "give one weight per teacher, in the order of `teachers`")
        pi = np.full(n_teachers, 1.0 / n_teachers) if prior is None else np.asarray(prior) / np.sum(prior)
        self.n = n_teachers
        self.root_log_weights = np.log(pi)  # (K,)

    def describe(self) -> dict:
        return self.config.describe()

    def child_log_weights(self, log_weights: np.ndarray, token_logprobs: np.ndarray) -> np.ndarray:
        """The log-weights of the child reached by a token, from its parent's ``(K,)`` log-weights and each teacher's
        log-prob of that token ``(K,)``. Fixed (``π``) unless the rule is the mixture."""
        if self.config.rule != "mixture":
            return log_weights
        posterior = log_weights + token_logprobs
        posterior = posterior - logsumexp(posterior)
        alpha = self.config.alpha
        if alpha == 0.0:
            return posterior
        return np.logaddexp(np.log1p(-alpha) + posterior, np.log(alpha / self.n))

    def path_log_weights(self, token_logprobs: np.ndarray) -> np.ndarray:
        """The log-weights after a path whose tokens have per-teacher log-probs ``(T, K)`` (the recursion, from π)."""
        log_weights = self.root_log_weights
        for row in np.asarray(token_logprobs, dtype=np.float64).reshape(-1, self.n):
            log_weights = self.child_log_weights(log_weights, row)
        return log_weights

    def path_logprob(self, token_logprobs: np.ndarray) -> float:
        """The sum of the per-step panel log-probs of a path whose tokens have per-teacher log-probs ``(T, K)``: what
        the env's ``panel_logprob`` reward terms add up to (divided by ``alpha``) along that path."""
        total, log_weights = 0.0, self.root_log_weights
        for row in np.asarray(token_logprobs, dtype=np.float64).reshape(-1, self.n):
            total += float(self.logprobs(log_weights, row[None])[0])
            log_weights = self.child_log_weights(log_weights, row)
        return total

    def step_prior(self, log_weights: np.ndarray, own_steps: Sequence[np.ndarray]) -> np.ndarray:
        """Which teacher writes the next step, ``(K,)``, at a step boundary with log-weights ``(K,)``: teacher ``k``'s
        weight times the geometric mean per-token probability of its own greedy step ``own_steps[k]`` (its own
        log-probs of that step's tokens, ``(T_k,)``), normalised:

            P(k) ∝ w_k · exp(mean_t log p_k(x_t^(k)))

        The posterior that teacher k writes, from the mixture's weights and how surely k writes its own step, with
        the likelihood taken per token so that a long step is not penalised for its length. The prior of the
        step-options search (``mcts-steps``; uniform where no step has tokens). For the product rule the weights are
        uniform, so the prior is the steps' likelihoods alone."""
        log_w = np.asarray(log_weights, dtype=np.float64)
        scores = np.array([log_w[k] + float(np.mean(s)) if len(s) else -np.inf for k, s in enumerate(own_steps)])
        if not np.isfinite(scores).any():
            return np.full(len(own_steps), 1.0 / len(own_steps))
        p = np.exp(scores - scores[np.isfinite(scores)].max())
        return p / p.sum()

    def logprobs(self, log_weights: np.ndarray, teacher_logprobs: np.ndarray) -> np.ndarray:
        """The panel's log-prob of each child, ``(n,)``, from the node's log-weights ``(K,)`` and the children's
        per-teacher log-probs ``(n, K)``: ``log Σ_k w_k p_k``, or the mean log-prob for the product."""
        lp = np.asarray(teacher_logprobs, dtype=np.float64)
        if self.config.rule == "product":
            return lp.mean(axis=-1)
        return logsumexp(lp + log_weights, axis=-1)


def logsumexp(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``log Σ exp(a)`` along ``axis``, stably (NumPy's ``logaddexp`` reduction; no SciPy import on the CLI's path)."""
    return np.logaddexp.reduce(a, axis=axis)


def writers(token_logprobs, alpha: float = DEFAULT_ALPHA) -> list[int]:
    """Who wrote each token of a path, whatever rule decoded it: the teacher with the largest weight of the mixture
    (fixed share ``alpha``, uniform π) after each token, from the tokens' per-teacher log-probs ``(T, K)``."""
    lp = np.asarray(token_logprobs, dtype=np.float64)
    if lp.size == 0:
        return []
    panel, out = Panel(PanelConfig(alpha=alpha), lp.shape[1]), []
    log_weights = panel.root_log_weights
    for row in lp:
        log_weights = panel.child_log_weights(log_weights, row)
        out.append(int(np.argmax(log_weights)))
    return out


def writer_switches(writers: Sequence[int]) -> int:
    """How often the writer (the teacher with the largest weight) changes along an answer."""
    return sum(1 for a, b in itertools.pairwise(writers) if a != b)


__all__ = ["DEFAULT_ALPHA", "PANEL_RULES", "Panel", "PanelConfig", "logsumexp", "writer_switches", "writers"]
