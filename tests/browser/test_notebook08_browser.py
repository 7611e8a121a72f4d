"""Notebook 08 in a real browser: JupyterLab started headless, Debian's Chromium driven by Playwright.

Why: the explorer's widgets only come alive in a browser (nbval and papermill never draw them), and
its first case was once missing until a control moved. This test opens a tiny-profile copy of
``notebooks/08_case_studies.ipynb`` in JupyterLab, runs every cell, and then, like a user, types an
entity into the search box, picks a sentence and a pair, and moves the head slider. It asserts that
the first case is drawn as soon as the explorer appears, that the sentence list narrows to the
sentences with a matching entity, that the drawn case names the chosen pair, and that the attention
figure (the bytes of its ``<img>``) changes with the head. Screenshots of each step go to
``results/tiny/browser/`` (printed at the end).

The browser is a system Chromium (``apt-get install chromium``, or ``VMHAN_CHROMIUM=/path``); no
``playwright install`` download. Without one the test skips, and fails in CI (``CI`` set).
The tiny checkpoint and the explored test features are prepared through the package first (reused
when present), so the in-browser run only loads them.
"""

from __future__ import annotations

import ast
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterator

import nbformat
import pytest

from vmhan_lib.paths import REPO_ROOT, output_dirs

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

NOTEBOOK = REPO_ROOT / "notebooks" / "08_case_studies.ipynb"
CHROMIUM_ENV = "VMHAN_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = f"apt-get install chromium, or set {CHROMIUM_ENV}=/path/to/chromium"
SERVER_START_S = 120
"""Seconds JupyterLab may take to listen (cold imports on a busy 2-core machine)."""
NOTEBOOK_RUN_MS = 600_000
"""Milliseconds the notebook may take until the explorer appears (kernel start, model load, fixed examples)."""
REDRAW_MS = 120_000
"""Milliseconds one control may take to redraw the case (explain + figure on a busy machine)."""
UI_MS = 60_000
"""Milliseconds JupyterLab's own interface (menus, the notebook panel) may take."""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium executable (and Playwright), or skip (fail in CI) with how to install one;
    checked before anything is trained or started."""
    pytest.importorskip("playwright.sync_api", reason="browser test needs playwright (pip install -r requirements.txt)")
    chosen = os.environ.get(CHROMIUM_ENV, "")
    if chosen:  # an explicit choice is used or reported, never silently replaced
        found = chosen if Path(chosen).is_file() else None
        where = f"{CHROMIUM_ENV}={chosen} is not a file"
    else:
        found = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
        where = f"no {' or '.join(CHROMIUM_NAMES)} on PATH"
    if found is None:
        message = f"browser test needs Chromium ({where}): {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _parameters(path: Path) -> dict[str, object]:
    """The literals of a notebook's ``parameters`` cell."""
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}


@dataclass(frozen=True)
class Prepared:
    """What the test needs to know of the explored test instances: an entity query that narrows the
    sentences, the sentence labels it should leave, and the pair labels of each sentence."""

    all_sentences: list[str]
    query: str
    narrowed: list[str]
    pairs_of: dict[str, list[str]]


