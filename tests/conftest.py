"""Shared fixtures. Tests run offline: PERCEPT_OFFLINE stops any download attempt."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps

os.environ.setdefault("PERCEPT_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _unused_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """The function that finds an unused loopback port (for servers the tests start)."""
    return _unused_port


@pytest.fixture(scope="session")
def cat_path() -> Path:
    return EXAMPLES / "content" / "chelsea_cat.jpg"


@pytest.fixture(scope="session")
def rocket_path() -> Path:
    return EXAMPLES / "content" / "rocket_launch.jpg"


@pytest.fixture(scope="session")
def starry_path() -> Path:
    return EXAMPLES / "style" / "van_gogh_starry_night.jpg"


@pytest.fixture(scope="session")
def wave_path() -> Path:
    return EXAMPLES / "style" / "hokusai_great_wave.jpg"


@pytest.fixture(scope="session")
def texture_path() -> Path:
    return EXAMPLES / "texture" / "colorful_zigzag_256.jpg"


@pytest.fixture(scope="session")
def cat_tensor(cat_path):
    from percept.image import load_image, to_tensor

    return to_tensor(load_image(cat_path), longest=128)


@pytest.fixture(scope="session")
def vgg19():
    from percept.models import get_model

    return get_model("vgg19", "gatys")


def _crops(source, folder, n, seed):
    """``n`` random crops (some mirrored) of ``source`` saved as JPEGs in ``folder``."""
    rng = random.Random(seed)
    img = Image.open(source).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.6, 0.9)), int(h * rng.uniform(0.6, 0.9))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = img.crop((x, y, x + cw, y + ch)).resize((96, 96))
        (ImageOps.mirror(crop) if i % 2 else crop).save(folder / f"{i:02d}.jpg", quality=90)


@pytest.fixture(scope="session")
def crops():
    """The function that writes ``n`` random crops of an image into a folder."""
    return _crops


@pytest.fixture()
def dataset(tmp_path, cat_path, rocket_path):
    """DATA/train/{cat,rocket} (6 each) and DATA/val/{cat,rocket} (3 each)."""
    root = tmp_path / "data"
    for split, n, seed in (("train", 6, 0), ("val", 3, 1)):
        _crops(cat_path, root / split / "cat", n, seed)
        _crops(rocket_path, root / split / "rocket", n, seed + 10)
    return root


class ServeProcesses:
    """Start and stop real ``percept serve`` processes (each in its own session, so a test can ``os.killpg`` it)."""

    def __init__(self) -> None:
        self.started: list = []

    def start(self, data_dir: Path, port: int, *options: str, log: Path | None = None, timeout: float = 60):
        """``percept serve`` on loopback ``port`` with ``data_dir``, device cpu, one embedded worker and
        ``options``, once it answers ``/api/v1/health``; its stdout and stderr go to ``log`` (else nowhere)."""
        import subprocess
        import sys
        import time

        import httpx

        command = [sys.executable, "-m", "percept", "serve", "--port", str(port), "--data-dir", str(data_dir),
                   "--device", "cpu", *options]
        out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
        try:
            server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                      env={**os.environ, "PERCEPT_OFFLINE": "1"})
        finally:
            if log is not None:
                out.close()
        self.started.append(server)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop(server)
        tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
        raise AssertionError(f"percept serve did not start within {timeout:g} s\n{tail}")

    @staticmethod
    def stop(server, timeout: float = 30) -> None:
        """SIGTERM to the server's process group (a clean stop), SIGKILL if it is still there after ``timeout``."""
        import signal
        import subprocess

        if server.poll() is not None:
            return
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        except ProcessLookupError:
            server.wait(10)


@pytest.fixture(scope="session")
def percept_serve():
    """:class:`ServeProcesses`: ``percept_serve.start(data_dir, port, *options, log=...)`` starts a real
    ``percept serve``; every one still running is stopped at the end of the session."""
    servers = ServeProcesses()
    yield servers
    for server in servers.started:
        servers.stop(server)


@pytest.fixture()
def webhook_server():
    """A local HTTP server taking webhook POSTs: ``(base URL, handler class)``; ``Hook.received`` lists the calls
    (``path``, JSON ``body``), ``Hook.status`` is the answer (204) except for paths under ``/fail`` (500)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Hook(BaseHTTPRequestHandler):
        received: list[dict] = []
        status = 204

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            type(self).received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(500 if self.path.startswith("/fail") else type(self).status)
            self.end_headers()

        def log_message(self, *args) -> None:  # quiet
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Hook
    server.shutdown()
    server.server_close()
