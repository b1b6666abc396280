"""A self-contained HTML view of a token tree and of an episode played in it.

``tokentree view RUN_FOLDER | TREE.json | EPISODES.jsonl`` writes one HTML file with the data and the
script inline (no network, no CDN): nodes are tokens with their text; each shows its weightage, the
votes and the models that proposed it, right/wrong colouring, whether it continues a teacher's
reference answer, the panel's log-prob, the panel's weights over the teachers at the node (who is writing) and,
along a played episode, the search's visit share, Q and the env prior (weightage × similarity, normalised);
the chosen path is highlighted and open, other subtrees are
collapsed and open on click; the episode's reward terms head the page.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import numpy as np

from tokentree_env.errors import ConfigError
from tokentree_env.scoring.panel import Panel
from tokentree_env.tree.tree import LEGACY_PANEL


def _token_text(tokenizer, token: int) -> str:
    if token == tokenizer.eos_token_id:
        return "⟨eos⟩"
    return tokenizer.decode([token], skip_special_tokens=True).replace(" ", "␣").replace("\n", "⏎") or "∅"


def _tree_nodes(tree: dict, tokenizer) -> list[dict]:
    """Nodes of a saved tree (``TokenTree.to_json``) with each child's stats from its parent's slate."""
    nodes = [{"id": i, "parent": row["parent"], "token": row["token"], "children": []}
             for i, row in enumerate(tree["nodes"])]
    for node in nodes[1:]:
        nodes[node["parent"]]["children"].append(node["id"])
    for i, row in enumerate(tree["nodes"]):
        slate = row["slate"]
        if slate is None:
            continue
        by_token = {nodes[c]["token"]: c for c in nodes[i]["children"]}
        factors = row["factors"] or [1.0] * len(slate["tokens"])
        for j, token in enumerate(slate["tokens"]):
            if token not in by_token:  # a slate child never visited: show it as a leaf
                nodes.append({"id": len(nodes), "parent": i, "token": token, "children": []})
                nodes[i]["children"].append(len(nodes) - 1)
                by_token[token] = len(nodes) - 1
            n = nodes[by_token[token]]
            proposers = [m for m, p in enumerate(slate["proposed"][j]) if p]
            logprobs = slate["logprobs"][j]
            n.update(right=bool(slate["right"][j]), votes=int(slate["votes"][j]), reference=bool(slate["reference"][j]),
                     weightage=float(factors[j]) / len(slate["tokens"]), proposed_by=[f"model {m}" for m in proposers],
                     logprob=slate["panel"][j] if slate.get("panel") else None, teacher_logprobs=logprobs)
    _panel_weights(tree, nodes)
    for n in nodes:
        n["text"] = _token_text(tokenizer, n["token"]) if n["id"] else tree.get("root_text") or tree["prompt"]
    return nodes


def _panel_weights(tree: dict, nodes: list[dict]) -> None:
    """Each node's panel weights over the teachers (who is writing) and each child's panel log-prob where its slate
    did not record one (a tree from before slates did), both by the tree's own panel rule
    (:mod:`tokentree_env.scoring.panel`, the one place it is computed): from each node's own evidence when the tree
    kept it, else from its parent's slate (the teachers are the first columns of a slate's log-probs)."""
    teachers = len(tree.get("built_by", {}).get("teachers", []))
    if not teachers:
        return
    panel = Panel({k: v for k, v in (tree.get("panel") or LEGACY_PANEL).items() if v is not None}, teachers)
    stack = [(0, panel.root_log_weights)]
    while stack:
        i, log_weights = stack.pop()
        nodes[i]["weights"] = [round(float(w), 4) for w in np.exp(log_weights)]
        for c in nodes[i]["children"]:
            rows = nodes[c].get("teacher_logprobs")
            kept = tree["nodes"][c].get("evidence") if c < len(tree["nodes"]) else None
            evidence = kept if kept is not None else (rows[:teachers] if rows is not None else None)
            if evidence is None:
                continue
            evidence = np.asarray(evidence, dtype=np.float64)
            if nodes[c].get("logprob") is None:
                nodes[c]["logprob"] = float(panel.logprobs(log_weights, evidence[None])[0])
            if c < len(tree["nodes"]):
                stack.append((c, panel.child_log_weights(log_weights, evidence)))


def _overlay_episode(nodes: list[dict], episode: dict, tokenizer) -> None:
    """Mark the episode's path and attach each step's visits, Q, prior and provenance."""
    current = 0
    nodes[0]["on_path"] = True
    for i, step in enumerate(episode["records"]):
        children = {nodes[c]["token"]: c for c in nodes[current]["children"]}
        for j, token in enumerate(step["candidates"]):
            if token not in children:
                nodes.append({"id": len(nodes), "parent": current, "token": token, "children": [],
                              "text": _token_text(tokenizer, token)})
                nodes[current]["children"].append(len(nodes) - 1)
                children[token] = len(nodes) - 1
            n = nodes[children[token]]
            n["right"] = step["directions"][j] == "right" if step["directions"] else n.get("right")
            n["proposed_by"] = step["proposed_by"][j] if step["proposed_by"] else n.get("proposed_by", [])
            n["prior"] = step["prior"][j]
            if step["visits"]:
                n["visits"] = step["visits"][j]
            if step["q_values"]:
                n["q"] = step["q_values"][j]
        if step.get("panel_weights"):
            nodes[current]["weights"] = step["panel_weights"]
        if i >= len(episode["tokens"]):
            break
        current = children[episode["tokens"][i]]
        nodes[current]["on_path"] = True


def view_data(tree: dict | None, episode: dict | None, tokenizer) -> dict:
    """The page's data: nodes (root first) and the header (prompt, completion, reward terms)."""
    if tree is None and episode is None:
        raise ConfigError("nothing to view: give a tree, an episode or both")
    if tree is not None:
        nodes = _tree_nodes(tree, tokenizer)
    else:
        nodes = [{"id": 0, "parent": None, "token": None, "children": [], "text": episode["prompt"]}]
    if episode is not None:
        _overlay_episode(nodes, episode, tokenizer)
    header = {"prompt": (tree or episode)["prompt"]}
    if tree is not None and tree.get("built_by", {}).get("teachers"):
        header["teachers"] = ", ".join(name for name, _ in tree["built_by"]["teachers"])
    if episode is not None:
        header |= {k: episode[k] for k in ("agent", "completion", "hard_reward", "episode_return", "reward_terms",
                                           "terminal_reason") if k in episode}
    return {"nodes": nodes, "header": header}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TokenTree: __TITLE__</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.2em;margin:0 0 .4em} table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
