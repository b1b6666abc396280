"""Why an arm of the coverage comparison wins or loses, read from its stored episodes: per source of data (the
teachers' greedy answers, the search on the prompts they left, the teachers' samples there), how many prompts
each source played and solved, and what each cost per prompt (process CPU seconds, forwarded tokens of every model).
"""

from __future__ import annotations

import json
from pathlib import Path

SOURCES = ("teachers", "search", "samples")


def sources(out: Path, runs: list[dict]) -> dict:
    """Per arm, per source: prompts, solved, CPU seconds and forwarded tokens (every model), summed over its seeds
    and rounds (one stored episode per prompt: the teachers' when one of them solved it, else the search's or the
    samples')."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for r in runs:
        path = Path(out) / "runs" / r["name"] / "episodes.jsonl"
        if not path.exists():
            continue
        arm = table.setdefault(r["arm"], {s: {"prompts": 0, "solved": 0, "cpu": 0.0, "tokens": 0} for s in SOURCES})
        for line in path.read_text().splitlines():
            e = json.loads(line)
            row = arm[e.get("source", "search")]
            row["prompts"] += 1
            row["solved"] += bool(e["hard_reward"] >= 0.5 or e.get("verified_answers"))
            row["cpu"] += e.get("cpu_seconds", 0.0)
            row["tokens"] += sum((e.get("forwarded_by_model") or {}).values())
    return table


def markdown(table: dict) -> list[str]:
    lines = ["| arm | source | prompts | solved | CPU s / prompt | forwarded tokens / prompt (every model) |",
             "|---|---|---|---|---|---|"]
    for arm, rows in table.items():
        for source, row in rows.items():
            if row["prompts"]:
                n = row["prompts"]
                lines.append(f"| {arm} | {source} | {n} | {row['solved']} ({row['solved'] / n:.0%}) | "
                             f"{row['cpu'] / n:.3f} | {row['tokens'] / n:,.0f} |")
    return lines


__all__ = ["SOURCES", "markdown", "sources"]
