"""The artwork service in a real browser: Debian's chromium (headless, driven by Playwright) against a real
uvicorn server on a free loopback port: upload -> choose style -> submit -> progress -> result -> download.

Set PERCEPT_SCREENSHOTS=docs/images to save a screenshot of each step (service_1_upload.png, ...).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium")) if p and os.path.exists(p)), None)
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from PIL import Image  # noqa: E402

from percept.image import read_metadata  # noqa: E402
from percept.service.app import create_app  # noqa: E402
from percept.service.config import ServiceConfig  # noqa: E402
from percept.service.core import Service  # noqa: E402

#: Records notifications instead of showing them (headless chromium has no notification centre).
FAKE_NOTIFICATION = """
window.__notifications = [];
class FakeNotification {
  constructor(title, options) { window.__notifications.push({title, body: options && options.body}); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
}
Object.defineProperty(window, "Notification", {value: FakeNotification, configurable: true, writable: true});
"""
DROP_FILE = """([b64, name]) => {
  const binary = atob(b64), bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
  return transfer;
}"""


@pytest.fixture()
def server(tmp_path, free_port) -> Iterator[str]:
    """A real server: uvicorn in a thread, a Service with one worker and short optimisations."""
    config = ServiceConfig(data_dir=tmp_path / "data", device="cpu", workers=1, iterations=20)
    server = uvicorn.Server(uvicorn.Config(create_app(Service(config)), host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(60)


#: Screenshots for the docs show a result at the page's default size (512 px); the plain test paints 128 px.
SHOTS = bool(os.environ.get("PERCEPT_SCREENSHOTS"))
SIZE = 512 if SHOTS else 128


def screenshot(page, step: str) -> None:
    """Save the viewport as docs/images/service_<step>.png (palette PNG, small) when PERCEPT_SCREENSHOTS is set."""
    folder = os.environ.get("PERCEPT_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(Path(folder) / f"service_{step}.png",
                                                                     optimize=True)


def test_upload_style_submit_progress_result_download(server, tmp_path, cat_path):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 800}, accept_downloads=True)
            context.add_init_script(FAKE_NOTIFICATION)
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # 1. upload: drop a photo on the drop zone, its preview appears
            page.goto(server)
            page.wait_for_selector("label.style img")
            transfer = page.evaluate_handle(DROP_FILE, [base64.b64encode(cat_path.read_bytes()).decode(), "cat.jpg"])
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
            page.wait_for_function("() => { const i = document.querySelector('#photo-preview');"
                                   " return !i.hidden && i.complete && i.naturalWidth > 0; }")
            assert page.eval_on_selector("#photo", "input => input.files[0].name") == "cat.jpg"
            screenshot(page, "1_upload")

            # 2. choose a style from the gallery, and the options
            page.click("label.style:has(input[value='great-wave'])")
            assert page.is_checked("input[value='great-wave']")
            page.check("input[name='method'][value='quality']")
            if not SHOTS:  # small: a short test
                page.evaluate("() => { const s = document.querySelector('#size');"
                              " s.add(new Option('128 px', '128'), 0); s.value = '128'; }")
            page.click("summary")  # "More": email and seed
            page.fill("#seed", "3")
            page.locator("#step-style").scroll_into_view_if_needed()
            screenshot(page, "2_style")

            # 3. submit: the job page shows progress, ETA, the current image and survives a reload
            page.click("#submit")
            page.wait_for_url("**/jobs/*")
            job_id = page.url.rsplit("/", 1)[1]
            running = ("(least) => document.querySelector('#status').dataset.status === 'running'"
                       " && document.querySelector('#progress').value >= least"
                       " && !document.querySelector('#image').hidden")
            page.wait_for_function(running, arg=1, timeout=60_000)
            assert page.is_visible("#cancel") and page.inner_text("#status").startswith("Painting: step")
            try:  # for the screenshot: half-way, with an ETA (a fast machine may finish first)
                page.wait_for_function(f"(least) => ({running})(least) && document.querySelector('#eta').textContent",
                                       arg=50, timeout=20_000)
            except sync_api.TimeoutError:
                pass
            screenshot(page, "3_progress")
            page.reload()
            page.wait_for_function("() => ['running', 'done'].includes("
                                   "document.querySelector('#status').dataset.status)")
            # the reloaded page notifies only of a change it sees; a fast machine may finish during the reload
            seen_running = page.evaluate("document.querySelector('#status').dataset.status") == "running"

            # 4. the result, its download (PNG with parameters) and the notification
            page.wait_for_function("() => document.querySelector('#status').dataset.status === 'done'"
                                   " && document.querySelector('#image').naturalWidth > 0", timeout=600_000 if SHOTS else 90_000)
            assert page.inner_text("#percent") == "100 %" and page.is_hidden("#cancel")
            notifications = page.evaluate("window.__notifications")
            if seen_running:
                page.wait_for_function("() => window.__notifications.length > 0", timeout=10_000)
                notifications = page.evaluate("window.__notifications")
                assert notifications[0]["title"] == "percept: done"
            else:
                assert notifications == []  # a job already finished when the page opened is not announced
            screenshot(page, "4_result")
            with page.expect_download() as download_info:
                page.click("#download")
            download = download_info.value
            assert download.suggested_filename == f"percept-{job_id}.png"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            assert max(Image.open(saved).size) == SIZE and read_metadata(saved)["job"] == job_id
            downloaded = context.new_page()  # the downloaded file itself, as the browser shows it
            downloaded.goto(saved.as_uri())
            screenshot(downloaded, "5_download")
            downloaded.close()

            # 5. the gallery lists the finished work
            page.goto(f"{server}/gallery")
            page.wait_for_selector(f"a[href='/jobs/{job_id}'] img")
            page.wait_for_function("() => [...document.images].every((i) => i.complete)")
            screenshot(page, "6_gallery")
            assert errors == []
        finally:
            browser.close()
