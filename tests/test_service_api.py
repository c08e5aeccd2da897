"""The artwork service's JSON API through FastAPI's TestClient, on a real Service in a temporary data dir:
every endpoint, and every rejection (too large, not an image, bomb, unknown style, rate limit, traversal,
unknown or guessed id, queue full, cross-site post)."""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("limits")
pytest.importorskip("python_multipart")

with warnings.catch_warnings():  # starlette asks for httpx2 instead of httpx; both work here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from percept.cli import build_parser, main  # noqa: E402
from percept.image import read_metadata  # noqa: E402
from percept.service.app import create_app  # noqa: E402
from percept.service.config import ServiceConfig  # noqa: E402
from percept.service.core import Service  # noqa: E402
from percept.service.safety import Rejected, check_image, load_secret  # noqa: E402
from percept.service.store import JOB_ID  # noqa: E402
from service_images import image_bytes, png_header_only  # noqa: E402

API = "/api/v1"
KIB = 1024


def client_for(data_dir: Path, *, address: str = "127.0.0.1", **settings) -> TestClient:
    """A TestClient on a real Service: no worker threads (jobs stay queued) unless ``workers`` is given."""
    config = ServiceConfig(data_dir=data_dir, device="cpu", **{"workers": 0, "rate_limit": "1000/minute",
                                                                "allowed_hosts": ["testserver"], **settings})
    return TestClient(create_app(Service(config)), client=(address, 50000))


def submit(client: TestClient, photo: bytes | None = None, name: str = "photo.png", **fields) -> "object":
    files = {"photo": (name, image_bytes() if photo is None else photo, "image/png")}
    if "style_image" in fields:
        files["style_image"] = ("style.jpg", fields.pop("style_image"), "image/jpeg")
    data = {"method": "instant", "size": "64", **({"style_id": "starry-night"} if "style_image" not in files else {}),
            **{k: str(v) for k, v in fields.items()}}
    return client.post(f"{API}/jobs", files=files, data=data)


