"""Every example runs, top to bottom, on a tiny budget (the remote one against a real server lives in
``test_remote_server.py``, the real-model one in ``test_real_models.py``)."""

import runpy
import sys

import pytest

EXAMPLES = {
    "random_agent.py": ["--episodes", "1"],
    "mcts.py": ["--prompts", "1", "--simulations", "2"],
    "maskable_ppo.py": ["--timesteps", "64"],
    "custom_teacher_and_reward.py": [],
    "training_loop.py": ["--iterations", "1", "--prompts", "3"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / name
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), *EXAMPLES[name]])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()


def test_every_example_is_tested():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "examples"
    assert {p.name for p in folder.glob("*.py") if p.name != "__init__.py"} == set(EXAMPLES) | {"remote_teacher.py", "real_models.py"}