ul{list-style:none;margin:0;padding-left:1.3em;border-left:1px dotted #bbb}
li{margin:2px 0} .node{cursor:pointer;padding:1px 5px;border-radius:4px;display:inline-block}
.tok{font-family:ui-monospace,monospace;font-weight:600;padding:0 4px;border-radius:3px}
.right .tok{background:#d8f3dc} .wrong .tok{background:#ffd6d6} .path{outline:2px solid #1d4ed8;background:#eef4ff}
.stat{color:#555;font-size:12px;margin-left:6px} .ref{color:#7c3aed;font-size:12px;margin-left:6px}
.closed>ul{display:none} .toggle{display:inline-block;width:1em;color:#888}
.legend span{margin-right:1.2em}
</style></head><body>
<h1>TokenTree search tree</h1>
<div id="header"></div>
<div class="legend"><span><span class="tok" style="background:#d8f3dc">right</span> right direction</span>
<span><span class="tok" style="background:#ffd6d6">wrong</span> wrong direction</span>
<span><span class="node path">blue outline</span> chosen path</span><span>writers: the panel's weights over the
teachers at the node, in the order of "teachers" above</span><span>click a node to open or close it</span></div>
<div id="tree"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const nodes = data.nodes;
function fmt(x, d) { return (typeof x === "number") ? x.toFixed(d) : null; }
function header() {
  const h = data.header, rows = [["prompt", h.prompt]];
  for (const k of ["teachers", "agent", "completion", "hard_reward", "episode_return", "terminal_reason"]) {
    if (h[k] !== undefined) rows.push([k, typeof h[k] === "number" ? h[k].toFixed(3) : String(h[k])]);
  }
  for (const [k, v] of Object.entries(h.reward_terms || {})) rows.push(["reward: " + k, Number(v).toFixed(3)]);
  const table = document.createElement("table");
  for (const [k, v] of rows) {
    const tr = table.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v;
  }
  document.getElementById("header").appendChild(table);
}
function render(id) {
  const n = nodes[id], li = document.createElement("li"), label = document.createElement("span");
  li.id = "node-" + id;
  label.className = "node" + (n.right === true ? " right" : n.right === false ? " wrong" : "") + (n.on_path ? " path" : "");
  const toggle = document.createElement("span");
  toggle.className = "toggle"; toggle.textContent = n.children.length ? "▸" : "";
  const tok = document.createElement("span");
  tok.className = "tok"; tok.textContent = n.text;
  label.append(toggle, tok);
  const stats = [];
  if (n.visits !== undefined) stats.push("N " + fmt(n.visits, 2));
  if (n.q !== undefined) stats.push("Q " + fmt(n.q, 3));
  if (n.weightage !== undefined) stats.push("w " + fmt(n.weightage, 3));
  if (n.prior !== undefined) stats.push("prior " + fmt(n.prior, 3));
  if (n.logprob !== undefined) stats.push("panel logp " + fmt(n.logprob, 2));
  if (n.weights) stats.push("writers " + n.weights.map(w => w.toFixed(2)).join("/"));
  if (n.votes !== undefined) stats.push("votes " + n.votes);
  if (n.proposed_by && n.proposed_by.length) stats.push("by " + n.proposed_by.join(", "));
  const s = document.createElement("span"); s.className = "stat"; s.textContent = stats.join(" · ");
  label.appendChild(s);
  if (n.reference) { const r = document.createElement("span"); r.className = "ref"; r.textContent = "reference"; label.appendChild(r); }
  li.appendChild(label);
  if (n.children.length) {
    const ul = document.createElement("ul");
    for (const c of n.children) ul.appendChild(render(c));
    li.appendChild(ul);
    if (!n.on_path && id !== 0) li.classList.add("closed");
    toggle.textContent = li.classList.contains("closed") ? "▸" : "▾";
    label.addEventListener("click", () => {
      li.classList.toggle("closed");
      toggle.textContent = li.classList.contains("closed") ? "▸" : "▾";
    });
  }
  return li;
}
header();
const root = document.createElement("ul"); root.appendChild(render(0));
document.getElementById("tree").appendChild(root);
</script></body></html>
"""


def render_html(data: dict) -> str:
    """The page for :func:`view_data`'s output; ``</`` is escaped so the data cannot close the script."""
    payload = json.dumps(data).replace("</", "<\\/")
    return PAGE.replace("__TITLE__", html.escape(data["header"]["prompt"])).replace("__DATA__", payload)


def _tree_for(folder: Path, prompt: str) -> dict | None:
    path = folder / f"{hashlib.sha1(prompt.encode()).hexdigest()[:16]}.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_view(source: str | Path, out: str | Path | None = None, *, episode: int = -1,
               primary: str | None = None) -> Path:
    """Write the HTML view of ``source``: a run folder (its latest trees and an episode of its store),
    a tree JSON file, or an episode store (JSONL). Returns the HTML file's path."""
    from tokentree_env.models import load_model
    from tokentree_env.zoo.catalog import DEFAULT_PRIMARY

    source = Path(source)
    if not source.exists():
        raise ConfigError(f"nothing to view at {source}: give a run folder, a tree .json or an episodes .jsonl")
    tree = record = None
    if source.is_dir():
        state = json.loads((source / "state.json").read_text()) if (source / "state.json").exists() else {}
        primary = primary or state.get("config", {}).get("primary")
        record = _episode(source / "episodes.jsonl", episode)
        checkpoints = sorted((source / "checkpoints").glob("iter-*"), key=lambda p: int(p.name.split("-")[1])
                             if p.name.split("-")[1].isdigit() else -1)
        if checkpoints:
            tree = _tree_for(checkpoints[-1] / "trees", record["prompt"])
    elif source.suffix == ".jsonl":
        record = _episode(source, episode)
    else:
        tree = json.loads(source.read_text())
    tokenizer = load_model(primary or DEFAULT_PRIMARY).tokenizer
    out = Path(out) if out else (source if source.is_dir() else source.parent) / "tree.html"
    out.write_text(render_html(view_data(tree, record, tokenizer)), encoding="utf-8")
    return out


def _episode(store_path: Path, index: int) -> dict:
    from agents.store import EpisodeStore

    records = EpisodeStore(store_path).records() if store_path.exists() else []
    if not records:
        raise ConfigError(f"no episodes in {store_path}")
    try:
        return records[index]
    except IndexError:
        raise ConfigError(f"episode {index} is out of range: {store_path} holds {len(records)}") from None
