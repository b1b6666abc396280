"""Expansion speed: overhead over the bare forward passes, and no re-encoding along a path.

Measures, in one run, on the zoo stack (3 teachers + primary) and on a benchmark-size stack
(same architectures and tokenizers, hidden size 256, 4 layers, random weights):

1. ``ratio`` = time to expand a node (everything: re-tokenising for foreign teachers, cache
   look-up, batched forward, mapping into the primary vocabulary, proposals, merging) divided
   by the sum of the bare 1-token cached forwards of every model that expansion calls,
   timed on the same contexts. Median over the steps of a 100-token path.
2. forwarded tokens per generated token along that path (EOS masked) at 25, 50 and 100
   tokens: cumulative (includes reading the prompt once) and over the last window (must stay
   at about one token per model per step: nothing is re-encoded).
3. model calls of a revisit of every node of the path (must be 0).

Run: ``python -m benchmarks.expansion`` (``--steps 20`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from tokentree_env.models.loader import LoadedModel, load_model
from tokentree_env.teachers import HFTeacher
from tokentree_env.tree import Expander, ExpansionConfig

ZOO_STACK = ("zoo:teacher-llama", "zoo:teacher-qwen2", "zoo:teacher-gpt2")
PROMPT = "12+35+20="
REAL_PROMPT = "Question: What is seven plus five?\nAnswer:"
CHECKPOINTS = (25, 50, 100)


def benchmark_size(lm: LoadedModel, hidden: int = 256, layers: int = 4) -> LoadedModel:
    """The same architecture and tokenizer as ``lm``, at benchmark size with random weights."""
    from transformers import AutoModelForCausalLM

    fields = lm.model.config.to_dict()
    fields.pop("layer_types", None)  # sized for the old depth; rebuilt from num_hidden_layers
    if fields["model_type"] == "gpt2":
        fields.update(n_embd=hidden, n_layer=layers)
    else:
        fields.update(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers)
    config = lm.model.config.__class__.from_dict(fields)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    return LoadedModel(f"{lm.name}@d{hidden}", model, lm.tokenizer, lm.path)


REAL_STACK = ("pkg:gemma3-270m", "pkg:smollm2-135m-instruct")
"""The real stack: Gemma 3 270M and SmolLM2-135M-Instruct as teachers, SmolLM2 as the primary."""


def make_stack(size: str) -> tuple[list[HFTeacher], HFTeacher]:
    """Teachers and primary of a stack: the zoo's, the same at benchmark size, or the real models."""
    if size == "real":
        gemma, smol = (load_model(s) for s in REAL_STACK)
        return [HFTeacher(gemma), HFTeacher(smol)], HFTeacher(smol, name="primary")
    lms = [load_model(s) for s in (*ZOO_STACK, "zoo:primary")]
    if size == "benchmark":
        lms = [benchmark_size(lm) for lm in lms]
    teachers = [HFTeacher(lm) for lm in lms[:-1]]
    return teachers, HFTeacher(lms[-1])


@torch.inference_mode()  # the cheapest way to run the bare forwards, as the expansion does
def bare_forward_seconds(expander: Expander, tree, parent: int, token: int) -> float:
    """Sum over models of one timed 1-token forward from the parent's cached state."""
    from transformers import DynamicCache

    total = 0.0
    child_ctx = tree.context(tree.child(parent, token), expander.decode)
    for model in expander.models:
        ids = model.own_ids(child_ctx)
        base = model._cached_prefix(ids)  # what the expansion itself starts from
        new = torch.tensor([ids[len(base.ids):]]) if base else torch.tensor([ids])
        row = model.pool.slabs[base.kv.capacity][base.kv.row, :, :, :, :base.kv.length] if base else None
        cache = DynamicCache(ddp_cache_data=[(row[i, 0, None], row[i, 1, None]) for i in range(model.n_layers)]) \
            if base else None
        start = time.perf_counter()
        model.model(input_ids=new, cache=cache, use_cache=True)
        total += time.perf_counter() - start
    return total


