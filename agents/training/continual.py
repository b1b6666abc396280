"""Guards against forgetting: EWC and Synaptic Intelligence penalties (replay lives in the loop).

Both are quadratic anchors ``strength · mean(importance · (θ - θ*)²)`` around the parameters ``θ*``
of the model before the round, with the importance normalised to mean 1 (so ``strength`` is on the
loss's scale):

- **EWC** (Kirkpatrick et al. 2017): importance = the diagonal empirical Fisher information of the
  general data under the pre-round model (mean squared per-example gradient of its NLL).
- **Synaptic Intelligence** (Zenke et al. 2017): importance accumulates, per parameter, the path
  integral ``ω = -Σ_steps g · Δθ`` of the previous rounds, normalised by ``(θ_end - θ_start)² + ξ``.

The penalty enters the trainers' ``compute_loss``; :class:`SIAccumulator` (a ``TrainerCallback``)
collects ``ω`` during training and refreshes the importance between rounds.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

from tokentree_env.models.prompts import prompt_ids


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

    def set_importance(self, importance: dict[str, torch.Tensor]) -> None:
        """Store importance normalised to mean 1 over all parameters, so ``strength`` is on the scale
        of the loss whatever the model's size or how small its gradients are (a model that already
        fits the general data has a Fisher of ~1e-10 per parameter)."""
        total = sum(float(v.sum()) for v in importance.values())
        count = sum(v.numel() for v in importance.values())
        scale = count / total if total > 0 else 0.0
        self.importance = {n: v * scale for n, v in importance.items()}

    def penalty(self, model) -> torch.Tensor:
        """``strength · mean over parameters of importance · (θ - θ*)²``."""
        # the anchored parameters by name, trainable or not: a reloaded checkpoint (e.g. a LoRA adapter loaded
        # for inference) has the same names with requires_grad off, and its penalty must not read as zero
        params = {n: p for n, p in model.named_parameters() if n in self.importance}
        total = next(model.parameters()).new_zeros(())
        count = 0
        for name, imp in self.importance.items():
            if name in params:
                total = total + (imp * (params[name] - self.anchor[name]) ** 2).sum()
                count += imp.numel()
        return self.strength * total / max(1, count)


def fisher_diagonal(model, tokenizer, texts: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: the mean over examples of the squared per-example gradient of the
    completion's NLL (per example, not per batch: squaring a batch mean underestimates it)."""
    params = trainable(model)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()
    for prompt, completion in texts:
        p = prompt_ids(tokenizer, prompt)  # the primary's prompt format, as in the env and the training rows
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        input_ids = torch.tensor([p + c])
        labels = torch.tensor([[-100] * len(p) + c])
        model.zero_grad(set_to_none=True)
        model(input_ids=input_ids, labels=labels).loss.backward()
        for n, q in params.items():
            if q.grad is not None:
                fisher[n] += q.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {n: f / max(1, len(texts)) for n, f in fisher.items()}


class EWC(QuadraticAnchor):
    """Elastic Weight Consolidation: the anchor's importance is half the general-data Fisher."""

    def refresh(self, model, tokenizer, general_texts: list[tuple[str, str]]) -> None:
        """Before a round: anchor at the current model, importance from its Fisher on general data."""
        self.set_anchor(model)
        self.set_importance(fisher_diagonal(model, tokenizer, general_texts))


class SynapticIntelligence(QuadraticAnchor):
    """Synaptic Intelligence: importance from the path integral of the previous rounds."""

    def __init__(self, strength: float, damping: float = 0.1) -> None:
        super().__init__(strength)
        self.damping = damping
        self.omega: dict[str, torch.Tensor] = {}
        self.start: dict[str, torch.Tensor] = {}
        self.raw_importance: dict[str, torch.Tensor] = {}  # Σ over rounds, before normalising

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
            self.raw_importance[n] = self.raw_importance.get(n, torch.zeros_like(p)) + contribution
        self.set_importance(self.raw_importance)
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
