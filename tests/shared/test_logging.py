"""Logging: JSON lines carry the active trace; text lines stay readable."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace

from shared.logging import configure_logging, request_id_var
from shared.settings import build_settings
from shared.telemetry import setup_telemetry


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    uvicorn_state = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    httpx_level = logging.getLogger("httpx").level
    yield
    logging.getLogger("httpx").setLevel(httpx_level)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, (saved, propagate) in uvicorn_state.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = saved
        logger.propagate = propagate


def lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_json_line_carries_the_trace_of_the_active_span(restore_logging):
    settings = build_settings(service_name="logtest", log_json=True)
    telemetry = setup_telemetry(settings)
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    tracer = telemetry.provider.get_tracer(__name__)

    with tracer.start_as_current_span("work") as span:
        logging.getLogger("huimin.test").info("inside %s", "span", extra={"patient": "p1"})
    logging.getLogger("huimin.test").warning("outside")

    inside, outside = (json.loads(line) for line in lines(stream))
    context = span.get_span_context()
    assert inside["trace_id"] == trace.format_trace_id(context.trace_id)
    assert inside["span_id"] == trace.format_span_id(context.span_id)
    assert inside["message"] == "inside span"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "huimin.test"
    assert inside["service"] == "logtest"
    assert inside["patient"] == "p1"
    assert "timestamp" in inside
    assert "trace_id" not in outside
    assert outside["level"] == "WARNING"


def test_json_line_carries_the_request_id(restore_logging):
    stream = io.StringIO()
    configure_logging(build_settings(log_json=True), stream=stream)
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("huimin.test").info("handled")
    finally:
        request_id_var.reset(token)
    assert json.loads(lines(stream)[0])["request_id"] == "req-42"


def test_exceptions_are_logged_in_the_json_line(restore_logging):
    stream = io.StringIO()
    configure_logging(build_settings(log_json=True), stream=stream)
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("huimin.test").exception("failed")
    record = json.loads(lines(stream)[0])
    assert "ValueError: broken" in record["exc_info"]


def test_text_lines_are_readable_and_name_the_trace(restore_logging):
    settings = build_settings(log_json=False)
    telemetry = setup_telemetry(settings)
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    with telemetry.provider.get_tracer(__name__).start_as_current_span("work") as span:
        logging.getLogger("huimin.test").info("hello")
    [line] = lines(stream)
    assert "INFO" in line
    assert "huimin.test: hello" in line
    assert f"trace_id={trace.format_trace_id(span.get_span_context().trace_id)}" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_uvicorn_access_logs_go_through_the_same_handler(restore_logging):
    stream = io.StringIO()
    configure_logging(build_settings(log_json=True), stream=stream)
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.NullHandler())
    configure_logging(build_settings(log_json=True), stream=stream)
    assert access.handlers == []
    assert access.propagate is True

    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    record = json.loads(lines(stream)[0])
    assert record["logger"] == "uvicorn.access"
    assert record["http_method"] == "GET"
    assert record["http_path"] == "/healthz"
    assert record["http_status"] == 200


def test_configure_logging_is_idempotent(restore_logging):
    settings = build_settings()
    configure_logging(settings, stream=io.StringIO())
    configure_logging(settings, stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_huimin", False)]
    assert len(ours) == 1


def test_client_request_lines_only_when_debugging(restore_logging):
    # httpx logs each request it sends at INFO; the service called logs it already.
    stream = io.StringIO()
    configure_logging(build_settings(log_level="INFO"), stream=stream)
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:8002/events")
    logging.getLogger("httpx").warning("a problem worth seeing")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/events", "1.1", 200
    )
    assert [line.split(": ", 1)[1] for line in lines(stream)] == [
        "a problem worth seeing",
        '127.0.0.1:5000 - "GET /events HTTP/1.1" 200',
    ]
    configure_logging(build_settings(log_level="DEBUG"), stream=stream)
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:8002/events")
    assert lines(stream)[-1].endswith("HTTP Request: GET http://127.0.0.1:8002/events")
