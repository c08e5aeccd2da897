"""The artwork service's backend: job store, runner, embedded workers, recovery, cancellation, notifications
(against a local SMTP sink and a local HTTP server) and the Redis broker (a real redis-server on loopback, with
`percept worker` processes that run in another directory and are forbidden to touch the data dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from percept.errors import PerceptError
from percept.image import read_metadata
from percept.service import notify as notify_module
from percept.service.config import ServiceConfig
from percept.service.core import QueueFull, Service
from percept.service.runner import run_job
from percept.service.store import Job, JobStore, job_dir, new_job_id
from percept.service.styles import get_style, list_styles

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo(cat_path) -> bytes:
    return cat_path.read_bytes()


def _submit(service: Service, image: bytes, **overrides) -> Job:
    settings = dict(photo=image, style_id="starry-night", style_image=None, method="quality", size=64, strength=1.0,
                    preserve_color=False, seed=0, email=None, webhook=None, client="127.0.0.1")
    return service.submit(**{**settings, **overrides})


def _wait(service: Service, job_id: str, until, timeout: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.job(job_id)
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"timed out; job is {service.job(job_id)}")


def _finished(job: Job) -> bool:
    return job.status in ("done", "failed", "cancelled")


# --------------------------------------------------------------------------------------------- store


def test_store_create_claim_requeue_cancel(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    first, second = (store.create(Job(id=new_job_id(), params={"n": i}), cap=2) for i in range(2))
    with pytest.raises(QueueFull):
        store.create(Job(id=new_job_id()), cap=2)
    assert store.active_count() == 2 and len(first.id) == 22

    claimed = store.claim("w1")
    assert (claimed.id, claimed.status, claimed.attempts, claimed.worker) == (first.id, "running", 1, "w1")
    assert store.heartbeat(first.id, "w2", progress=0.5) is False  # not w2's job
    assert store.heartbeat(first.id, "w1", progress=0.5) is True
    assert store.requeue_interrupted(stale_after=60) == 0  # heartbeat is fresh
    assert store.requeue_interrupted() == 1
    again = store.get(first.id)
    assert (again.status, again.progress, again.worker) == ("queued", 0.0, None)
    assert "requeued" in again.log[-1]

    assert store.cancel(second.id).status == "cancelled"
    assert store.claim("w1").id == first.id  # the cancelled job is never claimed
    assert store.claim("w1") is None
    assert store.cancel(first.id).status == "cancelled"  # running -> cancelled ...
    assert store.finish(first.id, "w1", "done") is False  # ... and the worker cannot overwrite that
    assert store.get(first.id).status == "cancelled"
    assert store.counts()["cancelled"] == 2
    public = store.get(first.id).to_public_dict()
    assert not {"client", "email", "webhook", "worker"} & public.keys()


def test_claim_is_atomic_across_threads(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    ids = {store.create(Job(id=new_job_id())).id for _ in range(20)}
    got: list[str] = []

    def claimer(name: str) -> None:
        while (job := store.claim(name)) is not None:
            got.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)  # every job exactly once


def test_job_ids_never_become_other_paths(tmp_path):
    assert job_dir(tmp_path, "A" * 22) == tmp_path / "jobs" / ("A" * 22)
    for bad in ("../../etc/passwd", "..", "a" * 21, "a/" + "b" * 20, "a" * 22 + "\n"):
        with pytest.raises(PerceptError):
            job_dir(tmp_path, bad)


def test_styles_gallery():
    styles = list_styles()
    assert 6 <= len(styles) <= 8
    for style in styles:
        assert style.image_path.stat().st_size < 120_000 and style.thumbnail_path.is_file()
        assert style.licence == "public domain" and "picasso" not in style.id
    assert get_style(styles[0].id) == styles[0]
    with pytest.raises(PerceptError, match="unknown style"):
        get_style("../secret")


def test_public_mode_caps_limits_at_their_defaults(tmp_path, monkeypatch):
    from dataclasses import replace

    from percept.service.config import ENVIRONMENT
    from percept.service.server import serve_config

    generous = dict(data_dir=tmp_path, max_upload_mb=500.0, max_pixels=10**9, max_size=4096, queue_cap=7,
                    rate_limit="1000/second")
    capped = ServiceConfig(**generous).for_public()
    assert (capped.max_upload_bytes, capped.max_pixels, capped.max_size) == (20 * 1024 * 1024, 40_000_000, 1024)
    assert capped.queue_cap == 7 and capped.rate_limit == "30/minute"  # lower limits stay as they are
    assert capped.allow_private_webhooks is False and capped.data_dir == tmp_path
    assert ServiceConfig(data_dir=tmp_path, rate_limit="10/hour").for_public().rate_limit == "10/hour"
    with pytest.raises(PerceptError, match="not a rate"):
        ServiceConfig(data_dir=tmp_path, rate_limit="fast")

    for variable in ENVIRONMENT.values():  # serve_config reads them
        monkeypatch.delenv(variable, raising=False)
    assert serve_config(**generous).max_size == 4096  # loopback: nothing capped
    with pytest.raises(PerceptError, match="add --public"):
        serve_config(host="0.0.0.0", **generous)
    assert serve_config(host="0.0.0.0", public=True, **generous) == replace(capped, host="0.0.0.0", public=True)
    with pytest.raises(PerceptError, match="unknown setting 'max_upload_bytes'"):
        serve_config(max_upload_bytes=1)


# --------------------------------------------------------------------------------------------- embedded


def test_quality_job_end_to_end(tmp_path, photo):
    progress: list[float] = []
    with Service(ServiceConfig(data_dir=tmp_path, iterations=6)) as service:
        job = _submit(service, photo, preserve_color=True)
        assert job.status == "queued" and job.to_public_dict()["params"]["style"] == "starry-night"
        done = _wait(service, job.id, lambda j: progress.append(j.progress) or _finished(j))
        assert done.status == "done", done.error
        assert done.progress == 1.0 and done.attempts == 1 and max(progress) == 1.0
        result = service.result_path(job.id)
        assert result is not None and result.name == "result.png"
        record = read_metadata(result)
        assert record["job"] == job.id and record["service_params"]["method"] == "quality"
        assert record["params"]["iterations"] == 6 and record["params"]["preserve_color"] == "luminance"
        assert (result.parent / "preview.png").is_file()  # written while it ran
        assert service.preview_path(job.id) == result
        assert service.photo_path(job.id).is_file()
        assert service.jobs()[0].id == job.id
        assert service.health()["queued"] == 0


def test_instant_job_with_uploaded_style(tmp_path, photo, wave_path):
    with Service(ServiceConfig(data_dir=tmp_path)) as service:
        job = _submit(service, photo, style_id=None, style_image=wave_path.read_bytes(), method="instant",
                      size=96, strength=0.7)
        done = _wait(service, job.id, _finished)
        assert done.status == "done", done.error
        assert done.params["style"] == "upload" and (job_dir(tmp_path, job.id) / "style.png").is_file()
        assert read_metadata(service.result_path(job.id))["params"]["alpha"] == 0.7


@pytest.mark.parametrize("change, message", [
    ({"method": "fast"}, "unknown method"), ({"size": 4096}, "size 4096 out of range"),
    ({"strength": 1.5}, "strength"), ({"style_id": "nope"}, "unknown style"),
    ({"style_image": b"x"}, "exactly one style"), ({"email": "a@b.c\nBcc: x@y.z"}, "email"),
    ({"webhook": "file:///etc/passwd"}, "webhook"), ({"photo": b"not an image"}, "not a readable image"),
])
def test_submit_rejects_bad_parameters(tmp_path, photo, change, message):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0)) as service:
        with pytest.raises(PerceptError, match=message):
            _submit(service, photo, **change)
        assert service.jobs(None) == [] and list(service.config.jobs_dir.iterdir()) == []


def test_queue_cap(tmp_path, photo):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0, queue_cap=2)) as service:
        _submit(service, photo), _submit(service, photo)
        with pytest.raises(QueueFull):
            _submit(service, photo)
        assert len(list(service.config.jobs_dir.iterdir())) == 2  # no files left by the refused one


def test_one_service_per_data_dir(tmp_path):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0)):
        with pytest.raises(PerceptError, match="another percept service"):
            Service(ServiceConfig(data_dir=tmp_path, workers=0)).start()


def test_cancel_queued_and_running(tmp_path, photo):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0)) as service:
        queued = _submit(service, photo)
        assert service.cancel(queued.id).status == "cancelled"
        assert service.cancel("A" * 22) is None and service.cancel("../x") is None
    with Service(ServiceConfig(data_dir=tmp_path, iterations=500)) as service:
        running = _submit(service, photo)
        _wait(service, running.id, lambda j: j.status == "running" and j.progress > 0)
        assert service.cancel(running.id).status == "cancelled"
        after = _submit(service, photo, method="instant")  # one worker: it runs only once the cancelled one stopped
        assert _wait(service, after.id, _finished).status == "done"
        for job_id in (queued.id, running.id):
            job = service.job(job_id)
            assert job.status == "cancelled" and service.result_path(job_id) is None
            assert not (job_dir(tmp_path, job_id) / "result.png").exists()
        assert service.job(queued.id).attempts == 0 and service.job(running.id).progress < 0.5


def test_restart_recovery_runs_interrupted_jobs_once(tmp_path, photo):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0)) as service:
        interrupted = _submit(service, photo)
        waiting = _submit(service, photo, method="instant")
        service.store.claim("dead-worker")  # a worker that died with the job running
    with Service(ServiceConfig(data_dir=tmp_path, iterations=500)) as service:
        # a clean stop gives the running optimisation back to the queue
        _wait(service, interrupted.id, lambda j: j.status == "running" and j.progress > 0)
    assert JobStore(tmp_path / "jobs.sqlite3").get(interrupted.id).status == "queued"
    with Service(ServiceConfig(data_dir=tmp_path, iterations=4)) as service:
        for job_id in (interrupted.id, waiting.id):
            assert _wait(service, job_id, _finished).status == "done"
        job = service.job(interrupted.id)
        assert job.attempts == 3 and sum("requeued" in line for line in job.log) == 2
        assert len(service.jobs(None)) == 2  # nothing duplicated
        assert read_metadata(service.result_path(job.id))["job"] == job.id


def test_result_of_an_earlier_attempt_is_not_painted_again(tmp_path, photo):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0)) as service:
        job = _submit(service, photo)
        claimed = service.store.claim("w")
        result = job_dir(tmp_path, job.id) / "result.png"
        result.write_bytes(b"stands for a complete result written atomically")
        assert run_job(service.store, tmp_path, claimed, worker_id="w") == "done"
        assert result.read_bytes().startswith(b"stands for")


# --------------------------------------------------------------------------------------------- notifications


@pytest.fixture()
def smtp_sink(free_port):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    class Sink:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append(envelope)
            return "250 OK"

    def check(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"user", b"p@ss"))

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=check, auth_require_tls=False)
    controller.start()
    yield f"smtp://user:p%40ss@127.0.0.1:{port}", sink
    controller.stop()


def test_email_and_webhook_when_done(tmp_path, photo, smtp_sink, webhook_server):
    smtp_url, sink = smtp_sink
    hook_url, hook = webhook_server
    config = ServiceConfig(data_dir=tmp_path, smtp_url=smtp_url, mail_from="art@example.org",
                           public_url="https://art.example.org")
    with Service(config) as service:
        job = _submit(service, photo, method="instant", email="me@example.org", webhook=f"{hook_url}/done")
        assert _wait(service, job.id, lambda j: any("webhook" in line for line in j.log)).status == "done"
        log = service.job(job.id).log
    assert any(line.endswith(f"email sent (via 127.0.0.1:{smtp_url.rsplit(':', 1)[1]})") for line in log), log
    assert any("webhook sent (HTTP 204)" in line for line in log), log
    (mail,) = sink.messages
    assert mail.rcpt_tos == ["me@example.org"] and mail.mail_from == "art@example.org"
    text = mail.content.decode()
    assert "Subject: Your painting is ready" in text and f"https://art.example.org/jobs/{job.id}" in text
    (call,) = hook.received
    assert call["path"] == "/done" and call["body"]["status"] == "done" and call["body"]["id"] == job.id
    assert call["body"]["result_url"] == f"https://art.example.org/api/v1/jobs/{job.id}/result"
    assert "email" not in call["body"] and "client" not in call["body"]


def test_failed_notifications_do_not_fail_the_job(tmp_path, photo, webhook_server, monkeypatch, free_port):
    monkeypatch.setattr(notify_module, "RETRY_AFTER", 0.05)
    hook_url, hook = webhook_server
    hook.status = 500
    config = ServiceConfig(data_dir=tmp_path, smtp_url=f"smtp://127.0.0.1:{free_port()}")  # nobody listens
    with Service(config) as service:
        job = _submit(service, photo, method="instant", email="me@example.org", webhook=hook_url)
        done = _wait(service, job.id, lambda j: any("webhook" in line for line in j.log))
    assert done.status == "done"
    assert any("email failed after 2 attempts" in line for line in done.log), done.log
    assert any("webhook failed after 2 attempts: HTTP 500" in line for line in done.log), done.log
    assert len(hook.received) == 2  # one retry


def test_private_webhooks_can_be_refused(tmp_path, photo):
    with Service(ServiceConfig(data_dir=tmp_path, workers=0, allow_private_webhooks=False)) as service:
        with pytest.raises(PerceptError, match="non-public address"):
            _submit(service, photo, webhook="http://127.0.0.1:9/hook")


# --------------------------------------------------------------------------------------------- Redis


@pytest.fixture()
def redis_url(tmp_path, free_port):
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed (apt install redis-server); the Redis broker is untested")
    port = free_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from redis import Redis

    client = Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    server.terminate()
    server.wait(10)


# A `percept worker` that may not touch the service's data dir nor open any SQLite database: every attempt raises
# (and the job fails), so a passing test shows that the worker needs nothing but the Redis URL.
GUARDED_WORKER = r"""
import os, sys
forbidden = os.path.realpath(sys.argv[1])
def guard(event, args):
    if event == "sqlite3.connect":
        raise PermissionError("a percept worker opened a SQLite database")
    if event in ("open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.remove", "os.chmod") and args \
            and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if os.path.realpath(path).startswith(forbidden):
            raise PermissionError(f"a percept worker touched the data dir: {path}")
