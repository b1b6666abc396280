"""TRL trainers for the primary, each with the continual-learning penalties in ``compute_loss``.

- :class:`TreeSFTTrainer` (``trl.SFTTrainer``): supervised fine-tuning on best paths.
- :class:`TreeDPOTrainer` (``trl.DPOTrainer``): preferences between sibling children.
- :class:`VisitDistillationTrainer` (``trl.SFTTrainer`` with its own ``compute_loss``): AlphaZero
  policy distillation — cross-entropy between the search's visit distribution over a node's
  children and the primary's next-token distribution renormalised over those children.
"""

from __future__ import annotations

import torch
from trl import DPOTrainer, GRPOTrainer, RLOOTrainer, SFTTrainer


class PenaltyMixin:
    """Scales the trainer's loss by its signal's weight and adds ``Σ penalty(model)`` (EWC, SI, ...)."""

    penalties: tuple = ()
    loss_weight: float = 1.0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if not self.penalties and self.loss_weight == 1.0:
            return out
        extra = sum(p.penalty(model) for p in self.penalties) if self.penalties else 0.0
        if return_outputs:
            return self.loss_weight * out[0] + extra, out[1]
        return self.loss_weight * out + extra


class TreeSFTTrainer(PenaltyMixin, SFTTrainer):
    """``SFTTrainer`` on prompt/completion pairs, with forgetting penalties."""

    def __init__(self, *args, penalties=(), loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.penalties, self.loss_weight = tuple(penalties), float(loss_weight)


class TreeDPOTrainer(PenaltyMixin, DPOTrainer):
    """``DPOTrainer`` on sibling pairs, with forgetting penalties. Its rows are already token ids (``prompt_ids``,
    ``chosen_ids``, ``rejected_ids``: what the search played, :func:`agents.training.datasets.dpo_dataset`), which
    ``DPOTrainer``'s own collator reads; the text preparation (tokenising, appending EOS) is skipped for them."""

    def __init__(self, *args, penalties=(), loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.penalties, self.loss_weight = tuple(penalties), float(loss_weight)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" in dataset.column_names:  # tokenised by the one route for training text
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)


class TreeGRPOTrainer(PenaltyMixin, GRPOTrainer):
    """``GRPOTrainer`` (on-policy RL of the primary on the env's rewards), with forgetting penalties."""

    def __init__(self, *args, penalties=(), loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.penalties, self.loss_weight = tuple(penalties), float(loss_weight)


class TreeRLOOTrainer(PenaltyMixin, RLOOTrainer):
    """``RLOOTrainer`` with forgetting penalties."""

    def __init__(self, *args, penalties=(), loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.penalties, self.loss_weight = tuple(penalties), float(loss_weight)


def visit_collator(pad_id: int):
    """Left-pads ``input_ids``; pads ``children`` with -1 and ``visits`` with 0."""

    def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        k = max(len(r["children"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
        children = torch.full((len(rows), k), -1, dtype=torch.long)  # (B, K)
        visits = torch.zeros((len(rows), k))  # (B, K)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, width - n:] = torch.tensor(r["input_ids"])
            mask[i, width - n:] = 1
            children[i, : len(r["children"])] = torch.tensor(r["children"])
            visits[i, : len(r["visits"])] = torch.tensor(r["visits"], dtype=torch.float)
        return {"input_ids": ids, "attention_mask": mask, "children": children, "visits": visits}

    return collate


def visit_distillation_loss(logits: torch.Tensor, children: torch.Tensor, visits: torch.Tensor) -> torch.Tensor:
    """Mean over nodes of ``-Σ_c π(c) log p(c)``, ``p`` the next-token distribution renormalised over
    the node's children (``children`` padded with -1), ``π`` the visit distribution.

    Shapes: ``logits (B, V)``, ``children (B, K)``, ``visits (B, K)``.
    """
    valid = children >= 0
    child_logits = logits.gather(-1, children.clamp(min=0)).masked_fill(~valid, float("-inf"))  # (B, K)
    log_p = torch.log_softmax(child_logits, dim=-1).masked_fill(~valid, 0.0)
    target = visits / visits.sum(-1, keepdim=True).clamp(min=1e-12)
    return -(target * log_p).sum(-1).mean()


class VisitDistillationTrainer(SFTTrainer):
    """AlphaZero distillation of visit counts into the primary (a TRL trainer with its own loss).

    Its dataset comes from :func:`agents.training.datasets.distillation_dataset`: rows of
    ``input_ids`` (the node's context ids), ``children`` and ``visits``.
    """

    def __init__(self, *args, penalties=(), loss_weight: float = 1.0, **kwargs) -> None:
        args_ = kwargs.get("args")
        if args_ is not None:
            args_.dataset_kwargs = {**(args_.dataset_kwargs or {}), "skip_prepare_dataset": True}
            args_.remove_unused_columns = False
        processing_class = kwargs.get("processing_class")
        kwargs.setdefault("data_collator", visit_collator(processing_class.pad_token_id or 0))
        super().__init__(*args, **kwargs)
        self.penalties, self.loss_weight = tuple(penalties), float(loss_weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mask = inputs["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=inputs["input_ids"], attention_mask=mask, position_ids=positions)
        loss = self.loss_weight * visit_distillation_loss(out.logits[:, -1], inputs["children"], inputs["visits"])
        if self.penalties:
            loss = loss + sum(p.penalty(model) for p in self.penalties)
        return (loss, out) if return_outputs else loss
