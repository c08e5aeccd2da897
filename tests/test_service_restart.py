"""The issue's durability check, end to end: kill `percept serve` (SIGKILL) while a job runs, start it again on the
same data dir: the job completes, exactly once, and nothing else is lost or duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from percept.image import read_metadata

API = "/api/v1"


def _serve(data_dir: Path, port: int) -> subprocess.Popen:
    """``percept serve`` on loopback with one embedded worker, ready to answer."""
    command = [sys.executable, "-m", "percept", "serve", "--port", str(port), "--data-dir", str(data_dir),
               "--device", "cpu", "--iterations", "40"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PERCEPT_OFFLINE": "1"}, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{API}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("percept serve did not start within 60 s")


def _poll(port: int, job_id: str, until, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"http://127.0.0.1:{port}{API}/jobs/{job_id}", timeout=5).json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting; job is {job}")


@pytest.mark.timeout(300)
def test_a_job_survives_a_killed_server_and_completes_once(tmp_path, cat_path, free_port):
    port, data_dir = free_port(), tmp_path / "service"
    server = _serve(data_dir, port)
    try:
        files = {"photo": ("cat.jpg", cat_path.read_bytes(), "image/jpeg")}
        data = {"method": "quality", "size": "96", "style_id": "starry-night", "seed": "1"}
        running = httpx.post(f"http://127.0.0.1:{port}{API}/jobs", files=files, data=data, timeout=30).json()
        waiting = httpx.post(f"http://127.0.0.1:{port}{API}/jobs", files=files, data=data, timeout=30).json()
        _poll(port, running["id"], lambda j: j["status"] == "running" and j["progress"] > 0.05)
        os.killpg(server.pid, signal.SIGKILL)  # no clean shutdown: the job is mid-way
        server.wait(10)
        server = _serve(data_dir, port)
        done = [_poll(port, job["id"], lambda j: j["status"] in ("done", "failed", "cancelled"))
                for job in (running, waiting)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    assert [job["status"] for job in done] == ["done", "done"]
    assert done[0]["attempts"] == 2 and done[1]["attempts"] == 1  # interrupted once, run again once
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2  # nothing duplicated
    for job in done:
        folder = data_dir / "jobs" / job["id"]
        record = read_metadata(folder / "result.png")
        assert record["job"] == job["id"] and record["service_params"]["seed"] == 1
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # no partial files
