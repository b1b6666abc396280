"""Agent specs (``mcts:8``, ``best-of:4``, ``ab-mcts:8``) and the search settings each one honours.

A spec is a name, with a budget after a colon for the budgeted ones. The training loop and ``make_agent`` also
take search settings beside a spec (``simulations``, ``dirichlet_fraction``, ``teacher_mix``, ``gumbel``); a
setting a spec cannot honour is refused with a :class:`~tokentree_env.errors.ConfigError` naming both, never
dropped in silence. Pure Python: the command line validates its options without loading any model library.
"""

from __future__ import annotations

from tokentree_env.errors import ConfigError

MCTS_SPECS = ("mcts", "mcts-gumbel", "mcts-judge", "mcts-gumbel-judge", "mcts-design-prior", "mcts-uniform-prior",
              "mcts-primary-prior")
BUDGETED = ("best-of", "best-of-return", "best-of-verifier", "majority-of", "beam", *MCTS_SPECS, "mcts-steps",
            "ab-mcts")
SIMPLE = ("random", "greedy-primary", "greedy-prior", "ensemble-greedy", "best-reference", "best-reference-by-return",
          "majority-vote", "stepwise-greedy", "stepwise-greedy-verifier")
AGENT_SPECS = (*SIMPLE, "best-of:N", "best-of-return:N", "best-of-verifier:N", "majority-of:N", "beam:W",
               *(f"{s}:S" for s in MCTS_SPECS), "mcts-steps:S", "ab-mcts:S")
"""Every spec ``make_agent`` builds (``N`` samples, ``W`` beams, ``S`` simulations or growth steps)."""
SPEC_HELP: dict[str, str] = {
    "random": "a uniformly random valid child",
    "greedy-primary": "the primary's own greedy decoding",
    "greedy-prior": "greedy on the env prior (weightage x similarity)",
    "ensemble-greedy": "greedy on the teacher panel (the mixture that follows the writer)",
    "best-reference": "the teachers' greedy answers, the judge's favourite",
    "best-reference-by-return": "the teachers' greedy answers, the best planner return",
    "majority-vote": "the teachers' greedy answers, voted on by final answer",
    "stepwise-greedy": "at each step every teacher writes it and finishes greedily; the judge's favourite's step is kept",
    "stepwise-greedy-verifier": "step-wise greedy, the verifier picking (self-play only)",
    "best-of:N": "N answers sampled from the panel, the judge's favourite",
    "best-of-return:N": "N panel samples, the best planner return",
    "best-of-verifier:N": "N panel samples, a verified one (self-play only)",
    "majority-of:N": "N panel samples, the most common final answer",
    "beam:W": "beam search of width W on the planner return",
    "mcts:S": "PUCT MCTS, S simulations per token, rollout leaves",
    "mcts-gumbel:S": "Gumbel MuZero, S simulations per token. COST: about 9x mcts:S's forwarded tokens (chain5: 11,074 "
                     "vs 1,215 per problem at S=4): it visits min(4, S) distinct root actions and spreads interior "
                     "visits by its improved policy, so each simulation opens a fresh branch whose rollout forwards a "
                     "whole new answer, where PUCT's simulations revisit the panel's favourite path, whose rollouts "
                     "are cached. Compare them at equal tokens, not equal S",
    "mcts-judge:S": "PUCT MCTS valuing leaves by the judge's verdict",
    "mcts-gumbel-judge:S": "Gumbel MuZero valuing leaves by the judge's verdict (same cost rule as mcts-gumbel)",
    "mcts-design-prior:S": "PUCT MCTS on the design's prior alone (teacher_mix=0)",
    "mcts-uniform-prior:S": "PUCT MCTS with a uniform prior",
    "mcts-primary-prior:S": "PUCT MCTS with the primary's probabilities as the prior",
    "mcts-steps:S": "MCTS over step options: at each step boundary a teacher writes the next step",
    "ab-mcts:S": "AB-MCTS (treequest) over step options, S growth steps per problem",
}
"""One line per spec (``tokentree search --help``)."""
SEARCH_SETTINGS = ("simulations", "dirichlet_fraction", "teacher_mix", "gumbel", "rollout", "stop_at_verified")
SELF_PLAY_NOISE = 0.25
"""AlphaZero's root Dirichlet weight ε, given to every PUCT search in self-play unless declared otherwise."""

