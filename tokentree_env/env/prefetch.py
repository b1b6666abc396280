"""Lockstep batching: the model work of many coming transitions, done in one batch per model.

Many episodes (other prompts, other search leaves) advance together; before each of them takes its transition,
:func:`prefetch` does all their model work at once: the judge's completeness checks of the children that end
with punctuation, the expansion of every child that does not end its episode (one padded, batched forward per
model, whatever prompts the contexts come from), and the judge's verdicts of the answers that end. The
transitions themselves then run one by one, exactly as without batching, and find every model output cached:
one transition logic, batched model work. Each row of a batch is charged to its own episode
(``Context.owner``). Knows nothing of the env: it is given the parts.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokentree_env.env.state import EnvState, action_index
from tokentree_env.tree import Expander, TokenTree


def prefetch(expander: Expander, detector, judge, trees: Sequence[TokenTree], states: Sequence[EnvState],
             actions: Sequence[int], *, width: int, verdicts: bool = True) -> None:
    """Warm every cache the transitions ``(states[i], actions[i])`` on ``trees[i]`` will read."""
    live = [(t, s, action_index(a, width)) for t, s, a in zip(trees, states, actions, strict=True) if not s.done]
    if not live:
        return
    expander.expand_many([(t, s.node) for t, s, _ in live])  # parents (normally fresh already)
    children = []
    for tree, state, index in live:
        slate = tree.nodes[state.node].slate
        token = int(slate.tokens[index % len(slate)])
        children.append((tree, expander.child(tree, state.node, index % len(slate)), token, state.length + 1))
    punctuated = [(t, c) for t, c, token, _ in children if _ends_with_punctuation(detector, token)]
    if judge is not None and punctuated:  # completeness checks of every candidate end, in one batch
        judge.teacher.next_logprobs([t.context(c, expander.decode) for t, c in punctuated])
    ending, going = [], []
    for tree, child, token, length in children:
        terminated, truncated, _ = detector.check(token, tree.context(child, expander.decode), length)
        (ending if terminated or truncated else going).append((tree, child))
    if going:
        expander.expand_many(going)
    if judge is not None and verdicts and ending and hasattr(judge, "verdicts"):
        texts = [expander.decode(t.path_tokens(c)) for t, c in ending]
        judge.verdicts([t.prompt for t, _ in ending], texts, [t.owner for t, _ in ending])


def _ends_with_punctuation(detector, token: int) -> bool:
    text = detector.token_text(token)
    return bool(text) and text[-1] in detector.config.punctuation and token != detector.eos_id
