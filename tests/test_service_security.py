"""Attacks on a real `percept serve` process, as a hostile web page or a careless client would make them: DNS
rebinding, photos too elongated for the network, header injection through the webhook or email fields, HEAD
requests, a cancelled job's preview, and the attacks that were already refused (traversal, decompression bombs,
lying Content-Length, huge headers, cross-site posts, guessed tokens and ids), so that they stay refused. Then a
fuzz test: random uploads (sizes, aspect ratios, modes, formats, options) at 64 px through the real submission
endpoint and worker: every upload is refused with a one-line 4xx or painted. The server's log never shows a
traceback."""

from __future__ import annotations

import io
import json
import random
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from PIL import Image  # noqa: E402
from service_images import image_bytes, png_header_only  # noqa: E402

API = "/api/v1"
PUBLIC_URL = "http://public.test:9999"  # the server's configured public URL (a name nothing resolves)
ALLOWED = "art.test"  # given with --allowed-hosts
ITERATIONS = 20  # L-BFGS steps of the server's quality jobs: a preview every 2 steps


@dataclass
class Server:
    port: int
    data_dir: Path
    log: Path
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def job_log(self, job_id: str) -> list[str]:
        with sqlite3.connect(self.data_dir / "jobs.sqlite3", timeout=30) as db:
            row = db.execute("SELECT log FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else []

    def job_count(self) -> int:
        with sqlite3.connect(self.data_dir / "jobs.sqlite3", timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_port, percept_serve) -> Iterator[Server]:
    """One `percept serve` for the module: loopback, one worker, a public URL and one extra allowed host, limits
    raised so that the fuzz test is neither rate-limited nor queue-capped."""
    folder = tmp_path_factory.mktemp("security")
    port, data_dir, log = free_port(), folder / "data", folder / "server.log"
    process = percept_serve.start(data_dir, port, "--iterations", str(ITERATIONS), "--rate-limit", "100000/minute",
                                  "--queue-cap", "1000", "--public-url", PUBLIC_URL, "--allowed-hosts", ALLOWED,
                                  log=log)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield Server(port, data_dir, log, client)
    percept_serve.stop(process)
    assert "Traceback" not in log.read_text(errors="replace")


def no_traceback(server: Server) -> None:
    text = server.log_text()
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:4000]


# ------------------------------------------------------------------------------------------------ helpers


def post_job(server: Server, photo: bytes | None = None, *, style_image: bytes | None = None,
             headers: dict[str, str] | None = None, **fields) -> httpx.Response:
    files = {"photo": ("photo.png", image_bytes(size=(96, 72)) if photo is None else photo, "image/png")}
    if style_image is not None:
        files["style_image"] = ("style.png", style_image, "image/png")
    data = {"method": "instant", "size": "64", **({} if style_image is not None else {"style_id": "starry-night"}),
            **{k: str(v) for k, v in fields.items()}}
    return server.client.post(f"{API}/jobs", files=files, data=data, headers=headers or {})


def one_line_error(response: httpx.Response, status: int | tuple[int, ...], *words: str) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text)
    error = response.json()["error"]
    assert error and "\n" not in error and "\r" not in error and "Traceback" not in error, error
    for word in words:
        assert word in error, error
    return error


