"""Guards against forgetting: EWC and Synaptic Intelligence penalties (replay lives in the loop).

Both are quadratic anchors ``strength · Σ importance · (θ - θ*)²`` around the parameters ``θ*``
of the model before the round:

- **EWC** (Kirkpatrick et al. 2017): importance = the diagonal empirical Fisher information of the
  general data under the pre-round model (mean squared gradient of its NLL), times 1/2.
- **Synaptic Intelligence** (Zenke et al. 2017): importance accumulates, per parameter, the path
  integral ``ω = -Σ_steps g · Δθ`` of the previous rounds, normalised by ``(θ_end - θ_start)² + ξ``.

The penalty enters the trainers' ``compute_loss``; :class:`SIAccumulator` (a ``TrainerCallback``)
collects ``ω`` during training and refreshes the importance between rounds.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback


def trainable(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


class QuadraticAnchor:
    """``strength · Σ importance · (θ - anchor)²`` over the trainable parameters."""

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.anchor: dict[str, torch.Tensor] = {}
        self.importance: dict[str, torch.Tensor] = {}

    def set_anchor(self, model) -> None:
        self.anchor = {n: p.detach().clone() for n, p in trainable(model).items()}

    def penalty(self, model) -> torch.Tensor:
        params = trainable(model)
        total = next(iter(params.values())).new_zeros(())
        for name, imp in self.importance.items():
            if name in params:
                total = total + (imp * (params[name] - self.anchor[name]) ** 2).sum()
        return self.strength * total


def fisher_diagonal(model, tokenizer, texts: list[tuple[str, str]], *, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: mean over batches of the squared gradient of the completions' NLL."""
    params = trainable(model)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()
    batches = 0
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        ids, labels = [], []
        for prompt, completion in chunk:
            p = tokenizer(prompt)["input_ids"]
            c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            ids.append(p + c)
            labels.append([-100] * len(p) + c)
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id or 0
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
        label_t = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
        model.zero_grad(set_to_none=True)
        model(input_ids=input_ids, attention_mask=mask, labels=label_t).loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
        batches += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {n: f / max(1, batches) for n, f in fisher.items()}


class EWC(QuadraticAnchor):
    """Elastic Weight Consolidation: the anchor's importance is half the general-data Fisher."""

    def refresh(self, model, tokenizer, general_texts: list[tuple[str, str]]) -> None:
        """Before a round: anchor at the current model, importance from its Fisher on general data."""
        self.set_anchor(model)
        self.importance = {n: 0.5 * f for n, f in fisher_diagonal(model, tokenizer, general_texts).items()}


class SynapticIntelligence(QuadraticAnchor):
    """Synaptic Intelligence: importance from the path integral of the previous rounds."""

    def __init__(self, strength: float, damping: float = 0.1) -> None:
        super().__init__(strength)
        self.damping = damping
        self.omega: dict[str, torch.Tensor] = {}
        self.start: dict[str, torch.Tensor] = {}

    def begin_round(self, model) -> None:
        self.start = {n: p.detach().clone() for n, p in trainable(model).items()}
        self.omega = {n: torch.zeros_like(p) for n, p in self.start.items()}
        if not self.anchor:
            self.set_anchor(model)

    def end_round(self, model) -> None:
        """Fold the round's path integral into the importance; re-anchor at the current model."""
        for n, p in trainable(model).items():
            delta = p.detach() - self.start[n]
            contribution = torch.relu(self.omega[n]) / (delta ** 2 + self.damping)
            self.importance[n] = self.importance.get(n, torch.zeros_like(p)) + contribution
        self.set_anchor(model)


class SIAccumulator(TrainerCallback):
    """Collects Synaptic Intelligence's ``ω += -g · Δθ`` around every optimizer step."""

    def __init__(self, si: SynapticIntelligence) -> None:
        self.si = si
        self._before: dict[str, torch.Tensor] = {}
        self._grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        params = trainable(model)
        self._before = {n: p.detach().clone() for n, p in params.items()}
        self._grads = {n: p.grad.detach().clone() for n, p in params.items() if p.grad is not None}

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        for n, p in trainable(model).items():
            if n in self._grads and n in self.si.omega:
                self.si.omega[n] -= self._grads[n] * (p.detach() - self._before[n])
