"""OpenTelemetry spans, when asked for: off by default, and then nothing is imported.

The trace context itself always travels (models/tracing.py: a `traceparent` header
on every record). Spans are extra: with `pip install -e '.[otel]'` and an exporter
named the standard way (OTEL_TRACES_EXPORTER=otlp|console, or an
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT), `start()` sets `SPANS`, and the hot path
records a span for each command decided and appended, each saga step and each
batch a reader handles. Off, `SPANS` is None and each of those places pays one
attribute read and one `is None` test (bench/trace_cost.py measures it).

Spans are built with explicit parents (the traceparent a record carried), not
OpenTelemetry's ambient context: a batch handles many traces at once.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from app.settings import settings
from models.tracing import Trace, format_traceparent

log = logging.getLogger(__name__)

Attributes = Mapping[str, str | int]


class Span(Protocol):
    """A started span: `traceparent` is what the records it causes carry."""

    traceparent: bytes

    def end(self) -> None: ...


class Spans(Protocol):
    def start(
        self,
        name: str,
        parent: Trace,
        attributes: Attributes | None = None,
        links: Sequence[bytes] = (),
        consumer: bool = False,
    ) -> Span: ...


SPANS: Spans | None = None
"""Set by `start()` when spans are exported; None (the default) records none."""


class _OtelSpan:
    __slots__ = ("_span", "traceparent")

    def __init__(self, span: Any) -> None:
        self._span = span
        context = span.get_span_context()
        self.traceparent = format_traceparent(
            context.trace_id, context.span_id, int(context.trace_flags)
        )

    def end(self) -> None:
        self._span.end()


class _OtelSpans:
    """Spans of an OpenTelemetry SDK tracer, their parents given as traceparents."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context

        self._tracer = tracer
        self._trace = trace
        self._root = Context()  # no parent: not whatever span is ambient

    def _remote(self, traceparent: bytes) -> Any:
        trace = self._trace
        return trace.SpanContext(
            trace_id=int(traceparent[3:35], 16),
            span_id=int(traceparent[36:52], 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(traceparent[53:55], 16)),
        )

    def start(
        self,
        name: str,
        parent: Trace,
        attributes: Attributes | None = None,
        links: Sequence[bytes] = (),
        consumer: bool = False,
    ) -> Span:
        trace = self._trace
        context = self._root
        if parent is not None:
            remote = trace.NonRecordingSpan(self._remote(parent))
            context = trace.set_span_in_context(remote, self._root)
        span = self._tracer.start_span(
            name,
            context=context,
            kind=trace.SpanKind.CONSUMER if consumer else trace.SpanKind.INTERNAL,
            attributes=attributes,
            links=[trace.Link(self._remote(link)) for link in links],
        )
        return _OtelSpan(span)


def _exporter(kind: str) -> Any:
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter()  # endpoint, headers, timeout: its OTEL_EXPORTER_OTLP_* variables


def start(worker: str, exporter: Any = None) -> Spans | None:
    """Export spans if settings ask for them (or to `exporter`, a test's); sets SPANS."""
    global SPANS
    if exporter is None and settings.traces_exporter == "none":
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise SystemExit(
            f"OTEL_TRACES_EXPORTER={settings.traces_exporter} needs OpenTelemetry: "
            "pip install -e '.[otel]'"
        ) from None
    resource = Resource.create({"service.name": "shop", "service.instance.id": worker})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings.traces_exporter)))
        atexit.register(provider.shutdown)  # the last batch of spans is sent at exit
    SPANS = _OtelSpans(provider.get_tracer("shop"))
    log.info("tracing: spans exported (%s)", settings.traces_exporter)
    return SPANS


def stop() -> None:
    """Record no more spans (tests)."""
    global SPANS
    SPANS = None
