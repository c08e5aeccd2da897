"""Telling the submitter that a job finished: an email through the configured SMTP server and/or a webhook
POST with a JSON body. Both are best effort (one retry), and their outcome, success or failure, goes in the
job's log; a failed notification never fails the job, and no exception leaves :func:`notify`. The addresses are
checked strictly at submission (:func:`check_contact_email`, :func:`check_webhook_url`) and again before sending.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
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
from .config import InvalidField, ServiceConfig
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
    """Send the email and webhook ``job`` asked for (it has finished); log each outcome, success or failure, in
    the job's log. Never raises: a notification can neither fail a job nor stop a worker."""
    if job.email:
        if config.smtp_url is None:
            _log(store, job, "email not sent: this server has no SMTP server configured")
        else:
            _log(store, job, _attempt("email", lambda: send_email(config, job)))
    if job.webhook:
        _log(store, job, _attempt("webhook", lambda: post_webhook(config, job)))


def _log(store: JobStore, job: Job, line: str) -> None:
    """``line`` in the job's log; if even the store fails (disk full), in the service's log."""
    try:
        store.log(job.id, line)
    except Exception as exc:  # noqa: BLE001 - a notifier never raises
        log.warning("job %s: %s (not recorded in the job's log: %s)", job.id, line, _reason(exc))


def _reason(exc: BaseException) -> str:
    """One line for ``exc``: its message, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _attempt(what: str, send) -> str:
    """Call ``send`` (returns a short success note) with one retry; the line to log either way."""
    reason = ""
    for attempt in (1, 2):
        if attempt == 2:
            time.sleep(RETRY_AFTER)
        try:
            return f"{what} sent ({send()})"
        except InvalidField as exc:  # the address itself is refused: retrying cannot help
            reason = _reason(exc)
            log.warning("%s not sent: %s", what, reason)
            return f"{what} not sent: {reason}"
        except Exception as exc:  # noqa: BLE001 - network, protocol, TLS, a bad header: all are a failed attempt
            reason = _reason(exc)
            log.warning("%s attempt %d failed: %s", what, attempt, reason)
    return f"{what} failed after 2 attempts: {reason}"


def send_email(config: ServiceConfig, job: Job) -> str:
    """Mail ``job.email`` through ``config.smtp_url`` (smtp:// uses STARTTLS when offered, smtps:// is TLS)."""
    assert config.smtp_url is not None and job.email is not None
    check_contact_email(job.email)
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


#: One DNS label (letters, digits, hyphens inside; underscores as some internal names have them).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
EMAIL = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})*")


def _plain(text: str) -> bool:
    """Printable ASCII without spaces: no control character, CR, LF, tab or space can reach a header line."""
    return all("!" <= c <= "~" for c in text)


def valid_host(host: str) -> bool:
    """A DNS name (ASCII: IDNs as punycode) or an IP address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return len(host) <= 253 and HOSTNAME.fullmatch(host) is not None


def check_contact_email(email: str) -> None:
    """Raise :class:`InvalidField` unless ``email`` is one plain ``name@host`` address (no display name, no
    list, no control characters: nothing that could add a mail header)."""
    if len(email) > 254 or not _plain(email) or EMAIL.fullmatch(email) is None:
        raise InvalidField("email: that address does not look like name@example.org; give one plain address")


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Raise :class:`InvalidField` unless ``url`` is an http(s) URL with a valid host, in printable ASCII without
    spaces or control characters; with ``allow_private=False`` also unless every address the host resolves to is
    public (no loopback, private, link-local or reserved)."""
    if len(url) > 2000:
        raise InvalidField("webhook: the URL is too long (2000 characters at most)")
    if not _plain(url):
        raise InvalidField("webhook: the URL has spaces, control characters or non-ASCII characters; "
                           "percent-encode them (and write an international host name as punycode)")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidField(f"webhook: not a valid URL ({_reason(exc)}); give one like https://example.org/hook") \
            from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidField("webhook: must be an http:// or https:// URL with a host, like https://example.org/hook")
    if not valid_host(host):
        raise InvalidField(f"webhook: {host!r} is not a valid host name; give one like https://example.org/hook")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        raise InvalidField(f"webhook: host {host!r} does not resolve ({_reason(exc)})") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise InvalidField(f"webhook: host {host!r} is a non-public address ({address}); give a public one")


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
