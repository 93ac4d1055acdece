"""The shipped workflows in the real ComfyUI frontend (comfyui-frontend-package), in headless Debian Chromium
driven by Playwright: each loads with no missing-nodes or schema dialog and with every node on the canvas; the
basic one is queued from the page and its output image appears. Screenshots go to test-artifacts/frontend/.

Set ICEDIT_WRITE_THUMBNAILS=1 to also write each screenshot as the workflow's template thumbnail
(workflows/<name>.jpg)."""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request

import pytest
from PIL import Image

from icedit_testing.ui_smoke import set_widget, smoke_ui_workflow
from icedit_testing import REPO

ARTIFACTS = os.path.join(REPO, "test-artifacts", "frontend")
WORKFLOWS = sorted(name for name in os.listdir(os.path.join(REPO, "workflows")) if name.endswith(".json"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def page(comfy_server):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it where apt-get runs as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # A first visit opens the template browser over the canvas; this user has seen it.
    request = urllib.request.Request(comfy_server.url + "/settings/Comfy.TutorialCompleted", data=b"true",
                                     method="POST")
    urllib.request.urlopen(request).read()
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        tab = browser.new_page(viewport={"width": 2000, "height": 1100})
        errors = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(comfy_server.url)
        tab.wait_for_function("() => window.app && window.app.graph && window.app.canvas", timeout=180_000)
        tab.page_errors = errors
        yield tab
        browser.close()


def load(page, workflow: dict) -> None:
    page.evaluate("async workflow => { await window.app.loadGraphData(workflow); }", workflow)
    page.wait_for_timeout(800)
    page.keyboard.press("Escape")
    # Frame the whole graph (the frontend's "Fit view", key ".") for the screenshot.
    page.mouse.click(1000, 1050)
    page.keyboard.press(".")
    page.wait_for_timeout(500)


def screenshot(page, name: str) -> str:
    path = os.path.join(ARTIFACTS, f"{name}.png")
    page.screenshot(path=path)
    if os.environ.get("ICEDIT_WRITE_THUMBNAILS") and f"{name}.json" in WORKFLOWS:
        with Image.open(path) as shot:
            thumbnail = shot.convert("RGB").crop((60, 60, 2000, 1100)).resize((600, 322), Image.LANCZOS)
            thumbnail.save(os.path.join(REPO, "workflows", f"{name}.jpg"), quality=82)
    return path


@pytest.mark.parametrize("name", WORKFLOWS)
def test_each_shipped_workflow_opens_cleanly(page, name):
    with open(os.path.join(REPO, "workflows", name), encoding="utf-8") as handle:
        workflow = json.load(handle)
    page.page_errors.clear()
    load(page, workflow)
    assert page.page_errors == []  # no uncaught error in the page while it loads
    assert page.get_by_text("missing nodes", exact=False).count() == 0
    assert page.get_by_text("Invalid workflow", exact=False).count() == 0
    on_canvas = page.evaluate("() => window.app.graph._nodes.map(n => n.type)")
    assert sorted(on_canvas) == sorted(node["type"] for node in workflow["nodes"])
    links = page.evaluate("() => Object.keys(window.app.graph.links).length || window.app.graph.links.size")
    assert links == len(workflow["links"])
    assert os.path.getsize(screenshot(page, name[:-len(".json")])) > 10_000


def test_the_basic_workflow_runs_from_the_page(page, comfy_server, tmp_path):
    source = tmp_path / "browser_source.png"
    Image.new("RGB", (100, 70), (200, 100, 50)).save(source)
    image_name = comfy_server.upload_image(source.read_bytes())
    info = comfy_server.object_info()
    with open(os.path.join(REPO, "workflows", "icedit_basic.json"), encoding="utf-8") as handle:
        workflow = smoke_ui_workflow(json.load(handle), info)
    for node_type, input_name, value in (("LoadImage", "image", image_name),
                                         ("ICEditPromptEncode", "instruction", "make the wall blue"),
                                         ("KSampler", "seed", 11), ("KSampler", "steps", 2),
                                         ("ICEditDiptych", "panel_width", 64)):
        set_widget(workflow, info, node_type, input_name, value)
    load(page, workflow)
    before = set(comfy_server.get_json("/history"))
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    deadline = time.monotonic() + 300
    entry = None
    while time.monotonic() < deadline:
        new = {k: v for k, v in comfy_server.get_json("/history").items() if k not in before}
        if new and all(v["status"].get("completed") is not None for v in new.values()):
            entry = next(iter(new.values()))
            break
        time.sleep(0.5)
    assert entry is not None and entry["status"]["status_str"] == "success"
    page.wait_for_function("() => Array.from(document.querySelectorAll('img'))"
                           ".some(i => i.src.includes('/view?filename=edited_'))", timeout=60_000)
    # The prompt node shows its token report (web/js/show_text.js), and it is not saved with the workflow.
    shown = page.evaluate("() => window.app.graph._nodes.filter(n => n.type === 'ICEditPromptEncode').flatMap("
                          "n => (n.widgets || []).filter(w => w.name === 'icedit_run_note').map(w => w.value))")
    assert len(shown) == 1 and "T5 tokens" in shown[0] and shown[0].endswith("nothing cut.")
    saved = page.evaluate("() => window.app.graph.serialize().nodes.find(n => n.type === 'ICEditPromptEncode')"
                          ".widgets_values")
    assert not any("T5 tokens" in str(value) for value in saved)
    screenshot(page, "run_basic")