def wait_until_finished(client: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{API}/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


@pytest.fixture()
def idle(tmp_path) -> Iterator[TestClient]:
    """A service whose jobs stay queued: rejections, cancellation and the queue cap without any painting."""
    with client_for(tmp_path / "data", max_upload_mb=64 / 1024, max_pixels=1_000_000, max_size=512,
                    queue_cap=3) as client:
        yield client


def test_health_styles_thumbnails_pages_and_docs(idle):
    health = idle.get(f"{API}/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["active_jobs"] == 0 and body["public"] is False
    assert body["limits"] == {"max_upload_bytes": 64 * KIB, "max_pixels": 1_000_000, "max_size": 512,
                              "queue_cap": 3, "rate_limit": "1000 per 1 minute"}
    headers = health.headers
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]

    styles = idle.get(f"{API}/styles").json()
    ids = [s["id"] for s in styles]
    assert "starry-night" in ids and len(ids) >= 4
    thumb = idle.get(styles[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256
    for bad in ("no-such-style", "..", "%2e%2e%2fstyles.json", "STARRY"):
        response = idle.get(f"{API}/styles/{bad}/thumbnail")
        assert response.status_code == 404 and "error" in response.json()

    for page in ("/", "/gallery", f"/jobs/{'A' * 22}"):
        response = idle.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert "<script>" not in response.text  # scripts come from files only (the CSP forbids inline ones)
    for asset in ("style.css", "common.js", "index.js", "job.js", "gallery.js", "favicon.svg"):
        assert idle.get(f"/static/{asset}").status_code == 200
    missing = idle.get("/no-such-page")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert idle.get(f"{API}/nothing").json() == {"error": "no such endpoint; see /docs for the API"}

    schema = idle.get("/openapi.json").json()
    for path in ("/styles", "/styles/{style_id}/thumbnail", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result",
                 "/jobs/{job_id}/preview", "/jobs/{job_id}/cancel", "/health"):
        assert API + path in schema["paths"], path
    assert {"JobOut", "JobCreated", "StyleOut", "ErrorOut", "Health"} <= set(schema["components"]["schemas"])
    assert schema["components"]["schemas"]["JobOut"]["examples"]
    assert "413" in schema["paths"][f"{API}/jobs"]["post"]["responses"]
    assert idle.get("/docs").status_code == 200


def test_a_job_end_to_end_through_the_real_service(tmp_path):
    with client_for(tmp_path / "data", workers=1) as client:
        created = submit(client, strength=0.8, seed=7, preserve_color="true")
        assert created.status_code == 202, created.text
        job = created.json()
        assert JOB_ID.fullmatch(job["id"]) and job["status"] in ("queued", "running")
        assert len(job["cancel_token"]) == 32 and job["page_url"] == f"/jobs/{job['id']}"
        assert "client" not in job and "email" not in job
        own = submit(client, style_image=image_bytes("JPEG", (40, 40), "navy"))
        assert own.status_code == 202, own.text

        done = wait_until_finished(client, job["id"])
        assert done["status"] == "done", done
        assert done["progress"] == 1.0 and done["result_url"] == f"{API}/jobs/{job['id']}/result"
        assert done["params"]["style"] == "starry-night" and done["params"]["seed"] == 7
        result = client.get(done["result_url"])
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        assert result.headers["content-disposition"] == f'attachment; filename="percept-{job["id"]}.png"'
        path = tmp_path / "result.png"
        path.write_bytes(result.content)
        assert max(Image.open(path).size) == 64
        record = read_metadata(path)  # the parameters travel with the PNG
        assert record["job"] == job["id"] and '"strength": 0.8' in json.dumps(record, sort_keys=True)
        preview = client.get(done["preview_url"])
        assert preview.status_code == 200 and preview.headers["cache-control"] == "no-store"

        assert wait_until_finished(client, own.json()["id"])["params"]["style"] == "upload"
        listed = client.get(f"{API}/jobs").json()["jobs"]
        assert {j["id"] for j in listed} == {job["id"], own.json()["id"]}
        only = client.get(f"{API}/jobs", params={"ids": f"{job['id']},../../etc/passwd,{'B' * 22}"}).json()
        assert [j["id"] for j in only["jobs"]] == [job["id"]]
        assert client.get(f"{API}/health").json()["active_jobs"] == 0


def test_cancel_needs_the_token_and_result_waits_for_done(idle):
    job = submit(idle).json()
    url = f"{API}/jobs/{job['id']}"
    assert idle.get(f"{url}/result").status_code == 409
    assert "queued" in idle.get(f"{url}/result").json()["error"]
    assert idle.get(f"{url}/preview").status_code == 404
    assert idle.post(f"{url}/cancel").status_code == 403
    assert idle.post(f"{url}/cancel", headers={"X-Cancel-Token": "0" * 32}).status_code == 403
    cancelled = idle.post(f"{url}/cancel", headers={"X-Cancel-Token": job["cancel_token"]})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert idle.get(url).json()["status"] == "cancelled"


def test_queue_full_is_503_with_retry_after(idle):
    for _ in range(3):
        assert submit(idle).status_code == 202
    full = submit(idle)
    assert full.status_code == 503 and full.headers["retry-after"] == "60"
    assert "queue is full" in full.json()["error"]


@pytest.mark.parametrize("case, status, words", [
    ("text file named .jpg", 415, "not a PNG, JPEG or WebP"),
    ("GIF", 415, "not a PNG, JPEG or WebP"),
    ("empty", 400, "empty"),
    ("truncated JPEG", 400, "damaged"),
    ("too many bytes", 413, "larger than"),
    ("more pixels than the cap", 413, "more than the 1,000,000 allowed"),
    ("decompression bomb", 413, "pixels"),
])
def test_uploads_are_sniffed_and_capped(idle, case, status, words):
    photo = {
        "text file named .jpg": b"GET / HTTP/1.1\r\nthis is not an image\r\n",
        "GIF": image_bytes("GIF"),
        "empty": b"",
        "truncated JPEG": image_bytes("JPEG", (256, 256))[:600],
        "too many bytes": os.urandom(64 * KIB + 1),
        "more pixels than the cap": png_header_only(1200, 1000),
        "decompression bomb": png_header_only(30_000, 30_000),
    }[case]
    response = submit(idle, photo, name="holiday.jpg")
    assert response.status_code == status, response.text
    assert words in response.json()["error"] and response.json()["error"].startswith("photo: ")
    assert idle.get(f"{API}/health").json()["active_jobs"] == 0
    style = submit(idle, style_image=photo)
    assert style.status_code == status and style.json()["error"].startswith("style_image: ")


def test_bodies_beyond_the_cap_are_refused_before_reading(idle):
    huge = submit(idle, os.urandom(2 * 64 * KIB + 1024 * KIB + 1))  # Content-Length says it all: 413 at once
    assert huge.status_code == 413 and huge.json()["error"].startswith("upload too large: at most 64 KiB per image")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        boundary = b"--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\r\n"
        yield boundary
        for _ in range(40):
            yield b"\0" * (64 * KIB)
    streamed = idle.post(f"{API}/jobs", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413 and "upload too large" in streamed.json()["error"]


@pytest.mark.parametrize("fields, status, words", [
    ({"style_id": "no-such-style"}, 400, "unknown style"),
    ({"style_id": "../../etc/passwd"}, 400, "unknown style"),
    ({"style_id": ""}, 400, "choose exactly one style"),
    ({"style_id": "starry-night", "style_image": image_bytes()}, 400, "choose exactly one style"),
    ({"size": 5000}, 422, "size: at most 512"),
    ({"size": 8}, 422, "size:"),
    ({"method": "fast"}, 422, "method:"),
    ({"strength": 1.5}, 422, "strength:"),
    ({"seed": -1}, 422, "seed:"),
    ({"email": "not an address"}, 422, "email"),
    ({"webhook": "ftp://example.org/hook"}, 422, "webhook"),
])
def test_bad_fields_get_one_line_errors(idle, fields, status, words):
    if "style_image" in fields:  # both a style id and an upload
        response = idle.post(f"{API}/jobs", files={"photo": ("p.png", image_bytes()),
                                                   "style_image": ("s.png", fields["style_image"])},
                             data={"style_id": fields["style_id"]})
    else:
        response = submit(idle, **fields)
    assert response.status_code == status, response.text
    assert words in response.json()["error"] and "\n" not in response.json()["error"]


def test_missing_photo_is_422(idle):
    response = idle.post(f"{API}/jobs", data={"style_id": "starry-night"})
    assert response.status_code == 422 and response.json()["error"].startswith("photo:")


def test_rate_limit_per_client_address(tmp_path):
    with client_for(tmp_path / "a", rate_limit="2/minute", address="10.0.0.1") as client:
        assert submit(client).status_code == 202
        assert submit(client, b"not an image").status_code == 415  # rejected uploads count too
        limited = submit(client)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert "too many jobs" in limited.json()["error"]
        assert client.get(f"{API}/health").status_code == 200  # reading is not limited
        other = TestClient(client.app, client=("10.0.0.2", 50000))
        assert submit(other).status_code == 202  # another address has its own window


def test_traversal_and_guessed_ids_are_404_without_any_lookup(idle, monkeypatch):
    service = idle.app.state.service
    looked_up: list[str] = []
    for name in ("job", "result_path", "preview_path", "cancel"):
        original = getattr(service, name)
        monkeypatch.setattr(service, name, lambda job_id, _f=original: looked_up.append(job_id) or _f(job_id))
    guessed = secrets.token_urlsafe(16)
    for path in [f"{API}/jobs/..%2F..%2Fetc%2Fpasswd", f"{API}/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/result",
                 f"{API}/jobs/..%2F/preview", f"{API}/jobs/%2e%2e", f"{API}/jobs/....%2F....%2Fsecret/result",
                 f"{API}/jobs/{'A' * 21}", f"{API}/jobs/{'A' * 23}/result", f"{API}/jobs/{'A' * 21}%2F",
                 f"{API}/jobs/{guessed}", f"{API}/jobs/{guessed}/result", f"{API}/jobs/{guessed}/preview",
                 "/jobs/..%2F..%2Fetc%2Fpasswd", "/jobs/%2e%2e"]:
        response = idle.get(path)
        assert response.status_code == 404, path
        if path.startswith(API):
            assert response.json()["error"], path
    assert idle.post(f"{API}/jobs/%2e%2e%2fsecret/cancel").status_code == 404
    assert idle.post(f"{API}/jobs/{guessed}/cancel", headers={"X-Cancel-Token": "x"}).status_code == 404
    assert looked_up and all(JOB_ID.fullmatch(i) for i in looked_up), looked_up


def test_cross_site_posts_are_refused(idle):
    files = {"photo": ("p.png", image_bytes(), "image/png")}
    data = {"style_id": "starry-night", "method": "instant", "size": "64"}
    evil = idle.post(f"{API}/jobs", files=files, data=data, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["error"]
    fetched = idle.post(f"{API}/jobs", files=files, data=data, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403
    same = idle.post(f"{API}/jobs", files=files, data=data, headers={"Origin": "http://testserver"})
    assert same.status_code == 202


def test_unknown_hosts_are_refused_and_redirects_stay_relative(idle):
    evil = idle.get(f"{API}/health", headers={"Host": "evil.example:8000"})
    assert evil.status_code == 400 and "--allowed-hosts" in evil.json()["error"]
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "testserver"):
        assert idle.get(f"{API}/health", headers={"Host": host}).status_code == 200, host
    moved = idle.get("/gallery/", follow_redirects=False)  # no public URL configured: a relative Location
    assert moved.status_code == 307 and moved.headers["location"] == "/gallery"
    listing = idle.get(f"{API}/jobs/", params={"limit": 2}, follow_redirects=False)
    assert listing.headers["location"] == f"{API}/jobs?limit=2"
    assert idle.get("/no-such-page/", follow_redirects=False).status_code == 404
    head = idle.head(f"{API}/styles")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


def test_public_server_lists_only_named_jobs(tmp_path):
    with client_for(tmp_path / "data", host="0.0.0.0") as client:
        job = submit(client).json()
        assert client.get(f"{API}/health").json()["public"] is True
        refused = client.get(f"{API}/jobs")
        assert refused.status_code == 403 and "ids=" in refused.json()["error"]
        assert client.get(f"{API}/jobs", params={"ids": job["id"]}).json() == {"jobs": []}  # queued, not done


def test_secret_is_persistent_and_private(tmp_path):
    first = load_secret(tmp_path)
    path = tmp_path / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 32
    path.chmod(0o644)
    assert load_secret(tmp_path) == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    with client_for(tmp_path / "data") as client:
        job = submit(client).json()
        token, job_id = job["cancel_token"], job["id"]
    with client_for(tmp_path / "data") as client:  # a restart: the same secret, so the same token still works
        cancelled = client.post(f"{API}/jobs/{job_id}/cancel", headers={"X-Cancel-Token": token})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_check_image_accepts_png_jpeg_webp():
    for fmt in ("PNG", "JPEG", "WEBP"):
        info = check_image(image_bytes(fmt), field="photo", max_bytes=64 * KIB, max_pixels=10_000)
        assert (info.format, info.width, info.height) == (fmt, 48, 40)
    with pytest.raises(Rejected) as caught:
        check_image(image_bytes("BMP"), field="photo", max_bytes=64 * KIB, max_pixels=10_000)
    assert caught.value.status == 415


def test_serve_command_defaults_public_guard_and_missing_packages(capsys, monkeypatch, tmp_path):
    import uvicorn

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # argparse keeps subparsers there
    for action in serve._actions:
        if action.dest != "help":
            assert "(default:" in action.help, action.dest

    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert "add --public" in capsys.readouterr().err

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    assert main(["serve", "--host", "0.0.0.0", "--public", "--port", "8123", "--data-dir", str(tmp_path),
                 "--workers", "0", "--max-upload-mb", "500", "--rate-limit", "1000/second", "--queue-cap", "7"]) == 0
    assert "warning" in capsys.readouterr().err and served["host"] == "0.0.0.0" and served["port"] == 8123
    config = served["app"].state.service.config
    assert (config.max_upload_bytes, config.rate_limit, config.queue_cap) == (20 * 1024 * KIB, "30/minute", 7)
    assert config.allow_private_webhooks is False

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    assert "pip install 'percept-cnn[service]'" in capsys.readouterr().err


def test_workers_with_a_broker_is_refused_not_ignored():
    from percept.errors import PerceptError
    from percept.service.config import ServiceConfig

    with pytest.raises(PerceptError, match="--workers sets embedded worker threads.*percept worker"):
        ServiceConfig(broker="redis://localhost:6379/0", workers=3)
    assert ServiceConfig(broker="redis://localhost:6379/0").workers == 1  # the default is fine
