"""Train the built-in model zoo from scratch, reproducibly, on the built-in task suite.

Run ``tokentree zoo train`` (or ``python -m tokentree_env.zoo.train``). Each model is
trained in its own process with one torch thread; ``--budget`` scales every model's steps
(the CI test runs a small fraction). The output is standard Hugging Face format.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

from tokentree_env.judge.protocol import JUDGE_ANSWER_END, JUDGE_CHECK_PREFIX, JUDGE_WORK_END
from tokentree_env.tasks.base import extract_final_answer
from tokentree_env.tasks.builtin import BUILTIN_TASKS, builtin_task
from tokentree_env.zoo.catalog import ZOO, ZooModel

BATCH_SIZE = 64
LEARNING_RATE = 3e-3
WARMUP_STEPS = 100
MAX_POSITIONS = 256
TOKENIZER_SEED = 7
LOG_EVERY = 100


def corrupt_answer(answer: str, rng: random.Random) -> str:
    """A wrong version of a numeric answer: its final number moved by a small or large delta."""
    head, sep, last = answer.rstrip(".").rpartition("=")
    value = int(last)
    delta = rng.choice([1, 2, 10, 20, rng.randint(1, 60)]) * rng.choice([-1, 1])
    wrong = value + delta if value + delta > 0 else value + abs(delta)
    return f"{head}{sep}{wrong}."


def corrupt_chain(prompt: str, style: str, rng: random.Random) -> str:
    """A wrong answer as a teacher would write it: one partial result moved by a small or large delta, and
    every later step computed on from the wrong value (so only that step is inconsistent)."""
    from tokentree_env.tasks.builtin import parse_chain, render

    terms, ops = parse_chain(prompt)
    k = rng.randrange(1, len(terms))
    partials = [terms[0]]
    for i, (op, term) in enumerate(zip(ops, terms[1:], strict=True), start=1):
        value = partials[-1] + term if op == "+" else partials[-1] - term
        if i == k:
            delta = rng.choice([1, 2, 10, 20, rng.randint(1, 60)]) * rng.choice([-1, 1])
            value = value + delta if value + delta >= 0 else value - delta
        partials.append(value)
    return render(terms, ops, partials, style)


CHAIN_STYLES = ("step", "explicit", "partials")
"""The styles a ``"chain:N"`` pre-training example is written in (one drawn per example)."""


def chain_step(task: str, rng: random.Random) -> tuple[str, str]:
    """One step of a chain task's problem, on its own: ``"P op T="`` -> ``"R."``, where ``P`` is the partial result
    so far (the first term at the first step), ``T`` the next term and ``R`` the new partial result. The skill each
    step of a chain answer uses, without the chain."""
    from tokentree_env.tasks.builtin import parse_chain

    terms, ops = parse_chain(builtin_task(task).sample(rng).prompt)
    partials = [terms[0]]
    for op, term in zip(ops, terms[1:], strict=True):
        partials.append(partials[-1] + term if op == "+" else partials[-1] - term)
    k = rng.randrange(len(ops))
    return f"{partials[k]}{ops[k]}{terms[k + 1]}=", f"{partials[k + 1]}."


def buggy_answer(task: str, bugs: Sequence[str], style: str, rng: random.Random,
                 given: int | None = None) -> tuple[str, str, str]:
    """A problem of ``task`` and the answer of a writer with ``bugs``: ``(prompt, shown, written)``.

    ``shown`` is the right chain's first ``given`` steps (none when 0; drawn uniformly from 0 to the number of
    operations when None), as another writer would have left them; ``written`` is the writer's continuation, every
    step worked from the last result written by :func:`tokentree_env.tasks.skills.column_step` with its bugs. So
    the wrong rule is applied consistently, from its own results and from right ones alike. Problems whose chain
    would go below zero are redrawn."""
    import re

    from tokentree_env.errors import ConfigError
    from tokentree_env.tasks.builtin import parse_chain, render
    from tokentree_env.tasks.skills import chain_partials, column_step

    for _ in range(1000):
        problem = builtin_task(task).sample(rng)
        terms, ops = parse_chain(problem.prompt)
        k = rng.randrange(len(terms)) if given is None else given
        partials = chain_partials(terms, ops)[:max(1, k)]
        try:
            for op, term in zip(ops[len(partials) - 1:], terms[len(partials):], strict=True):
                partials.append(column_step(partials[-1], op, term, bugs))
        except ConfigError:
            continue
        steps = re.findall(r"[^=,.]*[=,.]", render(terms, ops, partials, style))
        return problem.prompt, "".join(steps[:k]), "".join(steps[k:])
    raise ConfigError(f"no problem of {task!r} keeps a chain with bugs {list(bugs)} at or above zero")


def sample_example(spec: ZooModel, rng: random.Random, mix: dict[str, float] | None = None
                   ) -> tuple[str, list[tuple[str, bool]]]:
    """One training example from the model's mixture (or ``mix``): a prompt and target segments, each
    ``(text, trained)``; untrained segments (a proposed answer shown to the judge) get no loss. A ``"step:TASK"``
    kind is one step of a chain task alone (:func:`chain_step`); a ``"chain:N"`` kind is a ``+``/``-`` chain of ``N``
    terms in one of :data:`CHAIN_STYLES`; a ``"skills:N"`` kind is a right ``chain5-skills`` chain of ``N`` terms in
    the spec's style. A teacher with ``bugs`` answers a task's problems with its wrong rules (:func:`buggy_answer`)."""
    mix = mix or spec.mix
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    if spec.bugs and kind in BUILTIN_TASKS:  # a right prefix (untrained), then the writer's own rule
        prompt, shown, written = buggy_answer(kind, spec.bugs, spec.style, rng)
        return prompt, [(shown, False), (written, True)] if shown else [(written, True)]
    if kind.startswith("skills:"):
        from tokentree_env.tasks.builtin import sample_skills

        problem = sample_skills(rng, int(kind.removeprefix("skills:")))
        return problem.prompt, [(problem.solutions[spec.style], True)]
    if kind.startswith("step:"):
        prompt, answer = chain_step(kind.removeprefix("step:"), rng)
        return prompt, [(answer, True)]
    if kind.startswith("chain:"):  # a +/- chain of N terms (not a built-in task's length), in any of its styles
        from tokentree_env.tasks.builtin import sample_chain

        problem = sample_chain(rng, int(kind.removeprefix("chain:")))
        return problem.prompt, [(problem.solutions[rng.choice(CHAIN_STYLES)], True)]
    if kind.startswith("check:"):  # a checker's verdict on a whole answer: no working of its own
        problem = builtin_task(kind.removeprefix("check:")).sample(rng)
        style, correct = rng.choice(spec.judge_styles), rng.random() < 0.5
        answer = problem.solutions[style] if correct else corrupt_chain(problem.prompt, style, rng)
        shown = JUDGE_WORK_END + answer + JUDGE_ANSWER_END
        return JUDGE_CHECK_PREFIX + problem.prompt, [(shown, False), ("yn"[not correct], True)]
    if kind == "verdict":
        problem = builtin_task(rng.choice(["chain3", "chain3", "add2"])).sample(rng)
        answer = problem.solutions[rng.choice(["step", "terse"])]
        correct = rng.random() < 0.5
        if not correct:
            answer = corrupt_answer(answer, rng)
        work = problem.solutions["step"].rstrip(".") + JUDGE_WORK_END
        shown = extract_final_answer(answer) + JUDGE_ANSWER_END
        return JUDGE_CHECK_PREFIX + problem.prompt, [(work, True), (shown, False), ("yn"[not correct], True)]
    problem = builtin_task(kind).sample(rng)
    style = rng.choice(spec.judge_styles) if spec.role == "judge" else spec.style
    return problem.prompt, [(problem.solutions.get(style, problem.solutions["step"]), True)]


def tokenizer_corpus(n: int = 4000, seed: int = TOKENIZER_SEED,
                     tasks: Sequence[str] = ("chain3", "add2", "reverse")) -> list[str]:
    """Texts of every task and style, to train the zoo's BPE tokenizers on."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        for name in tasks:
            p = builtin_task(name).sample(rng)
            texts += [p.prompt + s for s in p.solutions.values()]
    return texts


