"""The issue's durability check, end to end: kill `percept serve` (SIGKILL) while a job runs, start it again on the
same data dir: the job completes, exactly once, and nothing else is lost or duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import httpx
import pytest

from percept.image import read_metadata

API = "/api/v1"


def _poll(port: int, job_id: str, until, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"http://127.0.0.1:{port}{API}/jobs/{job_id}", timeout=5).json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting; job is {job}")


@pytest.mark.timeout(300)
def test_a_job_survives_a_killed_server_and_completes_once(tmp_path, cat_path, free_port, percept_serve):
    port, data_dir = free_port(), tmp_path / "service"
    server = percept_serve.start(data_dir, port, "--iterations", "40")
    try:
        files = {"photo": ("cat.jpg", cat_path.read_bytes(), "image/jpeg")}
        data = {"method": "quality", "size": "96", "style_id": "starry-night", "seed": "1"}
        running = httpx.post(f"http://127.0.0.1:{port}{API}/jobs", files=files, data=data, timeout=30).json()
        waiting = httpx.post(f"http://127.0.0.1:{port}{API}/jobs", files=files, data=data, timeout=30).json()
        _poll(port, running["id"], lambda j: j["status"] == "running" and j["progress"] > 0.05)
        os.killpg(server.pid, signal.SIGKILL)  # no clean shutdown: the job is mid-way
        server.wait(10)
        server = percept_serve.start(data_dir, port, "--iterations", "40")
        done = [_poll(port, job["id"], lambda j: j["status"] in ("done", "failed", "cancelled"))
                for job in (running, waiting)]
    finally:
        percept_serve.stop(server)
    assert [job["status"] for job in done] == ["done", "done"]
    assert done[0]["attempts"] == 2 and done[1]["attempts"] == 1  # interrupted once, run again once
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2  # nothing duplicated
    for job in done:
        folder = data_dir / "jobs" / job["id"]
        record = read_metadata(folder / "result.png")
        assert record["job"] == job["id"] and record["service_params"]["seed"] == 1
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # no partial files
