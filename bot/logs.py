"""Logging set-up that never lets a secret through, whichever library wrote the line."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import quote, quote_plus, unquote, urlsplit

REDACTED = "[redacted]"

# The idempotency key of the job a line was written for ("-" outside jobs), so one request can
# be followed across the receiver and the workers. Context-local, like structlog's contextvars.
JOB_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("reshare_job_key", default="-")
JOB_KEY_CHARS = 12


def job_key_shown(key: str) -> str:
    """The short form of a job's key that log lines carry."""
    return key[:JOB_KEY_CHARS]


def url_passwords(urls: Iterable[str | None]) -> list[str]:
    """The passwords in URLs (REDIS_URL's, the proxies'), as written and decoded."""
    found: list[str] = []
    for url in urls:
        if url:
            password = urlsplit(url if "://" in url else f"http://{url}").password
            if password:
                found += [password, unquote(password)]
    return found


def secret_forms(secret: str) -> set[str]:
    """The ways a token shows up in text: as is, percent-encoded in a URL, and, for Telegram's
    ``<bot id>:<secret>``, the secret half alone (the bot id is public)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    bot_id, colon, half = secret.partition(":")
    if colon and bot_id.isdigit() and len(half) >= 8:
        forms.add(half)
    return {form for form in forms if form}


class RedactingFormatter(logging.Formatter):
    """Replaces every secret in the formatted line, tracebacks included."""

    def __init__(self, secrets: Iterable[str], fmt: str) -> None:
        super().__init__(fmt)
        forms = {form for secret in secrets if secret for form in secret_forms(secret)}
        self._secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(level: str, secrets: Iterable[str], *, process: str = "") -> None:
    """Lines on stderr with their job's key and no secret; `process` names a process of the bot
    other than the main one (the download process)."""
    handler = logging.StreamHandler(sys.stderr)
    shown = f"[{process}] " if process else ""
    handler.setFormatter(
        RedactingFormatter(
            secrets, f"%(asctime)s %(levelname)s {shown}%(name)s [job=%(job)s]: %(message)s"
        )
    )
    handler.addFilter(_JobField())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Warnings and uncaught exceptions would otherwise reach stderr past the redaction.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # httpx logs every request URL at INFO; the Telegram token is part of those URLs.
    if root.level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # taskiq calls a worker's orderly stop a WARNING, and a job it cut off an ERROR with a
    # traceback; both are expected (the job stays pending for another worker).
    for name in ("taskiq.receiver", "taskiq.receiver.receiver"):
        logging.getLogger(name).addFilter(_StopIsNoFault())


class _StopIsNoFault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError) or record.getMessage().startswith(
            "The listenig task was cancelled"
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


class _JobField(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job = JOB_KEY.get()
        return True


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, error, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        logging.getLogger("bot").critical(
            "uncaught exception in thread %s",
            args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