_HONOURS: dict[str, frozenset[str]] = {
    "mcts": frozenset({"stop_at_verified", "rollout", "simulations", "dirichlet_fraction", "teacher_mix"}),
    "mcts-judge": frozenset({"stop_at_verified", "rollout", "simulations", "dirichlet_fraction", "teacher_mix"}),
    "mcts-gumbel": frozenset({"stop_at_verified", "rollout", "simulations", "teacher_mix", "gumbel"}),
    "mcts-gumbel-judge": frozenset({"stop_at_verified", "rollout", "simulations", "teacher_mix", "gumbel"}),
    "mcts-design-prior": frozenset({"stop_at_verified", "rollout", "simulations", "dirichlet_fraction"}),
    "mcts-uniform-prior": frozenset({"stop_at_verified", "rollout", "simulations", "dirichlet_fraction"}),
    "mcts-primary-prior": frozenset({"stop_at_verified", "rollout", "simulations", "dirichlet_fraction"}),
    "mcts-steps": frozenset({"simulations", "dirichlet_fraction"}),
}
_WHY = {"dirichlet_fraction": "Gumbel MuZero explores by its own Gumbel draws, not root Dirichlet noise",
        "teacher_mix": "its prior does not mix the panel in (teacher_mix acts on the env prior of mcts and "
                       "mcts-gumbel only)",
        "gumbel": "it is not a Gumbel MuZero search (use mcts-gumbel:S)",
        "simulations": "its budget is not MCTS simulations per step",
        "rollout": "it values no leaf by a token rollout (step options follow the writer's own steps)",
        "stop_at_verified": "it keeps no verifier's word of its leaves (an MCTS spec does: mcts:S)"}


def parse_spec(spec: str) -> tuple[str, int | None]:
    """``(name, budget)`` of a spec (``"mcts:8"`` -> ``("mcts", 8)``; no budget -> None)."""
    name, _, arg = spec.partition(":")
    if name not in (*SIMPLE, *BUDGETED):
        raise ConfigError(f"unknown agent {spec!r}; choose from {list(AGENT_SPECS)}")
    if not arg:
        return name, None
    if name in SIMPLE:
        raise ConfigError(f"agent {spec!r}: {name} takes no budget after ':'")
    try:
        budget = int(arg)
    except ValueError:
        raise ConfigError(f"agent {spec!r}: the budget after ':' must be an integer") from None
    if budget < 1:
        raise ConfigError(f"agent {spec!r}: the budget after ':' must be >= 1")
    return name, budget


def honours(name: str) -> frozenset[str]:
    """The search settings a spec name honours (empty for baselines and planners)."""
    return _HONOURS.get(name, frozenset())


def check_settings(spec: str, settings: dict) -> dict:
    """The settings ``spec`` takes (those given, not None), refusing any it cannot honour and a ``simulations``
    that contradicts the spec's own budget, with a :class:`ConfigError` naming both."""
    name, budget = parse_spec(spec)
    given = {k: v for k, v in settings.items()
             if v is not None and not (k in ("gumbel", "stop_at_verified") and v is False)}
    if unknown := set(given) - set(SEARCH_SETTINGS):
        raise ConfigError(f"unknown search settings {sorted(unknown)}; known: {list(SEARCH_SETTINGS)}")
    for key, value in given.items():
        if key not in honours(name):
            raise ConfigError(f"agent {spec!r} cannot honour {key}={value!r}: {_WHY[key]}; drop one of the two")
    if "simulations" in given and budget is not None and given["simulations"] != budget:
        raise ConfigError(f"agent {spec!r} plays {budget} simulations per step, but simulations="
                          f"{given['simulations']} was set too; drop one of the two")
    return given


def self_play_spec(agent: str | None, *, simulations: int | None, gumbel: bool) -> str:
    """The self-play search a training run plays: ``agent`` when given, else MCTS (Gumbel MuZero with ``gumbel``)
    with ``simulations`` (2 when unset) per step."""
    if agent is not None:
        return agent
    return f"{'mcts-gumbel' if gumbel else 'mcts'}:{simulations or 2}"


def specs_help() -> str:
    """Every spec with its line of help, for a command's ``--help``."""
    return "; ".join(f"{spec}: {SPEC_HELP[spec]}" for spec in AGENT_SPECS)


__all__ = ["AGENT_SPECS", "MCTS_SPECS", "SEARCH_SETTINGS", "SELF_PLAY_NOISE", "SPEC_HELP", "check_settings", "honours",
           "parse_spec", "self_play_spec", "specs_help"]
