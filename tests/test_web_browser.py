"""End to end in headless Chromium: the review app served by `medq serve`, and the QC report.

Debian's `chromium` is driven by Playwright's Python package (`executable_path`; Playwright's own
browser download is never used). The server is the real `medq serve` in a subprocess on a free
local port, restarted in the middle to show that reviews persist.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest_qc import filled_db

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no chromium binary (Debian package `chromium`, which .ci/run "
                              "installs)"),
    pytest.mark.slow,
]


def wait_until(page: Any, predicate: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript predicate from Python (the pages' CSP forbids in-page string eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {predicate}")
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`medq serve` in a subprocess; `start`/`stop` may be called again (a restart)."""

    def __init__(self, db: Path, folder: Path) -> None:
        self.db, self.folder, self.port = db, folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        """Start the server and wait until it answers."""
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - closed by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "medq.cli", "serve", "--db", str(self.db), "--port",
             str(self.port), "--uploads-dir", str(self.folder / "uploads"), "--log-level",
             "warning"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("medq serve exited: "
                                   + (self.folder / "server.log").read_text(errors="replace"))
            try:
                with urllib.request.urlopen(self.url + "/items", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"medq serve did not answer within {timeout} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a service manager would)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="module")
def qc_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], dict]:
    """A store holding real assessments (samples, degraded samples, one broken file)."""
    return filled_db(tmp_path_factory, "browser")


@pytest.fixture(scope="module")
def server(qc_db: tuple, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The review app on its own port."""
    srv = Server(qc_db[0], tmp_path_factory.mktemp("server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page whose console errors and uncaught exceptions are collected in `.problems`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(
        (m.text, m.location.get("url", ""))))
    pg.on("pageerror", lambda e: pg.problems.append((str(e), "")))
    yield pg
    context.close()


def test_review_flow_survives_a_restart(server: Server, qc_db: tuple, page: Any) -> None:
    _, rows, ids = qc_db
    rejects = {ids[r["path"]] for r in rows if r.get("verdict") == "reject"}
    page.goto(server.url + "/items")
    assert f"{len(rows)} items match" in page.inner_text("#match-count")
    page.select_option("#f-verdict", "reject")
    page.select_option("#f-sort", "score")
    page.click("#apply")
    page.wait_for_url(re.compile(r".*verdict=reject.*"))
    shown = [int(x) for x in page.eval_on_selector_all("tr[data-id]", "rs => rs.map(r => "
                                                                       "r.dataset.id)")]
    assert set(shown) == rejects
    first = page.inner_text("tr[data-id] td.score")
    page.click("tr[data-id] a.item-link")
    page.wait_for_url(re.compile(rf".*/items/{shown[0]}$"))
    assert page.inner_text("#score").startswith(first)
    assert page.eval_on_selector("#view", "img => img.complete && img.naturalWidth > 0")
    page.fill("#reviewer", "Dr Browser")
    page.check("input[name=decision][value=reject]")
    page.fill("#comment", "streaks over the liver")
    page.click("#submit-review")
    page.wait_for_selector("#review-history")
    assert page.inner_text("#review-history .reviewer") == "Dr Browser"

    server.stop()
    server.start()
    page.reload()
    assert page.inner_text("#review-history .reviewer") == "Dr Browser"
    assert page.inner_text("#review-history .decision") == "reject"
    assert page.inner_text("#review-history .comment") == "streaks over the liver"
    page.goto(server.url + "/items?reviewed=yes")
    assert page.eval_on_selector_all("tr[data-id]", "rs => rs.map(r => r.dataset.id)") == [
        str(shown[0])]
    assert page.problems == []


def test_slice_scroller_and_restored_preview(server: Server, qc_db: tuple, page: Any) -> None:
    _, rows, ids = qc_db
    volume = next(r for r in rows if r["dimension"] == "3D")
    depth = volume["shape"][0]
    page.goto(f"{server.url}/items/{ids[volume['path']]}")
    assert page.inner_text("#slice-label") == f"slice {depth // 2 + 1} / {depth}"
    for _ in range(5):
        page.keyboard.press("ArrowUp")
    expect(page.locator("#view")).to_have_attribute("src", re.compile(
        rf".*/image\.png\?slice={depth // 2 + 5}$"))
    wait_until(page, "() => { const v = document.getElementById('view');"
                     " return v.complete && v.naturalWidth > 0; }")
    assert page.inner_text("#slice-label") == f"slice {depth // 2 + 6} / {depth}"
    page.click("#restore-btn")
    expect(page.locator("#restore-msg")).not_to_have_text("restoring…", timeout=120_000)
    expect(page.locator("#restored-figure")).to_be_visible()  # the shipped restoration ran
    wait_until(page, "() => { const r = document.getElementById('restored');"
                     " return r.complete && r.naturalWidth > 0; }")
    assert page.inner_text("#restore-msg").strip(), "the restoration's note is shown"
    assert page.problems == []


def test_upload_in_the_browser(server: Server, qc_db: tuple, page: Any) -> None:
    _, rows, _ = qc_db
    source = next(r for r in rows if r["status"] == "ok" and r["modality"] == "MR"
                  and r["dimension"] == "2D")
    page.goto(server.url + "/upload")
    page.set_input_files("#file", source["path"])
    page.click("#upload-btn")
    page.wait_for_url(re.compile(r".*/items/\d+$"), timeout=120_000)
    assert page.inner_text("#score").startswith(f"{source['score']:.2f}")
    assert page.eval_on_selector("#view", "img => img.complete && img.naturalWidth > 0")
    assert page.problems == []


def test_qc_report_opens_without_console_errors(tmp_path_factory: pytest.TempPathFactory,
                                                page: Any, tmp_path: Path) -> None:
    from medq.report.qc_report import build_qc_report

    db, rows, _ = filled_db(tmp_path_factory, "report")
    report = build_qc_report(db, tmp_path / "report.html")
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    flagged = sum(r["status"] == "ok" and r["verdict"] in ("reject", "usable") for r in rows)
    assert flagged > 0 and page.inner_text("#flagged-count") == str(flagged)
    assert page.eval_on_selector_all("img", "imgs => imgs.every(i => i.complete && "
                                            "i.naturalWidth > 0)")
    assert page.locator(".card").count() == flagged
    assert page.problems == []
