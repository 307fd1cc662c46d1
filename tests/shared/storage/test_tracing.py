"""Store calls appear in traces as client spans under the caller's span, on both adapters
(SQLite through the store's own spans, MongoDB through PyMongo's instrumentation)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.settings import build_settings
from shared.storage import Eq, Query, Store
from shared.telemetry import setup_telemetry


async def test_store_calls_are_child_spans_of_the_request(store: Store) -> None:
    telemetry = setup_telemetry(build_settings(service_name="storetrace"), in_memory=True)
    assert telemetry.memory_exporter is not None
    telemetry.memory_exporter.clear()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as parent:
        people = store.collection("people")
        rec = await people.create({"name": "Traced", "age": 3})
        await people.get(rec.id)
        await people.search(Query(where=[Eq("age", 3)]))
    spans = telemetry.memory_exporter.get_finished_spans()
    db_spans = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT
        and s.attributes is not None
        and s.attributes.get("db.system") in ("sqlite", "mongodb")
    ]
    assert len(db_spans) >= 3, [s.name for s in spans]
    trace_id = parent.get_span_context().trace_id
    assert all(s.context is not None and s.context.trace_id == trace_id for s in db_spans)