def wait_for(server: Server, job_id: str, until, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.client.get(f"{API}/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting; the job is {job}")


def finished(job: dict) -> bool:
    return job["status"] not in ("queued", "running")


def raw_request(port: int, data: bytes, *, half_close: bool = False, timeout: float = 10) -> bytes:
    """Send ``data`` as is on a new connection; return whatever the server answers until it closes (or
    ``timeout``)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):  # the server answered and closed before reading it all
            pass
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def multipart(fields: dict[str, str], files: dict[str, bytes], boundary: str = "xYzZy") -> tuple[bytes, str]:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                     "Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# ------------------------------------------------------------------------------------------------ the five holes


def test_dns_rebinding_is_refused_before_routing(server):
    evil = f"evil.example:{server.port}"
    before = server.job_count()
    submitted = post_job(server, headers={"Host": evil, "Origin": f"http://{evil}"})
    one_line_error(submitted, 400, "evil.example", "--allowed-hosts")
    assert "id" not in submitted.json() and server.job_count() == before
    listed = server.client.get(f"{API}/jobs", params={"limit": 2}, headers={"Host": evil})
    one_line_error(listed, 400)
    assert "jobs" not in listed.json()
    for host in ("evil.example", evil, f"127.0.0.1.evil.example:{server.port}", "localhost.evil.example",
                 f"{ALLOWED}.evil.example", "public.test.evil.example:9999", "0.0.0.0", "127.0.0.2", "[::2]:80"):
        for path in ("/api/v1/health", "/", "/gallery/", f"{API}/jobs/"):
            response = server.client.get(path, headers={"Host": host}, follow_redirects=False)
            one_line_error(response, 400)
            assert "location" not in response.headers
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}", "LocalHost",
                 f"{ALLOWED}:{server.port}", f"{ALLOWED.upper()}.", "public.test:9999", "public.test"):
        assert server.client.get(f"{API}/health", headers={"Host": host}).status_code == 200, host

    # an allowed name, same origin: a browser on the real site still submits
    same = post_job(server, headers={"Host": f"{ALLOWED}:{server.port}", "Origin": f"http://{ALLOWED}:{server.port}"})
    assert same.status_code == 202, same.text
    # a trailing slash is redirected to the configured public URL, whatever the request's Host says
    for host in (f"127.0.0.1:{server.port}", f"{ALLOWED}:{server.port}"):
        redirect = server.client.get("/gallery/", headers={"Host": host}, follow_redirects=False)
        assert redirect.status_code == 307 and redirect.headers["location"] == f"{PUBLIC_URL}/gallery"
        listing = server.client.get(f"{API}/jobs/", params={"limit": 2}, headers={"Host": host},
                                    follow_redirects=False)
        assert listing.headers["location"] == f"{PUBLIC_URL}{API}/jobs?limit=2"
    for path in ("/nothing/", "//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example/"):
        response = raw_request(server.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                               .encode())
        assert status_of(response) == 404 and b"location:" not in response.lower(), (path, response[:300])
    no_traceback(server)


@pytest.mark.parametrize("size", [(1600, 100), (1600, 50), (40000, 1), (1, 40000), (1600, 200)])
def test_too_elongated_photos_are_422_at_submission(server, size):
    for method in ("instant", "quality"):
        response = post_job(server, image_bytes(size=size), method=method, size=64)
        one_line_error(response, 422, "photo:", "at least 16 px", "4:1")
    style = post_job(server, style_image=image_bytes(size=size), size=64)
    one_line_error(style, 422, "style image:", "at least 16 px")
    no_traceback(server)


def test_the_worker_makes_the_same_check_before_painting():
    """A job that never passed the submission's check (an older version queued it) fails with the same one line,
    before any network is loaded, instead of deep inside it."""
    from percept.service.geometry import TooSmall
    from percept.service.runner import paint

    params = {"method": "instant", "size": 64, "strength": 1.0, "preserve_color": False, "seed": 0, "style": "x"}
    for photo, style in (((64, 4), (64, 64)), ((1, 64), (64, 48)), ((64, 48), (64, 8))):
        with pytest.raises(TooSmall, match="at least 16 px"):
            paint(Image.new("RGB", photo), Image.new("RGB", style), params, device="cpu")
        with pytest.raises(TooSmall, match="at least 16 px"):
            paint(Image.new("RGB", photo), Image.new("RGB", style), {**params, "method": "quality"}, device="cpu")


def test_the_widest_accepted_photo_is_painted(server):
    jobs = [post_job(server, image_bytes(size=size), method=method, size=64)
            for size, method in (((1600, 400), "instant"), ((16, 64), "instant"), ((64, 16), "quality"))]
    assert [job.status_code for job in jobs] == [202] * len(jobs), [job.text for job in jobs]
    for job in jobs:
        done = wait_for(server, job.json()["id"], finished)
        assert done["status"] == "done", done
    no_traceback(server)


@pytest.mark.parametrize("webhook", [
    "http://127.0.0.1:9/hook\r\nX-Injected: 1", "http://127.0.0.1:9/hook\nX-Injected: 1", "http://127.0.0.1:9/\r",
    "http://127.0.0.1:9/a b", "http://127.0.0.1:9/a\tb", "http://127.0.0.1:9/\x00", "http://127.0.0.1:9/\x7f",
    "http://exämple.org/hook", "http://\r\n127.0.0.1/", "http://", "http:///path", "ftp://example.org/hook",
    "javascript:alert(1)", "file:///etc/passwd", "//example.org/hook", "http://[::1/hook", "http://a:99999/",
    "http://exa mple.org/", "http://exa_mple..org/"])
def test_webhooks_with_control_characters_or_no_host_are_422(server, webhook):
    one_line_error(post_job(server, webhook=webhook), 422, "webhook")


@pytest.mark.parametrize("email", [
    "me@example.org\r\nBcc: all@example.org", "me@example.org\nBcc: x@y.z", "me@exa\rmple.org", "me @example.org",
    "Me <me@example.org>", "me@example.org, you@example.org", "me@@example.org", "@example.org", "me@", "me",
    "me@exa mple.org", "mé@example.org", "me@example.org\x00"])
def test_bad_email_addresses_are_422(server, email):
    one_line_error(post_job(server, email=email), 422, "email")


def test_every_notification_outcome_is_in_the_jobs_log(server, webhook_server):
    hook_url, hook = webhook_server
    received = hook.received
    sent = post_job(server, webhook=f"{hook_url}/ok", email="me@example.org").json()
    failing = post_job(server, webhook=f"{hook_url}/fail").json()

    def logged(job_id: str, word: str) -> list[str]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = [line for line in server.job_log(job_id) if word in line]
            if lines:
                return lines
            time.sleep(0.2)
        raise AssertionError(f"no {word!r} in the log of {job_id}: {server.job_log(job_id)}")

    assert logged(sent["id"], "webhook")[0].endswith("webhook sent (HTTP 204)")
    assert logged(sent["id"], "email")[0].endswith("email not sent: this server has no SMTP server configured")
    assert logged(failing["id"], "webhook")[0].endswith("webhook failed after 2 attempts: HTTP 500 Internal Server "
                                                        "Error")
    assert [r["path"] for r in received].count("/fail") == 2  # one retry
    assert all(r["body"]["status"] == "done" for r in received)
    no_traceback(server)


def test_no_exception_escapes_a_notifier(tmp_path, monkeypatch):
    """Addresses that slipped past the checks (an older data dir, a bug) end as a line in the job's log."""
    from percept.service import notify as notify_module
    from percept.service.config import ServiceConfig
    from percept.service.store import Job

    monkeypatch.setattr(notify_module, "RETRY_AFTER", 0.0)

    class Store:
        lines: list[str] = []

        def log(self, job_id, line):
            self.lines.append(line)

    config = ServiceConfig(data_dir=tmp_path, smtp_url="smtp://127.0.0.1:9")
    job = Job(id="A" * 22, status="done", params={}, email="a@b.c\r\nBcc: x@y.z",
              webhook="http://127.0.0.1:9/x\r\nX-Injected: 1")
    notify_module.notify(Store(), config, job)  # must not raise
    assert Store.lines == ["email not sent: email: that address does not look like name@example.org; give one plain "
                           "address",
                           "webhook not sent: webhook: the URL has spaces, control characters or non-ASCII characters; "
                           "percent-encode them (and write an international host name as punycode)"]

    class BrokenStore:
        def log(self, job_id, line):
            raise sqlite3.OperationalError("disk I/O error")

    notify_module.notify(BrokenStore(), config, Job(id="B" * 22, status="done", params={}, webhook="http://127.0.0.1:9/"))

    def explode(*args, **kwargs):
        raise RuntimeError("a bug in a notifier")

    monkeypatch.setattr(notify_module, "post_webhook", explode)
    Store.lines = []
    notify_module.notify(Store(), config, Job(id="C" * 22, status="done", params={}, webhook="http://127.0.0.1:9/"))
    assert Store.lines == ["webhook failed after 2 attempts: a bug in a notifier"]


def test_head_is_answered_wherever_get_is(server):
    job = post_job(server).json()
    done = wait_for(server, job["id"], finished)
    assert done["status"] == "done", done
    paths = ["/", "/gallery", f"/jobs/{job['id']}", f"{API}/health", f"{API}/styles",
             f"{API}/styles/starry-night/thumbnail", f"{API}/jobs", f"{API}/jobs?ids={job['id']}",
             f"{API}/jobs/{job['id']}", f"{API}/jobs/{job['id']}/result", f"{API}/jobs/{job['id']}/preview",
             "/static/style.css", "/static/job.js", "/openapi.json", "/docs"]
    for path in paths:
        get = server.client.get(path)
        head = server.client.head(path)
        assert get.status_code == 200 and head.status_code == 200, (path, head.status_code, head.text)
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], path
        if "content-length" in get.headers and path != f"{API}/health":  # health counts jobs: may change
            assert head.headers["content-length"] == get.headers["content-length"], path
        assert head.headers["x-content-type-options"] == "nosniff", path
    assert server.client.head(f"{API}/jobs/{'A' * 22}").status_code == 404
    assert server.client.head("/no-such-page").status_code == 404
    assert server.client.request("PUT", f"{API}/health").status_code == 405
    no_traceback(server)


