"""The rendered report in a real browser: Debian's chromium, headless, with the network cut off.

chromium comes from `scripts/install_browser.sh` (`make test` runs it). If it is missing this test
FAILS (it does not skip): an unchecked report is exactly what it is here to prevent.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPORT_PAGES, ROOT

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail(
            "Debian's chromium is not installed, so the rendered report cannot be checked in a browser. "
            "Run `bash scripts/install_browser.sh` (or `make test`, which runs it), then rerun the tests."
        )
    return path


@pytest.fixture(scope="module")
def rendered(rendered_reports) -> Path:
    """Every report rendered on the bundled data (the session's one `toolqual report` run)."""
    _chromium()  # fail fast when there is no browser
    result = rendered_reports.result
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return rendered_reports.out


def _open(page_path: Path, screenshot: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    seen: dict = {"console_errors": [], "failed": [], "blocked": [], "plots": 0, "bars": 0}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["console_errors"].append(f"page error: {e}"))
            page.on("requestfailed", lambda r: seen["failed"].append(r.url))

            def only_local(route):
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    seen["blocked"].append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_timeout(500)
            seen["plots"] = page.locator(".js-plotly-plot .main-svg").count()
            seen["figures"] = page.locator(".js-plotly-plot").count()
            seen["bars"] = page.locator(".js-plotly-plot .bars path").count()
            seen["title"] = page.title()
            seen["links"] = page.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


#: A number in scientific notation standing on its own in a cell ("1.735e-18"), not part of a word or hash.
SCIENTIFIC = re.compile(r"(?<![\w.])[-+−]?\d+(?:\.\d+)?[eE][-+]?\d+(?![\w.])")
#: Where the screenshots of every page go (gitignored): look at them after `make test`.
SCREENSHOTS = ROOT / "reports" / "_screenshots"

_PAGE_FACTS = """() => {
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    const wraps = [...document.querySelectorAll('.tq-table-wrap')];
    return {
        summaries: [...document.querySelectorAll('.tq-summary')].map(s => ({
            question: (s.querySelector('.tq-summary-q') || {}).innerText || '',
            lines: [...s.querySelectorAll('li')].map(li => li.innerText.trim()),
            top: s.getBoundingClientRect().top + window.scrollY })),
        cells: [...document.querySelectorAll('table.tq-table td')].map(td => td.innerText.trim()),
        clipped: wraps.filter(w => w.scrollWidth > w.clientWidth + 1).map(w => {
            const block = w.closest('details'); const cap = w.previousElementSibling;
            return (block && block.querySelector('summary') ? block.querySelector('summary').innerText
                    : cap ? cap.innerText : '?') + ` (${w.scrollWidth}px in ${w.clientWidth}px)`; }),
        unscored_cells: document.querySelectorAll('td.tq-unscored').length,
        headlines: [...document.querySelectorAll('.tq-headline')].map(h => h.innerText.trim()),
    };
}"""


def _read_page(page_path: Path, screenshot: Path) -> dict:
    """Open a page with the network cut off; screenshot it (closed, as a reader first sees it), then open
    every <details> and collect its summaries, table cells and clipped tables."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"console_errors": [], "blocked": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["console_errors"].append(f"page error: {e}"))
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                       else (seen["blocked"].append(route.request.url), route.abort()))
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot), full_page=True)
            seen.update(page.evaluate(_PAGE_FACTS))
        finally:
            browser.close()
    return seen


@pytest.mark.parametrize("name", [*REPORT_PAGES, "index"])
def test_every_page_opens_with_its_summary_and_formatted_unclipped_tables(rendered, name):
    """What a reader sees: each page opens with its summary (the index repeats them beside the links);
    no table cell shows scientific notation or a bare nan; no table is wider than the page. A full-page
    screenshot of each is saved under reports/_screenshots/ to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{name}.png"
    seen = _read_page(rendered / f"{name}.html", screenshot)
    assert seen["console_errors"] == [] and seen["blocked"] == []
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
    if name == "index":
        assert len(seen["headlines"]) == len(REPORT_PAGES)
        assert all(text.count("\n") >= 3 for text in seen["headlines"]), seen["headlines"]  # question + lines
    else:
        assert len(seen["summaries"]) == 1, "a page opens with exactly one summary block"
        summary = seen["summaries"][0]
        assert summary["question"].endswith("?") and 2 <= len(summary["lines"]) <= 3, summary
        assert summary["top"] < 400, "the summary is in the first screen"
    bad = [c for c in seen["cells"] if SCIENTIFIC.search(c) or c.lower() in ("nan", "<na>", "nat") or c == "None"]
    assert bad == [], f"{name}: cells not formatted for people: {bad[:5]}"
    assert seen["clipped"] == [], f"{name}: tables wider than the page: {seen['clipped']}"


def test_unscored_is_a_visible_category(rendered):
    """Kept instances: an unscored criterion is the grey word "unscored", never a blank cell; the decision
    chart of 01 and the error-rate chart of 02 give unscored its own grey legend entry."""
    seen = _read_page(rendered / "05_filter_explorer.html", SCREENSHOTS / "05_filter_explorer.png")
    assert seen["unscored_cells"] > 0 and "" not in seen["cells"]
    for name, legend in (("01_criterion_scoring", "unscored (not decided)"),
                         ("02_error_rate_tables", "bound: too few decided (unscored)")):
        page = (rendered / f"{name}.html").read_text(encoding="utf-8")
        assert f'"name":"{legend}"' in page and '"color":"#BDBDBD"' in page, name


def test_report_draws_figures_offline_without_errors(rendered, tmp_path):
    screenshot = tmp_path / "00_load_and_profile.png"
    seen = _open(rendered / "00_load_and_profile.html", screenshot)
    assert seen["console_errors"] == []
    assert seen["blocked"] == [], "the report tried to load something from the network"
    assert seen["failed"] == []
    assert seen["figures"] >= 6
    assert seen["plots"] > 0, "plotly figures were not drawn (is plotly.js embedded?)"
    assert seen["bars"] > 0, "figures have no bars drawn"
    assert "Load and profile" in seen["title"]
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
    print(f"screenshot: {screenshot}")


def test_index_opens_and_links_the_report(rendered):
    seen = _open(rendered / "index.html")
    assert seen["console_errors"] == [] and seen["blocked"] == [] and seen["failed"] == []
    assert "00_load_and_profile.html" in seen["links"]


CJK_TEXT = ("查询北京明天的天气", "서울 날씨를 알려줘")


@pytest.fixture(scope="module")
def rendered_cjk(tmp_path_factory) -> Path:
    """Notebook 00 on two instances written in Chinese and Korean (users' data is not all English)."""
    _chromium()
    data = tmp_path_factory.mktemp("cjk_data") / "cjk.jsonl"
    tool = {"name": "get_weather", "description": "天气 / 날씨",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    records = [{"id": f"cjk/x/{k}", "source": "cjk", "instruction": text, "tools": [tool],
                "calls": [{"name": "get_weather", "arguments": {"city": city}}]}
               for k, (text, city) in enumerate(zip(CJK_TEXT, ("北京", "서울")))]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    out = tmp_path_factory.mktemp("cjk_reports")
    env = {k: v for k, v in os.environ.items() if k != "TOOLQUAL_ROOT"}
    result = subprocess.run([str(Path(sys.executable).with_name("toolqual")), "report", "--only", "00",
                             "--data", str(data), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    return out / "00_load_and_profile.html"


def test_chinese_and_korean_text_is_drawn_with_real_glyphs(rendered_cjk):
    """Without a CJK font chromium draws every such character as the same empty box ("tofu")."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(rendered_cjk.as_uri(), wait_until="load")
            text = page.inner_text("body")
            glyphs = page.evaluate(
                """(chars) => {
                    const cell = document.querySelector('table.tq-table td') || document.body;
                    const family = getComputedStyle(cell).fontFamily;
                    const canvas = document.createElement('canvas');
                    canvas.width = 64; canvas.height = 64;
                    const ctx = canvas.getContext('2d');
                    return chars.map((ch) => {
                        ctx.clearRect(0, 0, 64, 64);
                        ctx.font = `48px ${family}`;
                        ctx.fillText(ch, 4, 52);
                        return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(',');
                    });
                }""",
                ["北", "京", "서", "울"],
            )
        finally:
            browser.close()
    assert all(t in text for t in CJK_TEXT)
    assert len(set(glyphs)) == 4, "CJK characters are drawn as identical boxes: no CJK font (scripts/install_browser.sh)"
