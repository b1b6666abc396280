"""``tokentree export RUN``: a run's training rows as datasets TRL's trainers read unchanged.

From the run's episode store, through the same builders the loop trains on (:mod:`agents.training.datasets`):

- ``sft/``: every verified answer as ``{"prompt", "completion"}`` text (TRL's prompt-completion format, which
  ``SFTTrainer`` reads as is; the best path per prompt, or every distinct verified answer of a coverage-first run);
- ``dpo/``: preference pairs ``{"prompt", "chosen", "rejected"}`` (``DPOTrainer``'s format): a node's child on the
  verified path against an off-path sibling whose continuation was worse (verified wrong, where the search saw the
  verifier);
- ``distill/``: per searched node, ``{"prompt", "children", "targets"}``: the context text, the children's token ids
  and the policy target (visits, or the improved policy): the per-node targets, for a trainer of your own (TRL has
  none for a distribution over children; ``agents.training.VisitDistillationTrainer`` is one).

Each is saved with ``datasets.Dataset.save_to_disk`` (load it with ``datasets.load_from_disk``) and as a JSONL file
beside it. The text is the primary's decoding of the ids the search played, in the primary's prompt format.
"""

from __future__ import annotations

import json
from pathlib import Path


def export_run(run_dir: str | Path, out: str | Path | None = None) -> dict[str, int]:
    """Write the run's SFT, DPO and distillation rows under ``out`` (default ``RUN/export``); rows per dataset."""
    from datasets import Dataset

    from agents.store import EpisodeStore
    from agents.training.checkpoint import load_state, primary_path
    from agents.training.config import TrainConfig
    from agents.training.datasets import distillation_dataset, dpo_dataset, sft_dataset
    from tokentree_env.errors import ConfigError
    from tokentree_env.models import load_model

    run_dir = Path(run_dir)
    if not (run_dir / "episodes.jsonl").exists():
        raise ConfigError(f"{run_dir} holds no episodes.jsonl: give a run folder of `tokentree train`")
    state = load_state(run_dir)
    stored = state["config"]
    config = TrainConfig(**{k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__})
    tokenizer = load_model(primary_path(run_dir, 0, config.primary)).tokenizer
    records = list(EpisodeStore(run_dir / "episodes.jsonl"))
    decode = lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True)  # noqa: E731
    sft = sft_dataset(records, tokenizer, distinct=config.coverage_first)
    dpo = dpo_dataset(records, tokenizer)
    distill = distillation_dataset([r for r in records if r.get("records")], target=config.distill_target,
                                   min_visits=config.distill_min_visits)
    tables = {
        "sft": [{"prompt": decode(row["input_ids"][: row["completion_mask"].index(1)]),
                 "completion": decode(row["input_ids"][row["completion_mask"].index(1):])} for row in sft],
        "dpo": [{"prompt": decode(row["prompt_ids"]), "chosen": decode(row["chosen_ids"]),
                 "rejected": decode(row["rejected_ids"])} for row in dpo],
        "distill": [{"prompt": decode(row["input_ids"]), "children": row["children"], "targets": row["visits"]}
                    for row in distill]}
    out = Path(out) if out is not None else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        Dataset.from_list(rows).save_to_disk(str(out / name)) if rows else None
        (out / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {name: len(rows) for name, rows in tables.items()}


__all__ = ["export_run"]