def total_forwarded(expander: Expander) -> int:
    return sum(c["forwarded_tokens"] for c in expander.costs().values())


def run(size: str, steps: int) -> dict:
    """Walk one path of ``steps`` tokens, expanding each node; time and count everything."""
    teachers, primary = make_stack(size)
    expander = Expander(teachers, primary, primary.tokenizer, ExpansionConfig())
    tree = expander.new_tree(REAL_PROMPT if size == "real" else PROMPT, references=False)
    expander.expand(tree, [0])  # reads the prompt once
    start_tokens = total_forwarded(expander)
    node, ratios, expand_s, bare_s, at = 0, [], [], [], {}
    for step in range(1, steps + 1):
        slate = tree.nodes[node].slate
        token = next(int(t) for t in slate.tokens if t != primary.tokenizer.eos_token_id)
        bare = bare_forward_seconds(expander, tree, node, token)
        for model in expander.models:  # the bare timing must not leave the child cached
            model.store.discard(model.own_ids(tree.context(tree.child(node, token), expander.decode)))
        child = tree.child(node, token)
        begin = time.perf_counter()
        expander.expand(tree, [child])
        took = time.perf_counter() - begin
        ratios.append(took / bare)
        expand_s.append(took)
        bare_s.append(bare)
        node = child
        if step in CHECKPOINTS or step == steps:
            at[step] = total_forwarded(expander)
    path = list(tree.nodes[node].ids)
    calls_before = sum(c["forward_calls"] for c in expander.costs().values())
    expander.expand(tree, [tree.find(path[:i]) for i in range(tree.prompt_length, len(path) + 1)])
    revisit_calls = sum(c["forward_calls"] for c in expander.costs().values()) - calls_before
    marks = sorted(at)
    per_token = {str(k): {"cumulative": at[k] / k,
                          "window": (at[k] - (at[p] if p else start_tokens)) / (k - p)}
                 for p, k in zip([0, *marks[:-1]], marks, strict=True)}
    return {
        "stack": size,
        "models": [m.name for m in expander.models],
        "hidden_sizes": [getattr(m.model.config, "hidden_size", getattr(m.model.config, "n_embd", None))
                         for m in expander.models],
        "ratio_median": statistics.median(ratios),
        "ratio_p90": sorted(ratios)[int(0.9 * (len(ratios) - 1))],
        "expand_ms_median": 1e3 * statistics.median(expand_s),
        "bare_forwards_ms_median": 1e3 * statistics.median(bare_s),
        "prompt_tokens_read": start_tokens,
        "forwarded_tokens_per_generated_token": per_token,
        "revisit_model_calls": revisit_calls,
        "path_text": expander.decode(tree.path_tokens(node)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="path length in tokens")
    parser.add_argument("--stacks", nargs="*", default=["zoo", "benchmark"], choices=["zoo", "benchmark", "real"])
    parser.add_argument("--out", default="results/expansion.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {"benchmark": "expansion", "steps": args.steps, "torch_threads": 1,
               "runs": [run(size, args.steps) for size in args.stacks]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Expansion vs bare forwards (target: ratio <= 1.2 at benchmark size)")
    for col in ("stack", "ratio (median)", "expand ms", "bare fwd ms", "fwd tok/gen tok (window)", "revisit calls"):
        table.add_column(col)
    for r in results["runs"]:
        windows = " / ".join(f"{k}:{v['window']:.2f}" for k, v in r["forwarded_tokens_per_generated_token"].items())
        table.add_row(r["stack"], f"{r['ratio_median']:.3f}", f"{r['expand_ms_median']:.2f}",
                      f"{r['bare_forwards_ms_median']:.2f}", windows, str(r["revisit_model_calls"]))
    Console().print(table)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()


if __name__ == "__main__":
    main()
