"""The README's Python snippets run as written (quick start, teachers and tree, agents)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(heading: str) -> str:
    section = README.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, f"no python block under {heading!r}"
    return blocks[0]


@pytest.mark.parametrize("heading", ['Quick start: `gym.make("TokenTree-v0")`', "Teachers and the token tree",
                                     "Agents and search"])
def test_readme_snippet_runs(heading, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets may write files (tree.json, ep.jsonl)
    exec(compile(snippet(heading), f"README: {heading}", "exec"), {})