def build_model(spec: ZooModel, vocab_size: int, special_ids: dict[str, int]):
    """A freshly initialised model of the spec's architecture (hidden size, layers, window)."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MistralConfig, Qwen2Config

    common = dict(vocab_size=vocab_size, tie_word_embeddings=True, **special_ids)
    h, n_layers = spec.hidden, spec.layers
    if spec.arch == "gpt2":
        drop = {} if spec.dropout is None else {k: spec.dropout for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
        config = GPT2Config(n_embd=h, n_layer=n_layers, n_head=4, n_positions=MAX_POSITIONS, **drop, **common)
    else:
        cls = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}[spec.arch]
        extra = {"sliding_window": None} if spec.arch == "mistral" else {}
        config = cls(hidden_size=h, intermediate_size=4 * h, num_hidden_layers=n_layers,
                     num_attention_heads=4, num_key_value_heads=4,
                     max_position_embeddings=MAX_POSITIONS, **extra, **common)
    return AutoModelForCausalLM.from_config(config)


def _encode(tok, prompt: str, segments: list[tuple[str, bool]], bos: int, eos: int) -> tuple[list[int], list[int]]:
    """Ids ``[bos, prompt, segments..., eos]`` and labels: loss on trained segments and EOS only."""
    ids = [bos, *tok.encode(prompt, add_special_tokens=False).ids]
    labels = [-100] * len(ids)
    for text, trained in segments:
        seg = tok.encode(text, add_special_tokens=False).ids
        ids += seg
        labels += seg if trained else [-100] * len(seg)
    return ids + [eos], labels + [eos]


def train_one(spec: ZooModel, out_dir: str, budget: float = 1.0, snapshots: Sequence[int] = ()) -> dict:
    """Train one zoo model and save it (model + tokenizer + card) under ``out_dir/NAME``; with ``snapshots``, also
    a copy after each of those steps under ``out_dir/NAME@STEP`` (to choose a ``stop_at``)."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from tokentree_env.zoo.tokenizers import BOS, EOS, PAD, build_tokenizer, wrap

    torch.set_num_threads(1)
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    tok = build_tokenizer(spec.tokenizer, tokenizer_corpus(tasks=spec.corpus))
    ids = {"bos_token_id": tok.token_to_id(BOS), "eos_token_id": tok.token_to_id(EOS),
           "pad_token_id": tok.token_to_id(PAD)}
    model = build_model(spec, tok.get_vocab_size(), ids)
    model.train()
    steps = max(20, int(spec.steps * budget))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(WARMUP_STEPS, steps // 10), steps)
    losses, started, window = [], time.process_time(), []
    pretrain_steps = int(spec.pretrain_steps * budget)
    stop = int(spec.stop_at * budget) if spec.stop_at else steps
    for step in range(stop):
        mix = spec.pretrain if step < pretrain_steps and spec.pretrain else spec.mix  # a curriculum's first phase
        batch = [_encode(tok, *sample_example(spec, rng, mix), ids["bos_token_id"], ids["eos_token_id"])
                 for _ in range(BATCH_SIZE)]
        width = max(len(x) for x, _ in batch)
        input_ids = torch.tensor([x + [ids["pad_token_id"]] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        if (step + 1) % LOG_EVERY == 0 or step + 1 == stop:
            losses.append({"step": step + 1, "loss": sum(window) / len(window)})
            window = []
        if step + 1 in snapshots:
            model.eval()
            model.save_pretrained(Path(out_dir) / f"{spec.name}@{step + 1}")
            wrap(tok).save_pretrained(Path(out_dir) / f"{spec.name}@{step + 1}")
            model.train()
    model.eval()
    path = Path(out_dir) / spec.name
    model.save_pretrained(path)
    wrap(tok).save_pretrained(path)
    card = {"spec": asdict(spec), "steps": stop, "budget": budget, "cpu_seconds": time.process_time() - started,
            "parameters": sum(p.numel() for p in model.parameters()), "losses": losses}
    (path / "zoo_card.json").write_text(json.dumps(card, indent=1))
    return card


def train_zoo(out_dir: str | Path, names: Sequence[str] | None = None, *, budget: float = 1.0,
              jobs: int = 2, progress: bool = True) -> dict[str, dict]:
    """Train the named zoo models (all by default) with ``jobs`` processes; returns their cards."""
    names = list(names or ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        from tokentree_env.errors import ConfigError
        raise ConfigError(f"unknown zoo model(s) {unknown}; the zoo has {sorted(ZOO)}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    from rich.progress import Progress

    cards: dict[str, dict] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool, \
            Progress(disable=not progress) as bar:
        task = bar.add_task("training the zoo", total=len(names))
        longest_first = sorted(names, key=lambda n: -ZOO[n].steps * ZOO[n].layers)
        futures = {pool.submit(train_one, ZOO[n], str(out_dir), budget): n for n in longest_first}
        for future, name in futures.items():
            cards[name] = future.result()
            bar.update(task, advance=1, description=f"trained {name}")
    return cards


def main(argv: Sequence[str] | None = None) -> None:
    from tokentree_env.models.loader import zoo_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(zoo_dir()), help="output folder (default: the package's zoo)")
    parser.add_argument("--models", nargs="*", default=None, help="zoo names to train (default: all)")
    parser.add_argument("--budget", type=float, default=1.0, help="fraction of each model's training steps")
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    args = parser.parse_args(argv)
    cards = train_zoo(args.out, args.models, budget=args.budget, jobs=args.jobs)
    for name, card in cards.items():
        print(f"{name}: {card['steps']} steps, loss {card['losses'][0]['loss']:.3f} -> "
              f"{card['losses'][-1]['loss']:.3f}, {card['cpu_seconds']:.0f} CPU-s, {card['parameters']} params")


if __name__ == "__main__":
    main()