@pytest.fixture(scope="module")
def prepared(mnre_dir: Path) -> Prepared:
    """Train the tiny checkpoint notebook 08 explains when missing (a few minutes; reused after),
    build the node features of its explored test instances (cached for the notebook), and choose an
    entity query: the longest part of an entity name that leaves at least two sentences but not all,
    a sentence with several pairs among them after the first (so that picking it changes the
    selection)."""
    from vmhan_lib.analysis.case_study import CaseStudyExplorer
    from vmhan_lib.config import run_config
    from vmhan_lib.train.checkpoints import ensure_best_checkpoint
    from vmhan_lib.train.jobs import Job

    params = _parameters(NOTEBOOK)
    config = run_config("tiny", str(mnre_dir), {})
    checkpoint = ensure_best_checkpoint(config, Job(params["variant"], params["seed"]), train_if_missing=True,
                                        progress=False)
    explorer = CaseStudyExplorer.from_checkpoint(checkpoint, params["max_test_instances"], data_dir=str(mnre_dir))
    every = explorer.sentence_options()
    several = set(explorer.examples_with_several_pairs(count=len(every)))
    parts = {name.lower()[i:i + size] for x in explorer.instances for name in (x.head.name, x.tail.name)
             for size in range(3, 9) for i in range(len(name) - size + 1)}
    for query in sorted((part for part in parts if part == part.strip()), key=lambda part: (-len(part), part)):
        narrowed = explorer.sentence_options(query)
        if 2 <= len(narrowed) < len(every) and any(first in several for _, first in narrowed[1:]):
            break
    else:
        pytest.fail("no part of an entity name narrows the explored sentences to a few, one with several pairs")
    pairs_of = {label: [pair for pair, _ in explorer.pair_options(first)] for label, first in every}
    return Prepared([label for label, _ in every], query, [label for label, _ in narrowed], pairs_of)


