"""End to end in a real headless Chromium: ``streamlit run app.py`` on a free
port with a temporary data directory; sign in, upload two sample photos to two
visits, see the comparison and a progress chart.

Uses Debian's Chromium (``scripts/browser.sh``) through Playwright's
``executable_path``; Playwright's own browser download is never used.
Screenshots are kept under ``test-artifacts/browser/``.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SAMPLES = ROOT / "sample_images" / "demo_patient_a"
CHROMIUM = os.environ.get("ANALYZER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
STEP_MS = 120_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard on a free port, on a fresh data dir with one user and a
    patient with two (empty) visits."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: run scripts/browser.sh (Debian package "
                    "chromium) to enable the browser test")
    from analyzer.config import Settings
    from analyzer.store import Store

    data = tmp_path_factory.mktemp("browser-data")
    settings = Settings.from_env({"ANALYZER_DATA_DIR": str(data)})
    with Store.open(settings) as store:
        clinic = store.create_clinic("E2E clinic", actor="system:test")
        username, password = store.ensure_demo_user(clinic_id=clinic)
        patient = store.create_patient("E2E-1", actor="system:test", name="Browser Test",
                                       consent=True, clinic_id=clinic)
        store.add_visit(patient.id, "2026-03-02", actor="system:test",
                        procedure="micro-needling", needle_depth_mm=1.5, passes=4, serum="PRP")
        store.add_visit(patient.id, "2026-03-04", actor="system:test", notes="day 2")
        store.add_visit(patient.id, "2026-04-13", actor="system:test", notes="week 6, other phone")
    port = _free_port()
    env = dict(os.environ, ANALYZER_DATA_DIR=str(data), GLOG_minloglevel="2")
    env.pop("ANALYZER_DATABASE_URL", None)
    env.pop("DATABASE_URL", None)
    log = open(data / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail("streamlit did not start:\n" + (data / "streamlit.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {"url": url, "username": username, "password": password, "log": data / "streamlit.log",
               "data": data}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()


def _upload(page, photo: Path) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(photo))
    from playwright.sync_api import expect

    button = page.get_by_role("button", name="Store and analyse")
    expect(button).to_be_enabled(timeout=STEP_MS)
    button.click()
    page.get_by_text(re.compile(re.escape(photo.name) + r": capture quality")).first.wait_for(
        timeout=STEP_MS)


def _other_phone_copy(photo: Path, folder: Path) -> Path:
    """``photo`` saved again at JPEG quality 75 with another camera's EXIF make and model."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"
    out = folder / ("other_phone_" + photo.name)
    Image.open(photo).save(out, "JPEG", quality=75, exif=exif.tobytes())
    return out


def test_sign_in_upload_compare_chart(server):
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(STEP_MS)
        try:
            page.goto(server["url"])
            page.get_by_role("textbox", name="User name").fill(server["username"])
            page.get_by_role("textbox", name="Password").fill(server["password"])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Patients").wait_for()
            page.get_by_text("E2E-1").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "01_patients.png"), full_page=True)

            page.get_by_role("button", name="Open").first.click()
            page.get_by_role("heading", name=re.compile("E2E-1")).wait_for()
            # Baseline photo to the first visit, then the day-2 photo to the second.
            _choose(page, "Visit", "2026-03-02")
            _upload(page, SAMPLES / "2026-03-02_baseline.jpg")
            _choose(page, "Visit", "2026-03-04")
            _upload(page, SAMPLES / "2026-03-04_day02.jpg")
            page.screenshot(path=str(ARTIFACTS / "02_record_uploaded.png"), full_page=True)
            # Week 6 from another phone, saved at JPEG 75: the upload says what a retake would fix.
            _choose(page, "Visit", "2026-04-13")
            _upload(page, _other_phone_copy(SAMPLES / "2026-04-13_week06.jpg", server["data"]))
            page.get_by_text("a retake now would compare better").first.wait_for()
            page.get_by_text(re.compile("saved differently")).first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "02b_retake_advice.png"), full_page=True)

            page.get_by_role("link", name="Compare visits").click()
            page.get_by_role("heading", name="What changed").wait_for()
            # the plain-language line (the change table's cells are hidden from locators)
            page.locator("li").filter(has_text="Redness").first.wait_for()
            slider = page.frame_locator("iframe").first.locator('[data-testid="before-after-slider"]')
            slider.wait_for()
            assert slider.locator("img").count() == 2
            page.screenshot(path=str(ARTIFACTS / "03_compare.png"), full_page=True)
            page.get_by_role("tab", name="Change maps").click()
            page.get_by_text("Redness change").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "04_change_maps.png"), full_page=True)
            page.get_by_role("tab", name="Where each index comes from").click()
            page.get_by_text("Pigmentation · after").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "04b_index_maps.png"), full_page=True)

            page.get_by_role("link", name="Progress").click()
            page.get_by_role("heading", name=re.compile("Progress")).wait_for()
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            charts.first.wait_for()
            page.locator("canvas, svg.marks").first.wait_for()
            assert charts.count() == 3
            page.screenshot(path=str(ARTIFACTS / "05_progress.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            print(server["log"].read_text()[-3000:])
            raise
        finally:
            browser.close()
