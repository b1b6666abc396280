"""Plug in your own teacher (any Hugging Face causal LM: a hub id or a local path) and your own reward.

    python examples/custom_teacher_and_reward.py [--teacher PATH_OR_HUB_ID]

The default teacher is a local path (the zoo's GPT-2 teacher folder), to run offline; pass e.g.
``--teacher Qwen/Qwen2.5-0.5B-Instruct`` when the Hub is reachable.
"""

import argparse

from tokentree_env import HFTeacher, TokenTreeEnv
from tokentree_env.models.loader import resolve_model_path


def brevity_bonus(summary: dict) -> dict[str, float]:
    """A custom reward term: a bonus for answers of at most 8 characters (added to reward_terms)."""
    return {"brevity": 0.05 if len(summary["completion"].strip()) <= 8 else 0.0}


def main(teacher: str) -> None:
    env = TokenTreeEnv(teachers=[HFTeacher(teacher), "zoo:teacher-qwen2"], reward_fn=brevity_bonus)
    # a built-in task works out the answer to a prompt written as its own; any other prompt needs its answer,
    # or every answer scores task 0 (info["answer_known"] is then False)
    obs, info = env.reset(options={"prompt": "12+30+41=", "answer": "83"})
    done, total = False, 0.0
    while not done:  # follow the teacher panel's favourite child
        features = obs["features"].reshape(len(obs["action_mask"]), -1)
        action = int((features[:, 4] + (obs["action_mask"] - 1) * 1e9).argmax())
        obs, reward, terminated, truncated, info = env.step(action)
        total, done = total + reward, terminated or truncated
    print(f"{info['text']!r}: return {total:+.3f}, terms {info['reward_terms']}")
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=resolve_model_path("zoo:teacher-gpt2"))
    main(parser.parse_args().teacher)
