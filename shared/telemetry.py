"""OpenTelemetry bootstrap: one tracer provider per process, every app instrumented.

OpenTelemetry's global tracer provider can be set only once per process, and library
instrumentation (httpx, pymongo, sqlite3) patches modules process-wide. So the first
`setup_telemetry()` call builds the provider (resource `service.name` from its settings)
and instruments the libraries; later calls, such as tests building many apps, reuse
them. Each FastAPI app is instrumented on its own, once.

Exporters: OTLP over HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific
variable) is set, configured by the SDK from the standard `OTEL_*` variables. Tests ask
for `in_memory=True` and read finished spans from `Telemetry.memory_exporter`; that
exporter is shared by the whole process, so tests should filter by trace id or `clear()`.
Propagation is the SDK default (W3C `traceparent` and baggage, or `OTEL_PROPAGATORS`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.settings import Settings

# Probes and scrapes arrive every few seconds and would drown the interesting traces.
DEFAULT_EXCLUDED_URLS = r"/healthz$,/readyz$,/metrics$"
_OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(frozen=True)
class Telemetry:
    """The process's tracer provider, and the in-memory exporter when one was asked for."""

    provider: TracerProvider
    memory_exporter: InMemorySpanExporter | None = None

    def instrument_app(self, app: FastAPI) -> None:
        """Trace every request of `app` with a server span; safe to call twice."""
        if getattr(app, "_is_instrumented_by_opentelemetry", False):
            return
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            # The standard variable still wins, as the instrumentation documents.
            excluded_urls=os.environ.get(
                "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS
            ),
            # Per-message receive/send spans triple the span count and say little.
            exclude_spans=["receive", "send"],
        )

    def force_flush(self, timeout_millis: int = 5_000) -> bool:
        """Export buffered spans now (e.g. before a test reads an OTLP collector)."""
        return self.provider.force_flush(timeout_millis)


class _ProcessTelemetry:
    """What may exist only once per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.provider: TracerProvider | None = None
        self.memory_exporter: InMemorySpanExporter | None = None


_process = _ProcessTelemetry()


def setup_telemetry(settings: Settings, *, in_memory: bool = False) -> Telemetry:
    """Set up tracing for this process (idempotent) and return its handle."""
    with _process.lock:
        provider = _process.provider
        if provider is None:
            provider = _global_provider(settings)
            if any(os.environ.get(name) for name in _OTLP_ENDPOINT_VARS):
                # The exporter reads endpoint, headers, timeout... from OTEL_* itself.
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            _instrument_libraries(provider)
            _process.provider = provider
        if in_memory and _process.memory_exporter is None:
            exporter = InMemorySpanExporter()
            # Simple (synchronous) processing: a test sees a span as soon as it ends.
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            _process.memory_exporter = exporter
        return Telemetry(provider, _process.memory_exporter if in_memory else None)


def _global_provider(settings: Settings) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        # Someone (e.g. the `opentelemetry-instrument` launcher) configured it already.
        return current
    attributes = {"deployment.environment.name": settings.env.value}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        # An explicit OTEL_SERVICE_NAME is the operator's choice; otherwise name the service.
        attributes[SERVICE_NAME] = settings.service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    trace.set_tracer_provider(provider)
    return provider


def _instrument_libraries(provider: TracerProvider) -> None:
    for instrumentor in (
        HTTPXClientInstrumentor(),
        PymongoInstrumentor(),
        SQLite3Instrumentor(),
    ):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
