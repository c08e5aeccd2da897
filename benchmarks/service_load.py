"""Bounded load test of the artwork service on loopback: 50 small jobs from 10 client threads.

For each worker count, a fresh ``percept serve`` process is started on a free loopback port with its own data
dir (rate limit raised so the clients are not throttled). First one job per worker runs to the end (warm-up:
the network is loaded into the workers, as on a server that has been up for a while). Then each of
``--clients`` threads (one httpx client each) submits its share of ``--jobs`` small ``instant`` jobs (a 96 px
photo, output ``--size`` px, styles in turn) as fast as it can, and every job is polled until it is finished.
Reported per run: submitted / accepted / completed / failed / lost (accepted but never finished, or run twice:
``attempts`` > 1), p50 / p95 / max submit latency (the POST, upload checks and queueing included; target p95
< 200 ms) and throughput (completed jobs per minute, from the first submission to the last job's finish time).

Modes: embedded (``percept serve --workers N``: threads in the server process), or with ``--broker URL``
(``percept serve --broker URL`` plus N ``percept worker`` processes); ``--redis`` starts a
private ``redis-server`` on a free loopback port for that (Debian package ``redis-server``).

Run from the repository root (one JSON object on stdout, progress on stderr)::

    .venv/bin/python benchmarks/service_load.py --workers 1,2 --repeat 3 --out docs/service_load_cpu.json
    .venv/bin/python benchmarks/service_load.py --workers 1,2 --repeat 3 --redis --out docs/service_load_redis_cpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "content" / "chelsea_cat.jpg"
STYLES = ("starry-night", "great-wave", "the-scream", "udnie")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_photo(side: int = 96) -> bytes:
    """The example photo, longest side ``side`` px, as PNG bytes."""
    with Image.open(PHOTO) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        out = io.BytesIO()
        img.save(out, format="PNG")
    return out.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def wait_for(url: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def service(workers: int, broker: str | None, device: str) -> Iterator[str]:
    """``percept serve`` on a fresh data dir (and ``percept worker`` processes with a broker); yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="percept-load-") as data_dir:
        serve = [sys.executable, "-m", "percept", "serve", "--port", str(port), "--data-dir", data_dir,
                 "--device", device, "--rate-limit", "100000/minute", "--queue-cap", "1000"]
        serve += ["--broker", broker] if broker else ["--workers", str(workers)]
        log = open(Path(data_dir) / "serve.log", "w")  # noqa: SIM115 (closed below)
        processes = [subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)]
        try:
            wait_for(f"http://127.0.0.1:{port}/api/v1/health", 60, processes[0])
            for _ in range(workers if broker else 0):
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "percept", "worker", "--broker", broker, "--device", device],
                    stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
            yield f"http://127.0.0.1:{port}"
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()


def warm_up(url: str, *, jobs: int, size: int, timeout: float) -> None:
    """Run ``jobs`` jobs to the end first, so loading the network into the workers is not measured."""
    photo = small_photo()
    with httpx.Client(base_url=url, timeout=30.0) as http:
        ids = [http.post("/api/v1/jobs", files={"photo": ("photo.png", photo, "image/png")},
                         data={"style_id": STYLES[0], "method": "instant", "size": str(size)}).json()["id"]
               for _ in range(jobs)]
        deadline = time.monotonic() + timeout
        while any(http.get(f"/api/v1/jobs/{i}").json()["status"] in ("queued", "running") for i in ids):
            if time.monotonic() > deadline:
                raise SystemExit("the warm-up jobs did not finish")
            time.sleep(0.2)


