"""Log lines: one JSON object each (LOG_FORMAT=json, for log shippers) or one text line each, both to stdout,
both carrying the request id (a web request's, or a Celery task's id in a worker) so a page's log lines, its
access-log line and the proxy's can be joined."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# The request being served in this thread (``RequestIdMiddleware``); "-" outside one.
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# An id the proxy sent (X-Request-ID) is kept when it is a plain token; anything else is replaced, so a client
# cannot write arbitrary text (newlines, quotes) into the logs.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def request_id_from(header: str | None) -> str:
    """The proxy's request id when it is a plain token, else a new one."""
    if header and _SAFE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id``: the web request's id, else the running Celery task's id, else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            rid = current_request_id.get()
            if rid == "-":
                rid = _celery_task_id() or rid
            record.request_id = rid
        return True


def _celery_task_id() -> str | None:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency of every process but gunicorn's master
        return None
    request = getattr(current_task, "request", None) if current_task else None
    return getattr(request, "id", None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():  # structured extras: logger.info("…", extra={...}), request_id
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


# Control characters that would break or fake a text line: C0 (CR, LF, tab, ESC…), DEL, C1 (NEL…), and Unicode's
# line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` on one line: each control character written as Python writes it in a string (``\\n``, ``\\r``,
    ``\\t``, ``\\x1b``, ``\\u2028``), and a backslash doubled, so that an escape in the text cannot pass for one."""

    def escaped(match: re.Match[str]) -> str:
        return repr(match.group())[1:-1]

    return _CONTROL.sub(escaped, text.replace("\\", "\\\\"))


class TextFormatter(logging.Formatter):
    """LOG_FORMAT=text: one line per record. The message (with its args: an uploaded file's name, a title, any user
    text) has its control characters escaped: a name holding a newline wrote a second, forged line (a made-up
    level, logger and request id) into the log. A traceback keeps its own lines (they follow the record's)."""

    def __init__(self, fmt: str | None = TEXT_FORMAT, *args: object, **kwargs: object) -> None:
        super().__init__(fmt, *args, **kwargs)  # type: ignore[arg-type]

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        message = record.message
        record.message = escape_controls(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message