def test_a_cancelled_jobs_preview_and_partial_files_are_gone(server):
    job = post_job(server, image_bytes(size=(256, 192)), method="quality", size=192).json()
    url = f"{API}/jobs/{job['id']}"
    wait_for(server, job["id"], lambda j: j["status"] == "running" and j["progress"] > 0, timeout=120)
    deadline = time.monotonic() + 60
    while server.client.get(f"{url}/preview").status_code != 200:
        assert time.monotonic() < deadline, "no preview appeared"
        time.sleep(0.1)
    cancelled = server.client.post(f"{url}/cancel", headers={"X-Cancel-Token": job["cancel_token"]})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    for _ in range(2):  # at once, and once the worker has stopped (it may write a last preview meanwhile)
        one_line_error(server.client.get(f"{url}/preview"), (404, 410))
        assert server.client.head(f"{url}/preview").status_code in (404, 410)
        one_line_error(server.client.get(f"{url}/result"), 409)
        time.sleep(1.5)
    folder = server.data_dir / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["photo.png"]  # no preview, result or partial file
    assert server.client.get(url).json()["status"] == "cancelled"
    no_traceback(server)


# ------------------------------------------------------------------------------------------------ closed already


def test_attacks_that_were_refused_stay_refused(server):
    port = server.port
    secret = (server.data_dir / "secret").read_text().strip()
    # traversal, sent raw so that no client normalises the path
    for path in ("/api/v1/jobs/../../secret", "/api/v1/jobs/..%2F..%2Fsecret", "/api/v1/jobs/%2e%2e%2f%2e%2e%2fsecret",
                 "/api/v1/jobs/..%2F..%2Fjobs.sqlite3/result", "/static/../secret", "/static/..%2f..%2fsecret",
                 "/static/%2e%2e/%2e%2e/data/secret", "/api/v1/styles/..%2f..%2fstyles.json/thumbnail",
                 "/jobs/..%2F..%2Fsecret", "/static//etc/passwd", "/api/v1/jobs/%00/preview"):
        response = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        assert status_of(response) in (400, 404), (path, response[:200])
        assert secret.encode() not in response and b"SQLite" not in response and b"root:" not in response, path

    # decompression bombs and pixel floods: refused from the header, before decoding
    for bomb in (png_header_only(30_000, 30_000), png_header_only(200_000, 300), png_header_only(7000, 7000)):
        one_line_error(post_job(server, bomb), 413, "photo:")
        one_line_error(post_job(server, style_image=bomb), 413, "style_image:")

    # a Content-Length far beyond the cap: 413 before a byte of the body is read
    body, content_type = multipart({"style_id": "starry-night"}, {"photo": image_bytes(size=(96, 72))})
    head = (f"POST {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 10000000000\r\nConnection: close\r\n\r\n").encode()
    assert status_of(raw_request(port, head + body)) == 413
    # a Content-Length shorter than the body: the form is cut short, the rest is not a request
    short = (f"POST {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
             f"Content-Length: {len(body) // 2}\r\n\r\n").encode()
    assert 400 <= status_of(raw_request(port, short + body)) < 500
    # a Content-Length longer than the body, then the client goes away: nothing is stored, no traceback
    before = server.job_count()
    long = (f"POST {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body) + 5000}\r\n\r\n").encode()
    raw_request(port, long + body, half_close=True, timeout=3)
    assert server.job_count() == before
    # two lengths, or a length that is not a number
    for lengths in ("Content-Length: 10\r\nContent-Length: 20\r\n", "Content-Length: -1\r\n", "Content-Length: x\r\n"):
        request = f"POST {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n{lengths}Connection: close\r\n\r\n".encode()
        assert status_of(raw_request(port, request + b"0123456789")) == 400, lengths

    # huge headers: one of 100 KiB (at once, and trickled in), and 2000 small ones
    big = f"GET {API}/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'a' * 100_000}\r\nConnection: close\r\n\r\n"
    assert status_of(raw_request(port, big.encode())) == 431
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for start in range(0, len(big), 4096):
                sock.sendall(big[start:start + 4096].encode())
                time.sleep(0.005)
        except (ConnectionResetError, BrokenPipeError):
            pass  # refused before the end
        try:
            assert status_of(sock.recv(65536)) in (0, 400, 431)  # 0: the server closed before answering
        except ConnectionResetError:
            pass
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(2000))
    assert status_of(raw_request(port, f"GET {API}/health HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}"
                                       "Connection: close\r\n\r\n".encode())) == 431
    # a header with a CR in the value or no Host at all in HTTP/1.1
    assert status_of(raw_request(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rb\r\n\r\n")) == 400
    assert status_of(raw_request(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == 400

    # cross-site posts
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": f"http://localhost:{port + 1}"}, {"Origin": "http://[::1"}):
        one_line_error(post_job(server, headers=headers), 403, "cross-site")

    # guessing: cancel tokens and job ids
    job = post_job(server).json()
    for _ in range(50):
        guess = server.client.post(f"{API}/jobs/{job['id']}/cancel", headers={"X-Cancel-Token": secrets.token_hex(16)})
        one_line_error(guess, 403, "X-Cancel-Token")
    assert server.client.get(f"{API}/jobs/{job['id']}").json()["status"] != "cancelled"
    for _ in range(50):
        guessed = secrets.token_urlsafe(16)
        for path in (f"{API}/jobs/{guessed}", f"{API}/jobs/{guessed}/result", f"{API}/jobs/{guessed}/preview"):
            one_line_error(server.client.get(path), 404)
        assert server.client.post(f"{API}/jobs/{guessed}/cancel",
                                   headers={"X-Cancel-Token": job["cancel_token"]}).status_code == 404
    assert server.client.get(f"{API}/health").status_code == 200  # still serving
    no_traceback(server)


# ------------------------------------------------------------------------------------------------ fuzz

MODES = ("L", "RGB", "RGBA", "P", "CMYK", "I;16")
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
FUZZ_UPLOADS = 200


def random_size(rng: random.Random) -> tuple[int, int]:
    kind = rng.random()
    if kind < 0.3:
        size = rng.randint(1, 300), rng.randint(1, 300)
    elif kind < 0.55:  # extreme
        size = rng.randint(100, 3000), rng.randint(1, 60)
    elif kind < 0.85:  # around the limit: 4:1 at 64 px
        longest = rng.randint(40, 900)
        size = longest, max(1, round(longest / rng.uniform(3.6, 4.5)))
    else:
        size = rng.choice([(1, 1), (1, 2), (40000, 1), (64, 16), (64, 15), (63, 16), (65, 16), (127, 32), (129, 32),
                           (255, 64), (257, 64), (16, 16), (4000, 999), (4000, 1000), (4000, 1001)])
    return size if rng.random() < 0.5 else (size[1], size[0])


def random_image(rng: random.Random) -> tuple[bytes, str]:
    """Random pixels of a random size and mode, in a random format (sometimes with an EXIF rotation, sometimes
    damaged); and how it was made."""
    width, height = random_size(rng)
    mode = rng.choice(MODES)
    fmt = rng.choices(FORMATS, weights=(4, 4, 4, 1, 1, 1))[0]  # mostly what the service takes
    if mode == "I;16":
        img = Image.frombytes("I;16", (width, height), rng.randbytes(width * height * 2))
    else:
        img = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        if mode == "RGBA":
            img.putalpha(Image.frombytes("L", (width, height), rng.randbytes(width * height)))
        elif mode != "RGB":
            img = img.convert(mode)
    options = {}
    if fmt in ("JPEG", "PNG", "WEBP") and rng.random() < 0.3:
        exif = Image.Exif()
        exif[0x0112] = rng.choice([1, 3, 6, 8])  # orientation: 6 and 8 swap width and height
        options["exif"] = exif.tobytes()
    for image, form, note in ((img, fmt, ""), (img.convert("RGB"), fmt, "->RGB"), (img.convert("RGB"), "PNG", "->PNG")):
        out = io.BytesIO()
        try:  # else this format cannot hold this mode or size (WebP: at most 16383 px a side)
            image.save(out, format=form, **options)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        fmt, mode = form, mode + note
        break
    data = out.getvalue()
    what = f"{width}x{height} {mode} {fmt}{' exif' if options else ''}"
    if rng.random() < 0.08:  # damaged: cut short or a few bytes changed
        cut = bytearray(data[: max(16, len(data) * rng.randint(3, 9) // 10)])
        for _ in range(rng.randint(0, 4) if len(cut) > 16 else 0):
            cut[rng.randrange(16, len(cut))] = rng.randrange(256)
        data, what = bytes(cut), what + " damaged"
    return data, what


def test_fuzz_random_uploads_are_refused_cleanly_or_painted(server):
    rng = random.Random(20)
    styles = [style["id"] for style in server.client.get(f"{API}/styles").json()]
    accepted: dict[str, str] = {}
    refused: dict[int, int] = {}
    for _ in range(FUZZ_UPLOADS):  # one after the other: the worker paints while the next ones arrive
        photo, what = random_image(rng)
        files = {"photo": ("photo.bin", photo, "application/octet-stream")}
        data = {"method": "instant", "size": "64",  # the fastest method; the geometry check is the same for both
                "strength": f"{rng.random():.3f}", "preserve_color": rng.choice(["true", "false"])}
        if rng.random() < 0.5:
            data["seed"] = str(rng.randrange(2**31))
        if rng.random() < 0.25:
            style, style_what = random_image(rng)
            files["style_image"] = ("style.bin", style, "application/octet-stream")
            what += f" + style {style_what}"
        else:
            data["style_id"] = rng.choice(styles)
        if rng.random() < 0.1:
            data["email"] = "fuzz@example.org"  # no SMTP here: "email not sent" in the log
        what += f" {data['method']}"
        response = server.client.post(f"{API}/jobs", files=files, data=data)
        if response.status_code == 202:
            accepted[response.json()["id"]] = what
        else:
            one_line_error(response, (400, 413, 415, 422))
            refused[response.status_code] = refused.get(response.status_code, 0) + 1
    deadline = time.monotonic() + 300
    while server.client.get(f"{API}/health").json()["active_jobs"]:
        assert time.monotonic() < deadline, "the fuzz jobs did not finish within 300 s"
        time.sleep(0.5)
    outcomes = {job_id: server.client.get(f"{API}/jobs/{job_id}").json() for job_id in accepted}
    failed = {accepted[i]: (job["status"], job["error"]) for i, job in outcomes.items() if job["status"] != "done"}
    assert not failed, failed  # accepted means painted: no failure inside the worker, clean or not
    assert len(accepted) >= 50 and refused.get(422, 0) >= 20 and refused.get(415, 0) >= 20, (len(accepted), refused)
    no_traceback(server)


def test_the_server_log_has_no_traceback(server):
    no_traceback(server)
    assert "Exception in ASGI application" not in server.log_text()
