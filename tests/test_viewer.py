"""The HTML tree viewer: its data is the tree's and the episode's, and the page works in a real
headless browser (Debian's Chromium through Selenium; ``.ci/run`` installs both). Without a browser
the browser test skips, except where ``TOKENTREE_REQUIRE_BROWSER=1`` (set by ``.ci/run``)."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from agents import EnsembleGreedy, EpisodeStore, MCTSAgent
from agents.search import MCTSConfig
from agents.viewer import view_data, write_view
from tokentree_env import TokenTreeEnv
from tokentree_env.errors import ConfigError


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One MCTS episode on the zoo, stored, with the env's trees saved as a run would."""
    folder = tmp_path_factory.mktemp("run")
    env = TokenTreeEnv(max_new_tokens=16)
    store = EpisodeStore(folder / "episodes.jsonl")
    store.append(MCTSAgent(MCTSConfig(num_simulations=4)).run_episode(env, options={"prompt": "12+30+41="}))
    env.save_trees(folder / "checkpoints" / "iter-0" / "trees")
    env.close()
    return folder


def page_data(path: Path) -> dict:
    return json.loads(re.search(r'type="application/json">(.*?)</script>', path.read_text(), re.DOTALL).group(1)
                      .replace("<\\/", "</"))


def test_the_view_of_a_run_holds_the_tree_the_path_and_the_search_statistics(searched):
    out = write_view(searched)
    data = page_data(out)
    episode = EpisodeStore(searched / "episodes.jsonl").records()[-1]
    path = [n for n in data["nodes"] if n.get("on_path")]
    assert len(path) == len(episode["tokens"]) + 1  # the root and one node per generated token
    assert [n["token"] for n in path[1:]] == episode["tokens"]
    assert data["header"]["reward_terms"] == episode["reward_terms"]
    first = path[1]
    assert {"visits", "q", "weightage", "prior", "votes", "proposed_by", "right", "reference"} <= set(first)
    assert sum(n.get("visits", 0) for n in data["nodes"] if n["parent"] == 0) == pytest.approx(1.0)
    assert "<script src=" not in out.read_text() and "http" not in out.read_text().split("<body>")[0]


def test_a_tree_file_or_an_episode_store_alone_can_be_viewed_and_bad_input_is_explained(searched, tmp_path):
    tree_file = next((searched / "checkpoints" / "iter-0" / "trees").glob("*.json"))
    assert len(page_data(write_view(tree_file, tmp_path / "t.html"))["nodes"]) > 16
    assert page_data(write_view(searched / "episodes.jsonl", tmp_path / "e.html"))["header"]["completion"]
    with pytest.raises(ConfigError, match="nothing to view"):
        write_view(tmp_path / "missing")
    with pytest.raises(ConfigError, match="out of range"):
        write_view(searched / "episodes.jsonl", tmp_path / "x.html", episode=5)
    with pytest.raises(ConfigError, match="nothing to view"):
        view_data(None, None, None)


def test_text_in_the_data_cannot_break_out_of_the_page(tmp_path):
    env = TokenTreeEnv(max_new_tokens=4, judge=None)
    result = EnsembleGreedy().run_episode(env, options={"prompt": "</script><b>1+1="})
    env.close()
    store = EpisodeStore(tmp_path / "e.jsonl")
    store.append(result)
    text = write_view(tmp_path / "e.jsonl", tmp_path / "e.html").read_text()
    assert "</script><b>" not in text and page_data(tmp_path / "e.html")["header"]["prompt"] == "</script><b>1+1="


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    if not (chromium and shutil.which("chromedriver") and webdriver):
        if os.environ.get("TOKENTREE_REQUIRE_BROWSER") == "1":
            pytest.fail("TOKENTREE_REQUIRE_BROWSER=1 but chromium, chromedriver or selenium is missing")
        pytest.skip("no headless Chromium + chromedriver + selenium here")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
                            options=options)


@pytest.mark.integration
def test_the_page_loads_without_errors_shows_the_root_and_opens_a_node_on_click(searched):
    out = write_view(searched)
    driver = _browser()  # skips (or fails where required) before anything imports selenium
    from selenium.webdriver.common.by import By

    try:
        driver.get(out.resolve().as_uri())
        root = driver.find_element(By.ID, "node-0")
        assert data_prompt(searched) in root.text
        closed = driver.find_elements(By.CSS_SELECTOR, "li.closed")
        assert closed, "subtrees off the chosen path start closed"
        target = closed[0]
        child_list = target.find_element(By.TAG_NAME, "ul")
        assert not child_list.is_displayed()
        target.find_element(By.CSS_SELECTOR, ":scope > .node").click()
        assert child_list.is_displayed() and "closed" not in target.get_attribute("class")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        artefacts = Path(os.environ.get("TOKENTREE_ARTEFACTS", "results/artefacts"))
        artefacts.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(artefacts / "tree_viewer.png"))
    finally:
        driver.quit()


def data_prompt(folder: Path) -> str:
    return EpisodeStore(folder / "episodes.jsonl").records()[-1]["prompt"]
