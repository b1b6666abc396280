"""The README's Python snippets run as written (quick start, teachers and tree, agents)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(heading: str) -> str:
    section = README.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, f"no python block under {heading!r}"
    return blocks[0]


@pytest.mark.parametrize("heading", ['Quick start: `gym.make("TokenTree-v0")`', "Teachers and the token tree",
                                     "Agents and search"])
def test_readme_snippet_runs(heading, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets may write files (tree.json, ep.jsonl)
    exec(compile(snippet(heading), f"README: {heading}", "exec"), {})


ROOT = README.parent
DOCS = [README, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_link_only_to_files_inside_the_repository(doc):
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert path.exists(), f"{doc.name} links to a missing file: {target}"