def _free_port() -> int:
    """A TCP port free on localhost now (the server is told not to try others)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Lab:
    """The running JupyterLab: the notebook's URL (token included) and the server's log lines so far."""

    url: str
    log: list[str]


@pytest.fixture(scope="module")
def lab(prepared: Prepared, mnre_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free port with a token, serving a tiny-profile copy of notebook 08 from a
    temporary root, with isolated settings, the venv's kernel and the worktree's package."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    root = tmp_path_factory.mktemp("lab")
    served = root / "notebooks"
    served.mkdir()
    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), {"profile": "tiny", "data_dir": str(mnre_dir)})
    nbformat.write(nb, served / NOTEBOOK.name)
    settings = root / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, VMHAN_PROFILE="tiny", VMHAN_DATA=str(mnre_dir), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", JUPYTER_CONFIG_DIR=str(root / "config"),
               JUPYTER_RUNTIME_DIR=str(root / "runtime"), IPYTHONDIR=str(root / "ipython"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])))
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
        f"--LabApp.user_settings_dir={root / 'user-settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    log: list[str] = []
    listening: queue.Queue[bool] = queue.Queue()

    def read_log() -> None:
        for line in server.stderr:
            log.append(line)
            if f":{port}/" in line:
                listening.put(True)
        listening.put(False)  # the server ended

    threading.Thread(target=read_log, daemon=True).start()
    try:
        try:
            started = listening.get(timeout=SERVER_START_S)
        except queue.Empty:
            started = False
        assert started, f"JupyterLab did not start within {SERVER_START_S} s:\n{''.join(log[-40:])}"
        yield Lab(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", log)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server's own session; it shuts its kernel down
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)


PAIR_LABEL = re.compile(r"^(?P<head>.+?) -> (?P<tail>.+?)\s+\(gold ")


def _pair_text(label: str) -> str:
    """``head -> tail`` of a pair option label, as the drawn summary names it."""
    match = PAIR_LABEL.match(label)
    assert match, f"unexpected pair label {label!r}"
    return f"pair: {match['head']} -> {match['tail']}"


def _explore(playwright_api: ModuleType, page: Page, url: str, prepared: Prepared, shots: Path) -> None:
    """Open and run the notebook, then search, pick a sentence and a pair, move the head slider,
    asserting what each step shows; a screenshot after each step."""
    expect = playwright_api.expect
    page.goto(url)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # Run All before the kernel is up asks for a kernel instead: wait until it is idle.
    page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").wait_for()
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    box = page.locator(".vmhan-explorer")
    failure = page.locator(".jp-OutputArea-output", has_text="Traceback (most recent call last)")
    box.or_(failure).first.wait_for(timeout=NOTEBOOK_RUN_MS)
    assert failure.count() == 0, f"notebook 08 failed in the browser:\n{failure.first.inner_text()}"
    expect(page.locator(".jp-OutputArea-output", has_text="profile=tiny; ")).to_have_count(1)
    search = box.locator(".vmhan-search input")
    sentence = box.locator(".vmhan-sentence select")
    pair = box.locator(".vmhan-pair select")
    case = box.locator(".vmhan-case")
    figure = case.locator(".jp-RenderedImage[data-mime-type='image/png'] img")  # the sample images are JPEG
    png = re.compile(r"^data:image/png;base64,")

    # The first case is drawn as soon as the explorer appears, naming the selected pair.
    expect(sentence.locator("option")).to_have_count(len(prepared.all_sentences))
    expect(case).to_contain_text(_pair_text(prepared.pairs_of[prepared.all_sentences[0]][0]), timeout=REDRAW_MS)
    expect(figure).to_have_attribute("src", png)
    box.scroll_into_view_if_needed()
    page.screenshot(path=shots / "1_first_case.png")

    # The entity search narrows the sentences to those with a matching entity and draws the first.
    search.fill(prepared.query)
    expect(sentence.locator("option")).to_have_count(len(prepared.narrowed), timeout=REDRAW_MS)
    expect(case).to_contain_text(_pair_text(prepared.pairs_of[prepared.narrowed[0]][0]), timeout=REDRAW_MS)
    shown = [" ".join(o.split()) for o in sentence.locator("option").all_inner_texts()]  # no-break spaces
    assert shown == [" ".join(label.split()) for label in prepared.narrowed]
    assert len(shown) < len(prepared.all_sentences)
    page.screenshot(path=shots / "2_searched.png")

    # Pick a later matching sentence with several pairs, then its second pair.
    chosen = next(label for label in prepared.narrowed[1:] if len(prepared.pairs_of[label]) > 1)
    sentence.select_option(index=prepared.narrowed.index(chosen))
    pairs = prepared.pairs_of[chosen]
    expect(pair.locator("option")).to_have_count(len(pairs), timeout=REDRAW_MS)
    expect(case).to_contain_text(_pair_text(pairs[0]), timeout=REDRAW_MS)
    pair.select_option(index=1)
    expect(case).to_contain_text(_pair_text(pairs[1]), timeout=REDRAW_MS)
    expect(figure).to_have_attribute("src", png)
    before = figure.get_attribute("src")
    box.scroll_into_view_if_needed()
    page.screenshot(path=shots / "3_pair_chosen.png")

    # Moving the head slider (keyboard on its handle) redraws the attention figure of the same pair.
    handle = box.locator(".vmhan-head .noUi-handle")
    handle.focus()
    handle.press("ArrowRight")
    expect(box.locator(".vmhan-head .widget-readout")).to_have_text("2")
    expect(figure).not_to_have_attribute("src", before, timeout=REDRAW_MS)
    expect(figure).to_have_attribute("src", png)
    after = figure.get_attribute("src")
    assert after != before
    expect(case).to_contain_text(_pair_text(pairs[1]))
    box.scroll_into_view_if_needed()
    page.screenshot(path=shots / "4_head_2.png")


def test_notebook08_explorer_in_chromium(chromium: str, prepared: Prepared, lab: Lab,
                                         record_property: Callable[[str, object], None]) -> None:
    from playwright import sync_api as playwright_api

    shots = output_dirs("tiny")[0] / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):  # screenshots of an earlier run would mislead
        old.unlink()
    record_property("screenshots", str(shots))  # named in the terminal summary (tests/browser/conftest.py)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.set_default_timeout(UI_MS)
            try:
                _explore(playwright_api, page, lab.url, prepared, shots)
            except Exception:
                page.screenshot(path=shots / "failure.png")
                print(f"failure screenshot: {shots / 'failure.png'}\nJupyterLab log (end):\n{''.join(lab.log[-40:])}")
                raise
        finally:
            browser.close()
