"""Notebook 05's FilterExplorer in a real JupyterLab, driven by Debian's chromium through Playwright.

A JupyterLab server (127.0.0.1, random port, random token, root = a temporary copy of notebook 05
with an ICE-scores parameter so the ICE slider exists) is started, the notebook is opened and run,
the ICE slider is moved with the keyboard, and the explorer's count must follow — with no console
errors. The server is always shut down; the whole test is bounded by its timeout.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from toolqual_utils.heuristics import offline_verdicts
from toolqual_utils.io import read_instances, read_table
from toolqual_utils.selection import filter_instances, selection_frame
from conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "05_filter_explorer.ipynb"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
KEPT = re.compile(r"kept (\d+) of (\d+) instances")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _notebook_copy(folder: Path) -> Path:
    """Notebook 05 with ice_scores_path pointing at a small ICE table (every bundled id, scores 0..1)."""
    ids = [inst.id for path in sorted((ROOT / "data").glob("*.jsonl")) if not path.name.endswith(".rejects.jsonl")
           for inst in read_instances(path)]
    ice = folder / "ice.csv"
    ice.write_text("instance_id,ice_score\n" + "".join(
        f'"{i}",{k / max(1, len(ids) - 1):.4f}\n' for k, i in enumerate(ids)), encoding="utf-8")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = re.sub(r'^ice_scores_path = ""', f'ice_scores_path = "{ice}"', cell.source, flags=re.M)
    cell.source = re.sub(r"^ice_min = None", "ice_min = 0.0", cell.source, flags=re.M)
    assert str(ice) in cell.source and "ice_min = 0.0" in cell.source
    target = folder / NOTEBOOK.name
    nbformat.write(notebook, target)
    return target


@pytest.fixture()
def jupyterlab(tmp_path):
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("Debian's chromium is not installed: run `bash scripts/install_browser.sh` (or `make test`).")
    root_dir = tmp_path / "lab"
    root_dir.mkdir()
    notebook = _notebook_copy(root_dir)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env.update({"TOOLQUAL_ROOT": str(ROOT), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
                "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "run"),
                "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")})
    # the kernelspec of the venv stays visible through the venv's own share/jupyter (sys.prefix)
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyter")), "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root_dir}",
         "--ServerApp.port_retries=0", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        def frame():
            instances = [inst for path in sorted((ROOT / "data").glob("*.jsonl"))
                         if not path.name.endswith(".rejects.jsonl") for inst in read_instances(path)]
            return instances, selection_frame(instances, offline_verdicts(instances), read_table(root_dir / "ice.csv"))

        def wait_kernel_idle(timeout: float = 90.0) -> None:
            """Until the notebook's session has a kernel the server reports idle (i.e. started and connected)."""
            deadline, seen = time.monotonic() + timeout, None
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
                        sessions = json.load(response)
                except OSError:
                    sessions = []
                states = [(s.get("kernel") or {}).get("execution_state") for s in sessions
                          if s.get("path", "").endswith(notebook.name)]
                seen = states
                if "idle" in states:
                    return
                time.sleep(0.5)
            pytest.fail(f"the notebook's kernel never became idle (sessions: {seen}):\n"
                        + (tmp_path / "lab.log").read_text()[-3000:])

        yield {"url": f"{base}/lab/tree/{notebook.name}?token={token}", "chromium": chromium,
               "log": tmp_path / "lab.log", "frame": frame, "wait_kernel_idle": wait_kernel_idle}
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()


def _kept_count(page) -> tuple[int, int] | None:
    for text in page.locator(".jp-OutputArea-output .widget-html-content").all_inner_texts():
        match = KEPT.search(text)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


@pytest.mark.timeout(300)
def test_ice_slider_moved_by_keyboard_updates_the_count(jupyterlab):
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=jupyterlab["chromium"], args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
            page.goto(jupyterlab["url"], wait_until="domcontentloaded")
            page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=45_000)
            # "Run All" before the notebook's kernel is connected runs nothing (a race seen in CI under
            # load): wait until the server reports the kernel idle and the page shows it idle too.
            jupyterlab["wait_kernel_idle"]()
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator')]"
                ".some(e => e.getAttribute('data-status') === 'idle')"
                " || /Idle/.test(document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar')?.innerText || '')",
                timeout=30_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():   # a kernel picker, should the session still be settling
                dialog.first.click()

            slider = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle").first
            try:
                slider.wait_for(timeout=90_000)
            except Exception:
                shot = jupyterlab["log"].with_name("no-slider.png")
                page.screenshot(path=str(shot), full_page=True)
                outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())[-2000:]
                pytest.fail(f"the ICE slider never appeared (screenshot {shot}).\nnotebook outputs:\n{outputs}\n"
                            f"JupyterLab log:\n{jupyterlab['log'].read_text()[-3000:]}")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.widget-html-content')].some(e => /kept \\d+ of \\d+ instances/.test(e.innerText))",
                timeout=30_000)
            before = _kept_count(page)
            assert before is not None and before[1] == 1680
            slider.focus()
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(before) => [...document.querySelectorAll('.widget-html-content')].some(e => {"
                " const m = /kept (\\d+) of (\\d+) instances/.exec(e.innerText); return m && Number(m[1]) < before; })",
                arg=before[0], timeout=20_000)
            after = _kept_count(page)
            readout = page.locator(".jp-OutputArea-output .widget-slider .widget-readout").first.inner_text()
        finally:
            browser.close()
    threshold = float(readout)
    assert threshold > 0
    assert after is not None and after[1] == 1680 and after[0] < before[0]
    # the browser's counts are what the pure filter gives for the same settings
    instances, frame = jupyterlab["frame"]()
    settings = {"include_criteria": {"overall_ok": "holds"}, "unscored_as_pass": True}
    assert before[0] == len(filter_instances(frame, ice_min=0.0, **settings))
    # the readout is rounded to 2 decimals; the slider's step is 0.01, so the value is the readout
    assert after[0] == len(filter_instances(frame, ice_min=threshold, **settings))
    assert console_errors == [], console_errors