def load(url: str, *, jobs: int, clients: int, size: int, timeout: float) -> dict:
    """Submit ``jobs`` jobs from ``clients`` threads, wait for all of them, and measure."""
    photo = small_photo()
    latencies: list[float] = []
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=30.0) as http:
            for n in range(index, jobs, clients):
                data = {"style_id": STYLES[n % len(STYLES)], "method": "instant", "size": str(size), "seed": str(n)}
                start = time.perf_counter()
                response = http.post("/api/v1/jobs", files={"photo": ("photo.png", photo, "image/png")}, data=data)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code == 202:
                        accepted.append(response.json()["id"])
                    else:
                        refused.append(f"{response.status_code} {response.text[:120]}")

    started = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    submitted_in = time.time() - started
    print(f"  {len(accepted)} accepted in {submitted_in:.1f} s; waiting for them", file=sys.stderr)

    final: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30.0) as http:
        while len(final) < len(accepted) and time.monotonic() < deadline:
            for job_id in accepted:
                if job_id not in final:
                    job = http.get(f"/api/v1/jobs/{job_id}").json()
                    if job["status"] in ("done", "failed", "cancelled"):
                        final[job_id] = job
            time.sleep(0.5)
    done = [job for job in final.values() if job["status"] == "done"]
    repeated = [job["id"] for job in final.values() if job["attempts"] != 1]
    span = (max(job["finished"] for job in done) - started) if done else float("nan")
    return {
        "submitted": jobs, "accepted": len(accepted), "refused": refused, "completed": len(done),
        "failed": sum(job["status"] == "failed" for job in final.values()),
        "lost": len(accepted) - len(final) + len(repeated), "run_twice": repeated,
        "submit_latency_ms": {"p50": round(1000 * statistics.median(latencies), 1),
                              "p95": round(1000 * percentile(latencies, 95), 1),
                              "max": round(1000 * max(latencies), 1)},
        "submit_seconds": round(submitted_in, 2), "seconds_to_last_finish": round(span, 2),
        "throughput_jobs_per_min": round(60 * len(done) / span, 1) if done else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (default: 1,2)")
    parser.add_argument("--jobs", type=int, default=50, help="jobs in all (default: 50)")
    parser.add_argument("--clients", type=int, default=10, help="client threads (default: 10)")
    parser.add_argument("--size", type=int, default=64, help="output size of each job, px (default: 64)")
    parser.add_argument("--device", default="cpu", help="device of the workers (default: cpu)")
    parser.add_argument("--broker", default=None, help="Redis URL: run jobs on percept worker processes "
                        "(default: embedded workers)")
    parser.add_argument("--redis", action="store_true", help="start a private redis-server and use it as the "
                        "broker (default: off)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count, each on a fresh server; "
                        "the summary gives medians (default: 1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs of one run "
                        "(default: 600)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here (default: stdout only)")
    args = parser.parse_args()

    runs, summary = [], []
    with redis_server() if args.redis else _nothing(args.broker) as broker:
        mode = "redis" if broker else "embedded"
        for workers in (int(w) for w in args.workers.split(",")):
            results = []
            for repeat in range(args.repeat):
                print(f"{mode}, {workers} worker(s), run {repeat + 1}/{args.repeat}: {args.jobs} jobs from "
                      f"{args.clients} clients", file=sys.stderr)
                with service(workers, broker, args.device) as url:
                    warm_up(url, jobs=workers, size=args.size, timeout=args.timeout)
                    results.append(load(url, jobs=args.jobs, clients=args.clients, size=args.size,
                                        timeout=args.timeout))
                runs.append({"mode": mode, "workers": workers, "load_average_1min": os.getloadavg()[0],
                             **results[-1]})
                print(f"  {json.dumps(results[-1])}", file=sys.stderr)
            summary.append({
                "mode": mode, "workers": workers, "runs": len(results),
                "submitted": sum(r["submitted"] for r in results), "completed": sum(r["completed"] for r in results),
                "lost": sum(r["lost"] for r in results),
                "median_p50_ms": statistics.median(r["submit_latency_ms"]["p50"] for r in results),
                "median_p95_ms": statistics.median(r["submit_latency_ms"]["p95"] for r in results),
                "worst_p95_ms": max(r["submit_latency_ms"]["p95"] for r in results),
                "median_jobs_per_min": statistics.median(r["throughput_jobs_per_min"] for r in results),
            })
    report = {
        "what": f"{args.jobs} instant jobs ({args.size} px output, 96 px photo) from {args.clients} client threads "
                "on loopback; percept serve in its own process",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "device": args.device,
                    "note": "load_average_1min (after each run) includes other work on the machine: latency and "
                            "throughput suffer when it exceeds the number of CPUs"},
        "target": "none lost, all complete, p95 submit latency < 200 ms",
        "warm_up": "one job per worker ran to the end before the measurement (loads the network)",
        "summary": summary,
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


@contextmanager
def _nothing(value: str | None) -> Iterator[str | None]:
    yield value


if __name__ == "__main__":
    main()
