"""The ``"ansi"`` rendering of TokenTree-v0: the prompt, the answer so far, and the slate with its scores."""

from __future__ import annotations

import numpy as np

from tokentree_env.env.state import EnvState


def render_text(state: EnvState | None, info: dict, features: np.ndarray | None) -> str:
    """The ``"ansi"`` rendering: the prompt, the answer so far, and the slate with its scores."""
    if state is None:
        return "(call reset() first)"
    lines = [f"prompt: {state.prompt!r}", f"answer: {info.get('text', '')!r}  (step {state.length})"]
    if state.done or features is None:
        lines.append(f"episode ended: {info.get('terminal_reason')}; reward terms {info.get('reward_terms')}")
        return "\n".join(lines)
    lines.append(" #  token      dir    prior  weight  sim    teacher_lp  proposed by")
    for i, p in enumerate(info.get("provenance", [])):
        f = features[i]
        lines.append(f"{i:2d}  {p['text']!r:9s}  {p['direction']:5s}  {f[0]:.3f}  {f[2]:.3f}   "
                     f"{f[1]:+.2f}  {f[4]:8.2f}    {len(p['proposed_by'])} model(s)")
    return "\n".join(lines)
