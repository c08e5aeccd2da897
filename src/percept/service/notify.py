"""Telling the submitter that a job finished: an email through the configured SMTP server and/or a webhook
POST with a JSON body. Both are best effort (one retry), and their outcome goes in the job's log; a failed
notification never fails the job.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..errors import PerceptError
from .config import ServiceConfig
from .store import Job, JobStore

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 30.0  # seconds per SMTP attempt
RETRY_AFTER = 2.0  # seconds before the one retry


def base_url(config: ServiceConfig) -> str:
    """Where users reach the service: ``public_url``, else the address it listens on."""
    return (config.public_url or f"http://{config.host}:{config.port}").rstrip("/")


def payload(job: Job, config: ServiceConfig) -> dict[str, Any]:
    """The webhook body: what happened and where to look (no client address, no email)."""
    base = base_url(config)
    return {"id": job.id, "status": job.status, "error": job.error, "finished": job.finished,
            "job_url": f"{base}/jobs/{job.id}",
            "result_url": f"{base}/api/v1/jobs/{job.id}/result" if job.status == "done" else None}


def notify(store: JobStore, config: ServiceConfig, job: Job) -> None:
    """Send the email and webhook ``job`` asked for (it has finished); log each outcome in the job's log."""
    if job.email:
        if config.smtp_url is None:
            store.log(job.id, "email not sent: this server has no SMTP server configured")
        else:
            store.log(job.id, _attempt("email", lambda: send_email(config, job)))
    if job.webhook:
        store.log(job.id, _attempt("webhook", lambda: post_webhook(config, job)))


def _attempt(what: str, send) -> str:
    """Call ``send`` (returns a short success note) with one retry; the line to log either way."""
    reason = ""
    for attempt in (1, 2):
        if attempt == 2:
            time.sleep(RETRY_AFTER)
        try:
            return f"{what} sent ({send()})"
        except (OSError, smtplib.SMTPException, PerceptError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("%s attempt %d failed: %s", what, attempt, reason)
    return f"{what} failed after 2 attempts: {reason}"


def send_email(config: ServiceConfig, job: Job) -> str:
    """Mail ``job.email`` through ``config.smtp_url`` (smtp:// uses STARTTLS when offered, smtps:// is TLS)."""
    assert config.smtp_url is not None and job.email is not None
    url = urlsplit(config.smtp_url)
    tls = url.scheme == "smtps"
    host, port = url.hostname or "localhost", url.port or (465 if tls else 25)
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = job.email
    done = job.status == "done"
    message["Subject"] = "Your painting is ready" if done else "Your painting could not be made"
    body = payload(job, config)
    message.set_content(
        (f"Your painting is ready:\n{body['job_url']}\n\nDownload it (PNG): {body['result_url']}\n" if done else
         f"Sorry, the painting failed: {job.error}\n{body['job_url']}\n")
        + "\nThis link is private: anyone who has it can see the image.\n"
    )
    context = ssl.create_default_context()
    smtp = (smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context) if tls
            else smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT))
    with smtp:
        if not tls:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(message)
    return f"via {host}:{port}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: they could lead a webhook to an address the checks refused."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Raise :class:`PerceptError` unless ``url`` is http(s) with a host; with ``allow_private=False`` also
    unless every address the host resolves to is public (no loopback, private, link-local or reserved)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PerceptError("webhook must be an http:// or https:// URL with a host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise PerceptError(f"webhook host {parts.hostname!r} does not resolve ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise PerceptError(f"webhook host {parts.hostname!r} is a non-public address ({address})")


def post_webhook(config: ServiceConfig, job: Job) -> str:
    """POST :func:`payload` as JSON to ``job.webhook``; any 2xx answer counts as delivered."""
    assert job.webhook is not None
    check_webhook_url(job.webhook, allow_private=config.allow_private_webhooks)
    request = urllib.request.Request(
        job.webhook, data=json.dumps(payload(job, config)).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"percept/{__version__}"},
    )
    try:
        with _opener.open(request, timeout=config.webhook_timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        raise PerceptError(f"HTTP {exc.code} {exc.reason}") from None