sys.addaudithook(guard)
from percept.cli import main
sys.exit(main(["worker", *sys.argv[2:]]))
"""


def _worker(redis_url: str, tmp_path: Path, data: Path, *args: str, run: bool = False):
    """A `percept worker --broker redis_url *args` in its own directory and HOME, kept out of ``data``."""
    home = tmp_path / "elsewhere"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg"), "PERCEPT_OFFLINE": "1"}
    command = [sys.executable, "-c", GUARDED_WORKER, str(data), "--broker", redis_url, *args]
    if run:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=home, env=env)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=home, env=env)


def _attempt_outcomes(redis_url: str) -> dict[str, str]:
    """job id -> how its attempts ended, as their workers reported to Redis (kept for jobs no longer followed)."""
    from redis import Redis

    client = Redis.from_url(redis_url)
    return {k.decode().split(":")[2][:22]: client.hget(k, "status").decode() for k in client.keys("percept:result:*")}


def test_redis_worker_needs_only_the_url(tmp_path, photo, wave_path, redis_url):
    from redis import Redis

    data = tmp_path / "data"
    config = ServiceConfig(data_dir=data, broker=redis_url, iterations=4)
    with Service(config) as service:
        lost = _submit(service, photo, method="instant")
        Redis.from_url(redis_url).flushall()  # Redis lost its queue (restart without persistence)
    with Service(config) as service:  # start-up enqueues it again
        assert service._broker.pending() == {lost.id}
        painted = _submit(service, photo, preserve_color=True)
        uploaded = _submit(service, photo, style_id=None, style_image=wave_path.read_bytes(), method="instant")
        cancelled = _submit(service, photo, method="instant")
        assert service.cancel(cancelled.id).status == "cancelled"
        worker = _worker(redis_url, tmp_path, data, "--burst", run=True)
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "PermissionError" not in worker.stderr, worker.stderr[-3000:]
        for job in (lost, painted, uploaded):
            done = _wait(service, job.id, _finished, timeout=10)
            assert done.status == "done" and done.attempts == 1 and done.progress == 1.0, done
            record = read_metadata(service.result_path(job.id))
            assert record["job"] == job.id and record["service_params"] == done.params
            assert any("started by" in line for line in done.log)
        assert read_metadata(service.result_path(painted.id))["params"]["iterations"] == 4  # the server's setting
        assert read_metadata(service.result_path(uploaded.id))["service_params"]["style"] == "upload"
        assert service.job(cancelled.id).attempts == 0 and service.result_path(cancelled.id) is None
        assert service._broker.pending() == set()
        keys = {k.decode().split(":")[1] for k in Redis.from_url(redis_url).keys("percept:*")}
        assert keys <= {"cancel"}, keys  # collected results, states and attempts are gone from Redis
    assert not (tmp_path / "elsewhere" / "xdg").exists()  # the worker made no data dir of its own either


def test_redis_running_job_restart_cancel_stop_and_kill(tmp_path, photo, redis_url):
    data = tmp_path / "data"
    config = ServiceConfig(data_dir=data, broker=redis_url, stale_after=3)
    first = _worker(redis_url, tmp_path, data, "--iterations", "5000")
    second = None
    service = Service(config)
    service.start()
    try:
        # progress, ETA and previews of a running job reach the store and the data dir
        job = _submit(service, photo)
        running = _wait(service, job.id, lambda j: j.status == "running" and j.eta_seconds is not None
                        and service.preview_path(j.id) is not None)
        assert running.attempts == 1 and "painting: step" in running.message and running.progress > 0
        # the web process restarts while the job runs: the new one follows it on
        service.stop()
        service = Service(config)
        service.start()
        resumed = service.job(job.id)
        assert resumed.status == "running" and resumed.progress >= running.progress
        _wait(service, job.id, lambda j: j.progress > resumed.progress)
        # cancelling stops the worker within a second: it runs the next job
        assert service.cancel(job.id).status == "cancelled"
        after = _submit(service, photo, method="instant")
        assert _wait(service, after.id, _finished).status == "done"
        cancelled = service.job(job.id)
        assert cancelled.status == "cancelled" and cancelled.progress < 0.5 and service.result_path(job.id) is None
        assert _attempt_outcomes(redis_url)[job.id] == "cancelled"  # as the worker reported it
        # SIGTERM: the worker gives its running job back, and it is enqueued again for another worker
        job = _submit(service, photo)
        _wait(service, job.id, lambda j: j.status == "running" and j.progress > 0)
        first.terminate()
        assert first.wait(60) == 0, first.stderr.read()[-3000:]
        back = _wait(service, job.id, lambda j: j.status == "queued")
        assert back.attempts == 1 and "stopped" in back.log[-1] and job.id in service._broker.pending()
        # SIGKILL: the worker's heartbeat expires and the job runs again
        second = _worker(redis_url, tmp_path, data, "--iterations", "5000")
        _wait(service, job.id, lambda j: j.status == "running" and j.attempts == 2 and j.progress > 0)
        second.kill()
        second.wait(10)
        requeued = _wait(service, job.id, lambda j: j.status == "queued" and j.attempts == 2, timeout=20)
        assert "stopped answering" in requeued.log[-1]
        service.stop()  # the last attempt finishes while the web process is down ...
        worker = _worker(redis_url, tmp_path, data, "--iterations", "4", "--burst", run=True)
        assert worker.returncode == 0 and "PermissionError" not in worker.stderr, worker.stderr[-3000:]
        service = Service(config)
        service.start()  # ... and is collected at start
        done = service.job(job.id)
        assert done.status == "done" and done.attempts == 3, done
        assert sum("requeued" in line for line in done.log) == 2 and sum("started by" in line for line in done.log) == 3
        assert read_metadata(service.result_path(job.id))["job"] == job.id
        assert len(service.jobs(None)) == 3 and service._broker.pending() == set()  # nothing lost or duplicated
    finally:
        service.stop()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


def test_unreachable_redis_says_what_to_do(tmp_path, capsys, monkeypatch):
    from percept.cli import main

    config = ServiceConfig(data_dir=tmp_path, broker="redis://:secret@127.0.0.1:1/0")
    with pytest.raises(PerceptError, match="is redis-server running") as error:
        Service(config).start()
    assert "secret" not in str(error.value)  # no password in messages
    with Service(ServiceConfig(data_dir=tmp_path, workers=0)):  # the failed start let go of the data dir
        pass
    assert main(["worker", "--broker", "redis://127.0.0.1:1/0", "--burst"]) == 2
    assert "is redis-server running?" in capsys.readouterr().err
    assert main(["worker", "--broker", "http://example.org/"]) == 2
    monkeypatch.delenv("PERCEPT_BROKER", raising=False)
    assert main(["worker"]) == 2 and "PERCEPT_BROKER" in capsys.readouterr().err
    monkeypatch.setenv("PERCEPT_BROKER", "redis://:secret@127.0.0.1:1/0")
    assert main(["worker", "--burst"]) == 2
    err = capsys.readouterr().err
    assert "is redis-server running?" in err and "secret" not in err
