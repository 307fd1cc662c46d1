"""Process logging: JSON lines for machines, plain lines for people, both trace-correlated.

`configure_logging(settings)` installs one handler on the root logger. Every record gets
`service`, `trace_id`, `span_id` (from the active OpenTelemetry span) and `request_id`, so a
log line can be joined to its trace. Uvicorn's loggers are emptied and propagate to the
root, so access logs come out in the same format (run uvicorn with `log_config=None`).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import IO, Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from shared.settings import Settings

request_id_var: ContextVar[str | None] = ContextVar("huimin_request_id", default=None)
"""The current request's id; set by the request-id middleware, read by every log record."""

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Access logs in uvicorn's line format: uvicorn's own, and the gateway's (served by granian).
_ACCESS_LOGGERS = ("uvicorn.access", "gateway.access")
# Client libraries that log every request they send at INFO. The service called logs the
# same request in its access log, and feed consumers poll every few seconds, so at INFO
# these lines only drown the rest; they come back with HUIMIN_LOG_LEVEL=DEBUG.
_CHATTY_CLIENTS = ("httpx",)
# Uvicorn adds a colourised copy of the message that would only be noise in JSON.
_NOISE_ATTRS = ("color_message",)


class ContextFilter(logging.Filter):
    """Stamp each record with service, trace/span ids and request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the correlation fields; never drops a record."""
        context = trace.get_current_span().get_span_context()
        record.service = self.service
        # Absent rather than null when unknown: JSON lines stay short outside requests.
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        request_id = request_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        if record.name in _ACCESS_LOGGERS and isinstance(record.args, tuple):
            _add_access_fields(record, record.args)
        return True


def _add_access_fields(record: logging.LogRecord, args: tuple[Any, ...]) -> None:
    # Uvicorn logs '%s - "%s %s HTTP/%s" %d' % (client, method, path, version, status);
    # structured copies make access logs queryable without parsing the message.
    if len(args) == 5:
        client, method, path, _version, status = args
        record.client = client
        record.http_method = method
        record.http_path = path
        record.http_status = status


class TextFormatter(logging.Formatter):
    """One readable line per record, with the trace id appended when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Format the record, then append its correlation ids."""
        line = super().format(record)
        suffix = []
        request_id = getattr(record, "request_id", None)
        trace_id = getattr(record, "trace_id", None)
        if request_id:
            suffix.append(f"request_id={request_id}")
        if trace_id:
            suffix.append(f"trace_id={trace_id}")
        if not suffix:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(suffix)}]{newline}{rest}"


def json_formatter() -> logging.Formatter:
    """Return the JSON formatter: timestamp, level, logger, message plus any extra fields."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        reserved_attrs=[*RESERVED_ATTRS, *_NOISE_ATTRS],
    )


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Send all logging (uvicorn's included) through one handler; idempotent."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_huimin", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler._huimin = True  # type: ignore[attr-defined]  # marks ours, for idempotence
    handler.setFormatter(json_formatter() if settings.log_json else TextFormatter())
    handler.addFilter(ContextFilter(settings.service_name))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    debugging = root.getEffectiveLevel() <= logging.DEBUG
    for name in _CHATTY_CLIENTS:
        logging.getLogger(name).setLevel(logging.NOTSET if debugging else logging.WARNING)
    return handler
