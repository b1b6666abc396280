"""A remote teacher behind an OpenAI-compatible server, beside a local one.

    python examples/remote_teacher.py --base-url http://127.0.0.1:8080/v1 --model teacher-llama

Serve the zoo's Llama teacher with llama.cpp first (``pip install '.[llama-server]'``)::

    python -c "from tokentree_env.models.gguf import export_gguf; export_gguf('zoo:teacher-llama', 'tl.gguf')"
    python -m llama_cpp.server --model tl.gguf --model_alias teacher-llama --port 8080 --logits_all true

Any vLLM, SGLang, llama-server, Ollama or OpenRouter endpoint works the same way.
"""

import argparse

from agents import EnsembleGreedy
from tokentree_env import OpenAITeacher, TokenTreeEnv


def main(base_url: str, model: str, min_entries: int = 10) -> None:
    remote = OpenAITeacher(base_url, model, top_logprobs=20, min_entries=min_entries)
    env = TokenTreeEnv(teachers=["zoo:teacher-qwen2", remote], judge=None)
    result = EnsembleGreedy().run_episode(env, options={"prompt": "75+96+99="})
    print(f"{result.prompt} {result.completion!r} correct={result.hard_reward:.0f}; "
          f"requests to the server: {remote.counters.forward_calls}")
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--min-entries", type=int, default=10)
    args = parser.parse_args()
    main(args.base_url, args.model, args.min_entries)
